"""execute() and call_hook(): what every task runs through (the rest: test_join.py)."""

from __future__ import annotations

import sys
import threading

from qcluster.execution import execute, should_save, task_timeout
from qcluster.processing import call_hook
from qcore import TaskMessage, TaskOptions, TaskResult


def add(a: int, b: int) -> int:
    return a + b


def explode(reason: str) -> None:
    raise ValueError(f"boom: {reason}")


def leave() -> None:
    sys.exit(3)


def give_lock() -> object:
    return threading.Lock()


def give_lambda() -> object:
    return lambda: 1


def test_success_carries_the_value_and_the_message_fields() -> None:
    message = TaskMessage.new(add, (2, 3), group="g")
    record = execute(message, attempt=2, cluster="c1")
    assert record.success and record.result == 5
    assert (record.id, record.name, record.group) == (message.id, message.name, "g")
    assert record.func == f"{__name__}.add" and record.args == (2, 3)
    assert record.attempt_count == 2 and record.cluster == "c1"
    assert record.stopped >= record.started


def test_dotted_path_resolves() -> None:
    record = execute(TaskMessage.new("math.copysign", (2, -1)))
    assert record.success and record.result == -2.0


def test_exception_becomes_error_text_with_traceback() -> None:
    record = execute(TaskMessage.new(explode, ("x",)))
    assert not record.success
    text = record.result
    assert text.startswith("ValueError: boom: x\n")
    assert "Traceback (most recent call last)" in text
    assert 'in explode\n    raise ValueError(f"boom: {reason}")' in text
    assert "in execute" not in text  # Q's own frame is left out


def test_sys_exit_in_a_task_is_a_failure_not_an_exit() -> None:
    record = execute(TaskMessage.new(leave))
    assert not record.success and record.result.startswith("SystemExit: 3")


def test_missing_function_is_a_failure_naming_the_path() -> None:
    record = execute(TaskMessage.new("math.nosuchfunc"))
    assert not record.success
    assert record.result.startswith("FunctionNotFound: cannot resolve 'math.nosuchfunc'")
    assert record.func == "math.nosuchfunc"
    record = execute(TaskMessage.new("no_such_module_q.f"))
    assert "no module named 'no_such_module_q'" in record.result


def test_unpicklable_result_is_a_failure_that_says_so() -> None:
    record = execute(TaskMessage.new(give_lock))
    assert not record.success
    assert record.result.startswith("SerializationError: the task returned a lock that cannot")
    # cloudpickle handles what plain pickle cannot
    assert execute(TaskMessage.new(give_lambda)).success


def test_options_decide_timeout_and_save() -> None:
    plain = TaskMessage.new(add, (1, 1))
    assert task_timeout(plain, 9.0) == 9.0
    assert task_timeout(plain.with_options(timeout=2.0), 9.0) == 2.0
    ok = execute(plain)
    assert should_save(plain, ok) and not should_save(plain, ok, default=False)
    quiet = plain.with_options(save=False)
    assert not should_save(quiet, ok)
    failed = execute(TaskMessage.new(explode, ("y",), options=TaskOptions(save=False)))
    assert should_save(quiet, failed)  # failures are always saved


def test_a_hook_that_raises_is_contained_and_a_custom_runner_is_used() -> None:
    def bad_hook(record: TaskResult) -> None:
        raise RuntimeError("hook broke")

    message = TaskMessage.new(add, (1, 2), hook=bad_hook)
    record = execute(message)
    assert call_hook(message, record) is False
    calls: list[str] = []
    assert call_hook(message, record, lambda hook, rec: calls.append(rec.id)) is True
    assert calls == [message.id]
    assert call_hook(TaskMessage.new(add, (1, 2), hook="math.nosuch"), record) is False
    assert call_hook(TaskMessage.new(add, (1, 2)), record) is True
