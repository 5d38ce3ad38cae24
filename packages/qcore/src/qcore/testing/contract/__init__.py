"""The contract suites every transport and result store must pass (they need pytest).

``class TestMine(TransportContract)`` with ``transport`` and ``make_transport`` fixtures, or
``class TestMine(ResultStoreContract)`` with a ``store`` fixture, in a ``test_*.py`` file.
"""

from qcore.testing.contract.store import ResultStoreContract, record
from qcore.testing.contract.transport import TransportContract, fill, wait_until

__all__ = ["ResultStoreContract", "TransportContract", "fill", "record", "wait_until"]
