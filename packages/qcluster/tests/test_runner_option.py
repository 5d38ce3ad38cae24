"""The ``runner`` option: a task run by the callable it names instead of a plain call (what
qdjango's ``django.tasks`` backend uses), through the worker's own code (``join()``)."""

from __future__ import annotations

from typing import Any

import pytest

from qcluster import join
from qcore import Codec, ConfigError, Signer, TaskMessage, TaskOptions, build_message
from qcore.testing import MemoryResultStore, MemoryTransport

CODEC = Codec(Signer(b"runner-tests-key-0123456789abcde!"))
RUNNER = f"{__name__}.wrapped"


class NotCallable:
    """What a framework may leave at a task's path (a task object, not a function)."""

    def __init__(self, func: Any) -> None:
        self.func = func


def _double(x: int) -> int:
    return 2 * x


task_object = NotCallable(_double)


def wrapped(message: TaskMessage, attempt: int, cluster: str | None) -> Any:
    if message.args and message.args[0] == "raise":
        raise KeyError("from the runner")
    return {"value": task_object.func(*message.args), "attempt": attempt, "cluster": cluster}


def _run(message: TaskMessage) -> Any:
    transport = MemoryTransport(space=f"runner-{message.id}")
    transport.enqueue(message.id, CODEC.encode_message(message))
    store = MemoryResultStore()
    join(transport, store, codec=CODEC)
    record = store.get(message.id)
    assert record is not None
    return record


def test_the_runner_runs_the_task_with_its_attempt() -> None:
    message = build_message(f"{__name__}.task_object", (21,), runner=RUNNER)
    record = _run(message)
    assert record.success, record.result
    assert record.result == {"value": 42, "attempt": 1, "cluster": record.cluster}
    assert record.func == f"{__name__}.task_object" and record.options.runner == RUNNER


def test_what_the_runner_raises_is_the_tasks_failure() -> None:
    record = _run(build_message(f"{__name__}.task_object", ("raise",), runner=RUNNER))
    assert not record.success and record.result.startswith("KeyError: 'from the runner'")


def test_a_runner_that_does_not_resolve_is_a_failure_naming_it() -> None:
    record = _run(build_message(f"{__name__}.task_object", (1,), runner=f"{__name__}.nope"))
    assert not record.success and "FunctionNotFound" in record.result and ".nope" in record.result


def test_a_runner_must_be_a_dotted_path() -> None:
    with pytest.raises(ConfigError, match="runner must be a dotted path"):
        TaskOptions(runner="nodots")
    with pytest.raises(ConfigError, match="runner must be a dotted path"):
        build_message(_double, (1,), runner=3)  # type: ignore[arg-type]


def test_a_codec_pinned_to_wire_version_1_refuses_a_runner() -> None:
    pinned = Codec(Signer(b"runner-tests-key-0123456789abcde!"), write_version=1)
    with pytest.raises(ConfigError, match="runner"):
        pinned.encode_message(build_message(_double, (1,), runner=RUNNER))
