"""qcluster: Q's supervised multiprocess cluster, usable without Django."""

# Before anything of qcore's: fails with a clear message when the unrelated `qcore` library is
# installed in this environment (its qcore/__init__.py may be the one there, and fail unclearly).
import qtq_core  # noqa: F401  # isort: skip
from qcluster.cluster import Cluster, codec_from_env
from qcluster.config import START_METHODS, ClusterConfig, default_start_method
from qcluster.errors import ClusterError
from qcluster.execution import default_hook_runner, execute, format_error, should_save
from qcluster.inprocess import join
from qcluster.processing import call_hook
from qcluster.running import RunningTask, running_tasks
from qcluster.scheduler import ScheduleFired, Scheduler
from qcluster.states import ClusterState, ExitCode, WorkerState

__version__ = "0.1.0"

__all__ = [
    "START_METHODS",
    "Cluster",
    "ClusterConfig",
    "ClusterError",
    "ClusterState",
    "ExitCode",
    "RunningTask",
    "ScheduleFired",
    "Scheduler",
    "WorkerState",
    "__version__",
    "call_hook",
    "codec_from_env",
    "default_hook_runner",
    "default_start_method",
    "execute",
    "format_error",
    "join",
    "running_tasks",
    "should_save",
]
