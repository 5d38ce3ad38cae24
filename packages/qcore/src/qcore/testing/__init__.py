"""Test doubles that keep Q's contracts: a transport and a result store in memory.

They pass the same contract suites as the Redis ones (:mod:`qcore.testing.contract`, which
needs pytest). Code that sends tasks is tested against them without a Redis; what they hold
runs in the test's own process with ``qcluster.join()``, through the worker's own code.
"""

from qcore.testing.memory import MemoryTransport
from qcore.testing.store import MemoryResultStore

__all__ = ["MemoryResultStore", "MemoryTransport"]
