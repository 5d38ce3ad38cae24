"""The versioned tuples that task messages and result records travel as.

A message or record is pickled as a plain tuple (pickling a tuple runs entirely in C; a frozen
dataclass would go through Python ``__reduce__`` for every message). Its first two items are
the wire version, major and minor:

- a **minor** version only appends optional fields at the end of the tuple, or adds option
  names to the options mapping. A reader takes the fields it knows and ignores the rest, so
  producers and clusters of one major version run side by side in any order;
- a **major** version changes the layout. A reader knows the previous major version and its
  own; anything else is refused with :class:`~qcore.errors.UnsupportedVersion` (a
  :class:`~qcore.errors.PayloadError`, so a worker dead-letters the task with that reason
  instead of failing it).

Version 2.0 (written since the options became a mapping)::

    message: (2, 0, id, name, func, args, kwargs, hook, group, started, options)
    record:  (2, 0, id, name, func, args, kwargs, result, success, started, stopped,
              attempt_count, hook, group, cluster, options)

``options`` is None or a dict of the options that are set (``TaskOptions.to_mapping``).

Version 1 (Q 0.1): the version as one integer, options as a tuple. Read always; written only
by a codec pinned to it (``Codec(write_version=1)``, ``$Q_WIRE_VERSION=1``) while producers are
upgraded before the clusters that read them (a rolling upgrade in that order)::

    message: (1, id, name, func, args, kwargs, hook, group, (timeout, save, max_attempts,
              eta) or None, started)
    record:  (1, id, name, func, args, kwargs, result, success, started, stopped,
              attempt_count, hook, group, cluster)

Encoded samples of every version are kept as test fixtures (``packages/qcore/tests/wire``).
"""

from __future__ import annotations

from typing import Any

from qcore.errors import ConfigError, UndecodablePayload, UnsupportedVersion
from qcore.message import (
    WIRE_VERSION,
    TaskMessage,
    TaskResult,
    _build_message,
    _build_result,
)
from qcore.options import _NO_OPTIONS, TaskOptions

__all__ = [
    "READS",
    "WIRE_VERSION",
    "WRITES",
    "message_from_wire",
    "message_to_wire",
    "message_to_wire_v1",
    "result_from_wire",
    "result_to_wire",
    "result_to_wire_v1",
]

MAJOR, MINOR = WIRE_VERSION
READS = (1, MAJOR)
"""The major versions this Q reads."""
WRITES = (1, MAJOR)
"""The major versions this Q can write: its own, and the previous one for rolling upgrades."""
_V1_OPTIONS = ("timeout", "save", "max_attempts", "eta")

_MESSAGE_FIELDS = 11  # of version 2.0, the two version items included
_RESULT_FIELDS = 16
RUN_TIME_MINOR = 1
"""A record of version 2.1 appends its run time; one without a run time is written as 2.0."""
_V1 = (1, 0)


def _options_out(options: TaskOptions) -> dict[str, Any] | None:
    if options is _NO_OPTIONS:
        return None
    # The same options object is sent again and again (a django.tasks backend's, a priority's):
    # its mapping is kept by id, with the object (so the id is not reused), and copied out (a
    # wire tuple is the caller's): a tenth of the cost of to_mapping (tools/bench/README.md).
    found = _written_options.get(id(options))
    if found is not None and found[0] is options:
        return found[1].copy()
    values = options.to_mapping()
    if not values:
        return None
    if len(_written_options) >= _READ_OPTIONS_MAX:
        _written_options.clear()  # options made per task (an eta) must not grow it
    _written_options[id(options)] = (options, values.copy())
    return values


_written_options: dict[int, tuple[TaskOptions, dict[str, Any]]] = {}


def _options_in(values: Any) -> TaskOptions:
    if values is None:
        return _NO_OPTIONS
    if type(values) is not dict:
        raise UndecodablePayload(f"the task's options are a {type(values).__name__}, not a dict")
    key: tuple[tuple[str, Any, type], ...] | None
    try:
        # each value's type too: 1, 1.0 and True are equal keys, and not the same option
        stored: tuple[tuple[str, Any, type], ...]
        if len(values) == 1:  # a django.tasks task's runner: without the comprehension's frame
            [(name, value)] = values.items()
            stored = ((name, value, type(value)),)
        else:
            stored = tuple([(name, value, type(value)) for name, value in values.items()])
        key, found = stored, _read_options.get(stored)
    except TypeError:  # a value that is not hashable (a chain's links): read each time
        key, found = None, None
    if found is not None:
        return found
    try:
        options = TaskOptions.from_stored(values)
    except (ConfigError, TypeError) as exc:
        raise UndecodablePayload(f"the task's options are not valid here: {exc}") from None
    if key is not None:
        if len(_read_options) >= _READ_OPTIONS_MAX:
            _read_options.clear()  # options that differ per task (an eta) must not grow it
        _read_options[key] = options
    return options


_read_options: dict[tuple[tuple[str, Any, type], ...], TaskOptions] = {}
"""Options read, by what was stored (``TaskOptions`` is immutable, so one is shared): the
tasks of a ``django.tasks`` backend, a retry policy or a priority carry the same options each
time, and reading them costs as much as the rest of a message."""
_READ_OPTIONS_MAX = 256


def _refuse(kind: str, wire: Any) -> UnsupportedVersion:
    major = wire[0]
    minor = wire[1] if major != 1 and len(wire) > 1 else 0
    return UnsupportedVersion(
        f"{kind} wire version {major!r}.{minor!r} is not supported: this Q reads versions "
        f"1 and {MAJOR}.x; run a Q that reads it (upgrade the cluster before the producers)"
    )


def message_to_wire(message: TaskMessage) -> tuple[Any, ...]:
    """The message as a version 2.0 tuple."""
    return (
        MAJOR,
        MINOR,
        message.id,
        message.name,
        message.func,
        message.args,
        message.kwargs,
        message.hook,
        message.group,
        message.started,
        _options_out(message.options),
    )


def message_from_wire(wire: Any) -> TaskMessage:
    """A message from a tuple of version 1 or 2.x; fields of a newer minor are ignored."""
    if type(wire) is not tuple or len(wire) < 2:
        raise UndecodablePayload("the payload is not a task message")
    major = wire[0]
    if major == MAJOR and len(wire) >= _MESSAGE_FIELDS:
        if len(wire) > _MESSAGE_FIELDS:
            wire = wire[:_MESSAGE_FIELDS]  # a newer minor version's optional fields
        _, minor, task_id, name, func, args, kwargs, hook, group, started, opts = wire
        options = _NO_OPTIONS if opts is None else _options_in(opts)
        return _build_message(  # type: ignore[no-any-return]
            task_id, name, func, args, kwargs, hook, group, options, started, (major, minor)
        )
    if major == 1 and len(wire) == 10:
        _, task_id, name, func, args, kwargs, hook, group, opts, started = wire
        try:
            options = _NO_OPTIONS if opts is None else TaskOptions(*opts)
        except (ConfigError, TypeError) as exc:
            raise UndecodablePayload(f"the task's options are not valid here: {exc}") from None
        return _build_message(  # type: ignore[no-any-return]
            task_id, name, func, args, kwargs, hook, group, options, started, _V1
        )
    if major in READS:
        raise UndecodablePayload(f"the payload is not a task message of version {major}")
    raise _refuse("task message", wire)


def result_to_wire(record: TaskResult) -> tuple[Any, ...]:
    """The record as a version 2.0 tuple, or 2.1 (the run time appended) when it has one."""
    wire = (
        MAJOR,
        MINOR if record.run_time is None else RUN_TIME_MINOR,
        record.id,
        record.name,
        record.func,
        record.args,
        record.kwargs,
        record.result,
        record.success,
        record.started,
        record.stopped,
        record.attempt_count,
        record.hook,
        record.group,
        record.cluster,
        _options_out(record.options),
    )
    return wire if record.run_time is None else (*wire, record.run_time)


def result_from_wire(wire: Any) -> TaskResult:
    """A record from a tuple of version 1 or 2.x; fields of a newer minor are ignored."""
    if type(wire) is not tuple or len(wire) < 2:
        raise UndecodablePayload("the payload is not a task result")
    major = wire[0]
    if major == MAJOR and len(wire) >= _RESULT_FIELDS:
        opts = wire[_RESULT_FIELDS - 1]
        options = _NO_OPTIONS if opts is None else _options_in(opts)
        run_time = None
        if len(wire) > _RESULT_FIELDS and wire[1] >= RUN_TIME_MINOR:
            value = wire[_RESULT_FIELDS]
            run_time = float(value) if type(value) in (float, int) else None
        return _build_result(  # type: ignore[no-any-return]
            *wire[2 : _RESULT_FIELDS - 1], options, (major, wire[1]), run_time
        )
    if major == 1 and len(wire) == 14:
        return _build_result(*wire[1:], _NO_OPTIONS, _V1, None)  # type: ignore[no-any-return]
    if major in READS:
        raise UndecodablePayload(f"the payload is not a task result of version {major}")
    raise _refuse("task result", wire)


def _v1_options(options: TaskOptions, what: str) -> tuple[Any, ...] | None:
    """Version 1's options tuple; an option version 1 cannot carry is a clear error."""
    if options is _NO_OPTIONS:
        return None
    values = options.to_mapping()
    extra = sorted(set(values) - set(_V1_OPTIONS))
    if extra:
        raise ConfigError(
            f"the {what} uses {', '.join(extra)}, which wire version 1 cannot carry: this "
            "codec is pinned to version 1 for a rolling upgrade; remove the pin "
            "(Q_WIRE_VERSION / wire_version) once every cluster reads version "
            f"{MAJOR}"
        )
    return None if not values else tuple(values.get(name) for name in _V1_OPTIONS)


def message_to_wire_v1(message: TaskMessage) -> tuple[Any, ...]:
    """The message as a version 1 tuple, for clusters that read only version 1."""
    return (
        1,
        message.id,
        message.name,
        message.func,
        message.args,
        message.kwargs,
        message.hook,
        message.group,
        _v1_options(message.options, "task message"),
        message.started,
    )


def result_to_wire_v1(record: TaskResult) -> tuple[Any, ...]:
    """The record as a version 1 tuple (its options are dropped: version 1 records had none),
    for producers that read only version 1."""
    return (
        1,
        record.id,
        record.name,
        record.func,
        record.args,
        record.kwargs,
        record.result,
        record.success,
        record.started,
        record.stopped,
        record.attempt_count,
        record.hook,
        record.group,
        record.cluster,
    )
