"""Task messages and result records: construction, options, and round trips."""

from __future__ import annotations

import dataclasses
import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qcore import (
    Codec,
    ConfigError,
    Signer,
    TaskMessage,
    TaskOptions,
    TaskResult,
    apply_q_options,
    humanize,
)

CODEC = Codec(Signer("message-tests-key-0123456789-abcdefgh"), compress_threshold=512)

json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=8), children, max_size=5)
        | st.tuples(children, children)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(
    args=st.lists(json_like, max_size=6),
    kwargs=st.dictionaries(st.text(min_size=1, max_size=10), json_like, max_size=5),
    group=st.none() | st.text(max_size=20),
    timeout=st.none() | st.floats(min_value=0.001, max_value=1e6),
)
def test_messages_round_trip(
    args: list, kwargs: dict, group: str | None, timeout: float | None
) -> None:
    message = TaskMessage.new(
        "math.copysign",
        args,
        kwargs,
        hook="hooks.h",
        group=group,
        options=TaskOptions(timeout=timeout),
    )
    assert CODEC.decode_message(CODEC.encode_message(message)) == message


def test_new_message_fields() -> None:
    before = time.time()
    message = TaskMessage.new(math.copysign, [2, -2], {"x": 1})
    assert len(message.id) == 32 and int(message.id, 16) >= 0
    assert message.name == humanize(message.id)
    assert message.args == (2, -2) and message.kwargs == {"x": 1}
    assert before <= message.started <= time.time()
    assert message.func_path == "math.copysign"
    assert dataclasses.is_dataclass(message)
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.name = "x"  # type: ignore[misc]


def test_a_message_is_due_at_its_enqueue_or_its_later_eta() -> None:
    message = dataclasses.replace(TaskMessage.new("math.floor", (1.5,)), started=100.0)
    assert message.due == 100.0
    assert message.with_options(eta=150.0).due == 150.0
    assert message.with_options(eta=50.0).due == 100.0  # an eta before the enqueue: no later


def test_options_never_collide_with_task_kwargs() -> None:
    message = TaskMessage.new(
        "f.g",
        (),
        {"timeout": 5, "save": "yes", "hook": 1},
        options=TaskOptions(timeout=2.0, save=False),
    )
    assert message.kwargs == {"timeout": 5, "save": "yes", "hook": 1}
    assert message.options.timeout == 2.0 and message.options.save is False
    assert message.hook is None


def test_lambdas_closures_and_local_functions_round_trip() -> None:
    offset = 10

    def local(x: int) -> int:
        return x + offset

    for func in (lambda x: x * 2, local):
        message = CODEC.decode_message(CODEC.encode_message(TaskMessage.new(func, (1,))))
        assert callable(message.func)
        assert message.func(1) == func(1)  # type: ignore[operator]


def test_dotted_path_stays_a_string() -> None:
    message = CODEC.decode_message(CODEC.encode_message(TaskMessage.new("math.copysign")))
    assert message.func == "math.copysign"


@dataclasses.dataclass
class Model:
    pk: int
    name: str


def test_model_like_objects_round_trip() -> None:
    message = TaskMessage.new("f.g", (Model(1, "a"),), {"m": Model(2, "b")})
    loaded = CODEC.decode_message(CODEC.encode_message(message))
    assert loaded.args[0] == Model(1, "a") and loaded.kwargs["m"] == Model(2, "b")


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 1.5}, "max_attempts"),
        ({"save": "no"}, "save"),
        ({"attempts_left": 3}, "unknown q_options attempts_left"),
    ],
)
def test_bad_options_are_named(options: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        TaskOptions(**apply_q_options(options, {}, {}))


def test_func_must_be_callable_or_path() -> None:
    with pytest.raises(TypeError, match="func must be"):
        TaskMessage.new(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="hook must be"):
        TaskMessage.new("a.b", hook=3)  # type: ignore[arg-type]


def test_result_record_from_message_and_time_taken() -> None:
    message = TaskMessage.new("math.copysign", (2, -2), group="g", hook=print)
    record = TaskResult.from_message(
        message,
        result=-2.0,
        success=True,
        attempt_count=2,
        stopped=message.started + 1.5,
        cluster="c1",
    )
    assert record.id == message.id and record.name == message.name
    assert record.func == "math.copysign" and record.hook == "builtins.print"
    assert record.time_taken() == pytest.approx(1.5)
    assert CODEC.decode_result(CODEC.encode(record)) == record


def test_failure_without_message() -> None:
    record = TaskResult.failure_without_message("ab" * 16, "bad payload")
    assert not record.success and record.result == "bad payload"
    assert record.name == humanize("ab" * 16)


def test_fast_constructors_build_equal_frozen_objects() -> None:
    message = TaskMessage.new("a.b", (1,), {"k": 2}, options=TaskOptions(timeout=3.0))
    same = TaskMessage(
        message.id,
        message.name,
        "a.b",
        (1,),
        {"k": 2},
        None,
        None,
        TaskOptions(timeout=3.0),
        message.started,
    )
    assert message == same and hash(message.id)
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.func = "x"  # type: ignore[misc]
    record = TaskResult.from_message(message, result=1, success=True)
    assert TaskResult.from_wire(record.to_wire()) == record
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.result = 2  # type: ignore[misc]


def test_unknown_wire_versions_are_refused() -> None:
    from qcore import UndecodablePayload, UnsupportedVersion

    wire = list(TaskMessage.new("a.b").to_wire())
    wire[0] = 99
    with pytest.raises(UnsupportedVersion, match=r"version 99\.0 is not supported"):
        TaskMessage.from_wire(tuple(wire))
    with pytest.raises(UndecodablePayload):
        TaskMessage.from_wire("nonsense")


def test_a_retried_run_s_failure_is_carried_and_bounded() -> None:
    from qcore.options import FAILURE_TEXT_MAX, FAILURES_KEPT, with_failure

    message = TaskMessage.new("math.floor", (1.5,))
    first = message.with_options(failures=with_failure(message.options, "ValueError: one"))
    assert first.options.failures == ("ValueError: one",)
    again = TaskMessage.from_wire(first.to_wire())  # travels with the message
    assert again.options.failures == ("ValueError: one",)
    long = "KeyError: x\n\n" + "  frame\n" * 5000 + "KeyError: x"
    kept = with_failure(first.options, long)
    assert kept[0] == "ValueError: one" and len(kept[1]) < FAILURE_TEXT_MAX + 100
    assert kept[1].startswith("KeyError: x\n\n") and kept[1].endswith("KeyError: x")
    assert "characters cut" in kept[1]
    options = first.options
    for n in range(FAILURES_KEPT + 5):
        options = dataclasses.replace(options, failures=with_failure(options, f"E: {n}"))
    assert options.failures is not None and len(options.failures) == FAILURES_KEPT
    assert options.failures[-1] == f"E: {FAILURES_KEPT + 4}"  # the latest are kept
    with pytest.raises(ConfigError, match="failures must be a tuple of texts"):
        TaskOptions(failures=["not", "a", "tuple"])  # type: ignore[arg-type]


def test_options_on_the_wire_are_each_message_s_own() -> None:
    """The options mapping kept for an options object sent again is copied into each wire
    tuple: changing one tuple's options changes neither the next one's nor the options."""
    options = TaskOptions(priority=5, timeout=30)
    first = TaskMessage.new("a.b", (1,), options=options).to_wire()
    first[-1]["priority"] = 99
    second = TaskMessage.new("a.b", (2,), options=options).to_wire()
    assert second[-1] == {"priority": 5, "timeout": 30}
    assert options.to_mapping() == {"priority": 5, "timeout": 30}
    assert TaskMessage.from_wire(second).options == options
