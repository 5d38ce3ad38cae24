"""qcluster: Q's supervised multiprocess cluster, usable without Django."""

from qcluster.cluster import Cluster, codec_from_env
from qcluster.config import START_METHODS, ClusterConfig, default_start_method
from qcluster.errors import ClusterError
from qcluster.execution import (
    call_hook,
    default_hook_runner,
    execute,
    format_error,
    run_inline,
    should_save,
)
from qcluster.states import ClusterState, ExitCode, WorkerState

__version__ = "0.1.0"

__all__ = [
    "START_METHODS",
    "Cluster",
    "ClusterConfig",
    "ClusterError",
    "ClusterState",
    "ExitCode",
    "WorkerState",
    "__version__",
    "call_hook",
    "codec_from_env",
    "default_hook_runner",
    "default_start_method",
    "execute",
    "format_error",
    "run_inline",
    "should_save",
]
