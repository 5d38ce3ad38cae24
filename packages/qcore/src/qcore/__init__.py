"""qcore: Q's task message, serialization and signing. No I/O, no Redis, no Django."""

# First: fails with a clear message when the unrelated `qcore` library shares this folder.
from qtq_core import DISTRIBUTION, DistributionConflict  # isort: skip

from qcore.backoff import Backoff
from qcore.cancelling import cancel
from qcore.chains import ChainState, chain_links, chain_messages, start_chain
from qcore.codec import DEFAULT_COMPRESS_THRESHOLD, DEFAULT_MAX_SIZE, Codec
from qcore.enqueue import (
    Q_OPTION_NAMES,
    apply_q_options,
    asend_message,
    build_message,
    enqueue,
    enqueue_many,
    retry_message,
    send_message,
    task_options,
)
from qcore.errors import (
    BadMagic,
    BadSignature,
    ConfigError,
    FunctionNotFound,
    GarbagePayload,
    PayloadError,
    PayloadTooLarge,
    QError,
    SerializationError,
    TaskRunning,
    TruncatedPayload,
    UndecodablePayload,
    UnknownKey,
    UnknownOption,
    UnknownTask,
    UnsupportedVersion,
)
from qcore.events import Event, EventBus
from qcore.idempotency import batch_ids
from qcore.iters import collate, iter_messages, send_iter
from qcore.log import configure_logging, get_logger
from qcore.masking import SECRET_NAMES, is_secret_name, mask_mapping, mask_url
from qcore.message import (
    OPTION_NAMES,
    PRIORITY_MAX,
    PRIORITY_MIN,
    WIRE_VERSION,
    TaskMessage,
    TaskOptions,
    TaskResult,
    check_priority,
)
from qcore.naming import humanize, new_id
from qcore.protocols import (
    AsyncTransport,
    DeadLetter,
    Delivery,
    HookRunner,
    InFlight,
    Owners,
    Preflight,
    QueueSource,
    Reaped,
    ResultStore,
    ShardSource,
    StatusBoard,
    Transport,
)
from qcore.reasons import DEAD_REASONS_LIMIT, count_reasons, reason_kind
from qcore.recurrence import ScheduleType, check_cron, time_zone
from qcore.resolve import dotted_path, resolve
from qcore.retries import Retry, RetryDefaults, retry_delay, retry_on_paths
from qcore.schedules import (
    SCHEDULE_Q_OPTIONS,
    DueBatch,
    ScheduleSource,
    ScheduleSpec,
    ScheduleState,
    ScheduleStore,
    firing_id,
    firing_message,
)
from qcore.secret import FALLBACKS_ENV, SECRET_ENV, WIRE_VERSION_ENV, codec_for
from qcore.signing import MIN_SECRET_BYTES, Signer, check_secret, derive_key
from qcore.slots import unchecked_constructor
from qcore.wire import WRITES as WIRE_WRITES

__version__ = "0.1.0"

__all__ = [
    "DEAD_REASONS_LIMIT",
    "DEFAULT_COMPRESS_THRESHOLD",
    "DEFAULT_MAX_SIZE",
    "DISTRIBUTION",
    "FALLBACKS_ENV",
    "MIN_SECRET_BYTES",
    "OPTION_NAMES",
    "PRIORITY_MAX",
    "PRIORITY_MIN",
    "Q_OPTION_NAMES",
    "SCHEDULE_Q_OPTIONS",
    "SECRET_ENV",
    "SECRET_NAMES",
    "WIRE_VERSION",
    "WIRE_VERSION_ENV",
    "WIRE_WRITES",
    "AsyncTransport",
    "Backoff",
    "BadMagic",
    "BadSignature",
    "ChainState",
    "Codec",
    "ConfigError",
    "DeadLetter",
    "Delivery",
    "DistributionConflict",
    "DueBatch",
    "Event",
    "EventBus",
    "FunctionNotFound",
    "GarbagePayload",
    "HookRunner",
    "InFlight",
    "Owners",
    "PayloadError",
    "PayloadTooLarge",
    "Preflight",
    "QError",
    "QueueSource",
    "Reaped",
    "ResultStore",
    "Retry",
    "RetryDefaults",
    "ScheduleSource",
    "ScheduleSpec",
    "ScheduleState",
    "ScheduleStore",
    "ScheduleType",
    "SerializationError",
    "ShardSource",
    "Signer",
    "StatusBoard",
    "TaskMessage",
    "TaskOptions",
    "TaskResult",
    "TaskRunning",
    "Transport",
    "TruncatedPayload",
    "UndecodablePayload",
    "UnknownKey",
    "UnknownOption",
    "UnknownTask",
    "UnsupportedVersion",
    "__version__",
    "apply_q_options",
    "asend_message",
    "batch_ids",
    "build_message",
    "cancel",
    "chain_links",
    "chain_messages",
    "check_cron",
    "check_priority",
    "check_secret",
    "codec_for",
    "collate",
    "configure_logging",
    "count_reasons",
    "derive_key",
    "dotted_path",
    "enqueue",
    "enqueue_many",
    "firing_id",
    "firing_message",
    "get_logger",
    "humanize",
    "is_secret_name",
    "iter_messages",
    "mask_mapping",
    "mask_url",
    "new_id",
    "reason_kind",
    "resolve",
    "retry_delay",
    "retry_message",
    "retry_on_paths",
    "send_iter",
    "send_message",
    "start_chain",
    "task_options",
    "time_zone",
    "unchecked_constructor",
]
