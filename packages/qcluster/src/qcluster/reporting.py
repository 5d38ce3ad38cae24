"""Error reporting: each failed task sent once to an error tracker, by a subscriber of the bus.

``error_reporter`` (django-q2's setting) maps a reporter's name to its options:
``{"sentry": {"dsn": "https://...", "environment": "prod"}}`` sends to Sentry through
``sentry-sdk`` (the ``sentry`` extra: ``pip install 'qtq-cluster[sentry]'``), its options
passed to ``sentry_sdk.init`` in each process that reports (an empty dict keeps a client the
process already initialised, a Django site's own). Any other name is the dotted path of a class
built with the options and called with each :class:`Failure`.

A failure is reported where it is known, once: a task that raised or could not run (in its
worker), a task past its timeout and a task dead-lettered (in the sentinel), and a hook that
raised. Tags: ``func``, ``task_id``, ``attempt``, ``queue`` and ``outcome``. The exception's
message, the task's arguments and the frames' variables are never sent unless ``log_args`` is
on (a message often repeats an argument), and then keyword arguments named like secrets are
masked, as in the logs.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from qcore import ConfigError, EventBus, get_logger, resolve
from qcore.events import HookFailed, TaskDeadLettered, TaskFailed, TaskTimedOut
from qcore.masking import mask_mapping

__all__ = ["Failure", "SentryReporter", "check_reporters", "error_reporters", "parse_error"]

log = get_logger("qcluster.reporting")

BUILT_IN = {"sentry": "sentry_sdk"}
"""Reporter names Q ships, and the package each one needs."""
WITHHELD = "(message withheld: it may repeat the task's arguments; set log_args to send it)"

_FRAME = re.compile(r'^  File "(?P<file>.+)", line (?P<line>\d+), in (?P<func>.+)$')


@dataclass(frozen=True, slots=True)
class Failure:
    """One failure, as a reporter gets it."""

    outcome: str
    """``failed``, ``timed_out``, ``dead_lettered`` or ``hook_failed``."""
    task_id: str
    name: str
    func: str
    queue: str
    attempt: int
    error_type: str
    message: str | None
    """The exception's message; None unless ``log_args`` is on."""
    frames: list[dict[str, Any]] = field(default_factory=list)
    """Oldest first: ``filename``, ``lineno``, ``function``, ``context_line`` (no variables)."""
    args: tuple[Any, ...] | None = None
    kwargs: dict[str, Any] | None = None
    """The task's arguments (masked); None unless ``log_args`` is on."""

    @property
    def tags(self) -> dict[str, str]:
        return {
            "func": self.func,
            "task_id": self.task_id,
            "attempt": str(self.attempt),
            "queue": self.queue,
            "outcome": self.outcome,
        }


def parse_error(text: str) -> tuple[str, str, list[dict[str, Any]]]:
    """``(type, message, frames)`` of a record's error text (``Type: message``, then the
    traceback, as :func:`qcluster.execution.format_error` writes it)."""
    first = (text or "").split("\n", 1)[0]
    error_type, _, message = first.partition(": ")
    frames: list[dict[str, Any]] = []
    lines = (text or "").splitlines()
    for i, line in enumerate(lines):
        match = _FRAME.match(line)
        if match is None:
            continue
        frame: dict[str, Any] = {
            "filename": match["file"],
            "abs_path": match["file"],
            "lineno": int(match["line"]),
            "function": match["func"],
        }
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if following.startswith("    ") and not _FRAME.match(following):
            frame["context_line"] = following.strip()
        frames.append(frame)
    return error_type.strip() or "Error", message, frames


class _Reporter:
    """Turns the bus's failure events into :class:`Failure` objects for ``send``."""

    def __init__(self, *, queue: str, log_args: bool, secret_names: tuple[str, ...]) -> None:
        self.queue = queue
        self.log_args = log_args
        self.secret_names = secret_names

    def subscribe(self, bus: EventBus) -> EventBus:
        bus.subscribe(TaskFailed, self.on_failed)
        bus.subscribe(TaskTimedOut, self.on_timed_out)
        bus.subscribe(TaskDeadLettered, self.on_dead_lettered)
        bus.subscribe(HookFailed, self.on_hook_failed)
        return bus

    def send(self, failure: Failure) -> None:
        raise NotImplementedError

    def on_failed(self, event: TaskFailed) -> None:
        self._record("failed", event.record, event.record.result)

    def on_timed_out(self, event: TaskTimedOut) -> None:
        self._record("timed_out", event.record, event.record.result)

    def on_dead_lettered(self, event: TaskDeadLettered) -> None:
        if event.record is not None:
            self._record("dead_lettered", event.record, event.record.result)
            return
        error_type, message, _ = parse_error(event.reason)
        failure = Failure(
            outcome="dead_lettered",
            task_id=event.task_id,
            name="",
            func="unknown",
            queue=self.queue,
            attempt=event.attempt,
            error_type=error_type,
            message=message if self.log_args else None,
        )
        self.send(failure)

    def on_hook_failed(self, event: HookFailed) -> None:
        from qcluster.execution import format_error

        record = event.record
        error_type, message, frames = parse_error(format_error(event.error))
        self.send(self._failure("hook_failed", record, error_type, message, frames))

    def _record(self, outcome: str, record: Any, text: Any) -> None:
        error_type, message, frames = parse_error(str(text))
        self.send(self._failure(outcome, record, error_type, message, frames))

    def _failure(
        self, outcome: str, record: Any, error_type: str, message: str, frames: list[Any]
    ) -> Failure:
        shown = self.log_args
        return Failure(
            outcome=outcome,
            task_id=record.id,
            name=record.name,
            func=record.func,
            queue=self.queue,
            attempt=record.attempt_count,
            error_type=error_type,
            message=message if shown else None,
            frames=frames,
            args=tuple(record.args) if shown else None,
            kwargs=mask_mapping(record.kwargs, extra=self.secret_names) if shown else None,
        )


class SentryReporter(_Reporter):
    """Sends each failure to Sentry as one event (``sentry-sdk``, initialised per process)."""

    def __init__(
        self,
        options: Mapping[str, Any],
        *,
        queue: str,
        log_args: bool = False,
        secret_names: tuple[str, ...] = (),
    ) -> None:
        super().__init__(queue=queue, log_args=log_args, secret_names=secret_names)
        self.options = dict(options)
        self._pid: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_pid"] = None
        return state

    def _ready(self) -> Any:
        import sentry_sdk

        if self._pid != os.getpid():
            self._pid = os.getpid()
            if self.options:
                sentry_sdk.init(**self.options)
            # A worker leaves through os._exit (multiprocessing): atexit would not flush.
            from multiprocessing import util

            util.Finalize(self, sentry_sdk.flush, args=(2.0,), exitpriority=10)
        return sentry_sdk

    def send(self, failure: Failure) -> None:
        sentry_sdk = self._ready()
        value = failure.message if failure.message is not None else WITHHELD
        event: dict[str, Any] = {
            "level": "error",
            "logger": "qcluster",
            "message": f"{failure.error_type} in {failure.func} ({failure.outcome})",
            "exception": {
                "values": [
                    {
                        "type": failure.error_type,
                        "value": value,
                        "module": failure.func.rpartition(".")[0] or None,
                        "mechanism": {"type": f"q.{failure.outcome}", "handled": False},
                        "stacktrace": {"frames": failure.frames},
                    }
                ]
            },
            "tags": failure.tags,
            "extra": {"task_name": failure.name},
        }
        if failure.args is not None:
            event["extra"]["args"] = repr(failure.args)
            event["extra"]["kwargs"] = repr(failure.kwargs)
        sentry_sdk.capture_event(event)


def _needs(name: str, dist: str) -> ConfigError:
    package = BUILT_IN[name]
    return ConfigError(
        f"error_reporter {name!r} needs the {package.replace('_', '-')} package, which is not "
        f"installed: pip install '{dist}[{name}]'"
    )


def check_reporters(reporters: Mapping[str, Any], *, dist: str = "qtq-cluster") -> None:
    """Raise :class:`ConfigError` for a reporter whose package is missing or path is wrong."""
    for name in reporters:
        if name in BUILT_IN:
            try:
                importlib.import_module(BUILT_IN[name])
            except ImportError:
                raise _needs(name, dist) from None
        else:
            try:
                resolve(name)
            except Exception as exc:
                raise ConfigError(
                    f"error_reporter {name!r} is neither 'sentry' nor an importable class: {exc}"
                ) from None


def error_reporters(
    reporters: Mapping[str, Mapping[str, Any]],
    *,
    queue: str,
    log_args: bool,
    secret_names: tuple[str, ...] = (),
) -> list[Callable[[EventBus], EventBus]]:
    """The ``subscribe`` of each configured reporter."""
    check_reporters(reporters)
    out: list[Callable[[EventBus], EventBus]] = []
    for name, options in reporters.items():
        if name == "sentry":
            reporter: Any = SentryReporter(
                options, queue=queue, log_args=log_args, secret_names=secret_names
            )
            out.append(reporter.subscribe)
        else:
            out.append(_Custom(name, options, queue, log_args, secret_names).subscribe)
    return out


class _Custom(_Reporter):
    """A reporter of the user's: ``cls(**options)`` called with each :class:`Failure`."""

    def __init__(
        self,
        path: str,
        options: Mapping[str, Any],
        queue: str,
        log_args: bool,
        secret_names: tuple[str, ...],
    ) -> None:
        super().__init__(queue=queue, log_args=log_args, secret_names=secret_names)
        self.path = path
        self.options = dict(options)
        self._target: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_target": None}

    def send(self, failure: Failure) -> None:
        if self._target is None:
            self._target = resolve(self.path)(**self.options)
        self._target(failure)
