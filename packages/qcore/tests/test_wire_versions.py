"""Wire versions: the checked-in samples of every version decode, a newer minor version's
fields are ignored, an unknown major version is refused as a PayloadError (dead-lettered by a
worker, not failed). The samples run on a real cluster in tests/cluster/test_wire_samples.py."""

from __future__ import annotations

import importlib.util
import math
import pickle
from pathlib import Path
from types import ModuleType

import pytest

from qcore import (
    WIRE_VERSION,
    Codec,
    ConfigError,
    PayloadError,
    Signer,
    TaskMessage,
    TaskOptions,
    TaskResult,
    UndecodablePayload,
    UnsupportedVersion,
    codec_for,
)
from qcore.signing import FLAG_MESSAGE, FLAG_RESULT

WIRE = Path(__file__).parent / "wire"
SECRET = "q-test-secret-key-0123456789abcdef"
CODEC = Codec(Signer.from_secret(SECRET))
STARTED = 1_767_225_600.25


def sample(version: str, name: str) -> bytes:
    return (WIRE / version / f"{name}.bin").read_bytes()


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, WIRE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


V1_MESSAGES = {
    "message-plain": TaskMessage(
        "a1" * 16, "alpha-bravo-charlie-delta", "math.copysign", (2, -3), {}, None, None,
        TaskOptions(), STARTED, (1, 0),
    ),
    "message-options": TaskMessage(
        "b2" * 16, "echo-foxtrot-golf-hotel", "builtins.dict", (),
        {"timeout": 5, "save": "the task's own", "x": [1, 2]}, "builtins.id", "wire-v1",
        TaskOptions(timeout=30.0, save=True, max_attempts=2, eta=STARTED - 60), STARTED, (1, 0),
    ),
    "message-callable": TaskMessage(
        "c3" * 16, "india-juliet-kilo-lima", math.hypot, (3, 4), {}, None, None, TaskOptions(),
        STARTED, (1, 0),
    ),
    "message-compressed": TaskMessage(
        "d4" * 16, "mike-november-oscar-papa", "builtins.len", ("x" * 100_000,), {}, None,
        None, TaskOptions(save=True), STARTED, (1, 0),
    ),
}  # fmt: skip

V1_RESULTS = {
    "result-success": TaskResult(
        "a1" * 16, "alpha-bravo-charlie-delta", "math.copysign", (2, -3), {}, -2.0, True,
        STARTED, STARTED + 1.5, 1, None, None, "wire-v1", TaskOptions(), (1, 0),
    ),
    "result-failure": TaskResult(
        "e5" * 16, "quebec-romeo-sierra-tango", "tests.tasks.fail", ("boom",), {"timeout": 5},
        "ValueError: boom\n\nTraceback (most recent call last):\n  ...", False, STARTED,
        STARTED + 1.5, 2, "builtins.id", "wire-v1", "wire-v1", TaskOptions(), (1, 0),
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(V1_MESSAGES))
def test_version_1_messages_decode(name: str) -> None:
    assert CODEC.decode_message(sample("v1", name)) == V1_MESSAGES[name]


@pytest.mark.parametrize("name", sorted(V1_RESULTS))
def test_version_1_results_decode(name: str) -> None:
    assert CODEC.decode_result(sample("v1", name)) == V1_RESULTS[name]


def test_the_version_1_script_still_makes_the_checked_in_bytes() -> None:
    made = _script("make_v1").samples()
    assert made == {p.stem: p.read_bytes() for p in (WIRE / "v1").glob("*.bin")}


def test_a_version_1_message_is_sent_on_as_the_current_version() -> None:
    message = CODEC.decode_message(sample("v1", "message-options"))
    again = CODEC.decode_message(CODEC.encode(message))
    assert again.version == WIRE_VERSION
    assert (again.args, again.kwargs, again.options) == (
        message.args,
        message.kwargs,
        message.options,
    )


def test_version_2_samples_decode_and_this_q_still_writes_them() -> None:
    script = _script("make_v2")
    for name, expected in {**script.MESSAGES, **script.RESULTS}.items():
        data = sample("v2", name)
        assert CODEC.decode(data) == expected, name
        if WIRE_VERSION == (2, 0):
            assert CODEC.encode(expected) == data, f"{name}: the layout changed in place"


def test_compact_records_written_before_run_times_read_and_are_still_written() -> None:
    script = _script("make_v2")
    for name, expected in script.COMPACT.items():
        data = sample("v2", name)
        read = CODEC.decode_result(data)
        assert read == expected and read.run_time is None, name
        assert CODEC.encode_compact(expected) == data, f"{name}: the layout changed in place"


def test_options_travel_as_a_mapping_of_what_is_set() -> None:
    message = TaskMessage.new("a.b", options=TaskOptions(timeout=3.0, retried_from="c" * 32))
    assert message.to_wire()[-1] == {"timeout": 3.0, "retried_from": "c" * 32}
    assert TaskMessage.new("a.b").to_wire()[-1] is None
    assert TaskMessage.from_wire(message.to_wire()) == message
    assert message.retried_from == "c" * 32


def test_options_read_once_are_shared_and_an_equal_value_of_another_type_is_read_again() -> None:
    def read(options: dict) -> TaskOptions:
        wire = (*TaskMessage.new("a.b").to_wire()[:-1], options)
        return TaskMessage.from_wire(wire).options

    first = read({"runner": "x.run", "timeout": 2})
    assert read({"runner": "x.run", "timeout": 2}) is first  # immutable: one for all
    assert first == TaskOptions(runner="x.run", timeout=2)
    one = read({"runner": "y.run"})  # one option (a django.tasks task's), keyed without a loop
    assert read({"runner": "y.run"}) is one and read({"runner": "z.run"}).runner == "z.run"
    # 2.0 and True equal 2 and 1 as keys, and are other values: read (and checked) apart
    assert type(read({"runner": "x.run", "timeout": 2.0}).timeout) is float
    assert read({"save": True}).save is True
    with pytest.raises(UndecodablePayload, match="not valid here"):
        read({"save": 1})
    # a value that is no key (a list) is read, and refused, each time
    for _ in range(2):
        with pytest.raises(UndecodablePayload, match="retry_on must be a tuple"):
            read({"retry_on": ["builtins.KeyError"]})
    assert read({"retry_on": ("builtins.KeyError",)}).retry_on == ("builtins.KeyError",)


def _signed(wire: tuple, flag: int = FLAG_MESSAGE) -> bytes:
    return CODEC.signer.sign(pickle.dumps(wire, 5), flag)


def test_a_newer_minor_version_with_an_unknown_field_and_option_is_read() -> None:
    wire = TaskMessage.new("math.copysign", (2, -3), options=TaskOptions(timeout=7.0)).to_wire()
    major, minor = wire[:2]
    newer = (major, minor + 1, *wire[2:-1], {"timeout": 7.0, "colour": 9}, "a new field")
    message = CODEC.decode_message(_signed(newer))
    assert message.version == (major, minor + 1)
    assert message.args == (2, -3) and message.options == TaskOptions(timeout=7.0)
    record = TaskResult.from_message(message, result=-2.0, success=True)
    rwire = record.to_wire()
    newer_record = (major, minor + 1, *rwire[2:-1], {"timeout": 7.0, "colour": 9}, b"more")
    read = CODEC.decode_result(_signed(newer_record, FLAG_RESULT))
    assert read.result == -2.0 and read.options == TaskOptions(timeout=7.0)


@pytest.mark.parametrize("major", [0, 3, 99, "2"])
def test_an_unknown_major_version_is_refused_as_a_payload_error(major: object) -> None:
    wire = TaskMessage.new("math.copysign", (2, -3)).to_wire()
    with pytest.raises(UnsupportedVersion, match="is not supported: this Q reads") as info:
        CODEC.decode_message(_signed((major, *wire[1:])))
    # Not UndecodablePayload (a Failure record): a worker dead-letters it with the reason.
    assert isinstance(info.value, PayloadError)
    assert not isinstance(info.value, UndecodablePayload)
    rwire = TaskResult.from_message(TaskMessage.new("a.b"), result=1, success=True).to_wire()
    with pytest.raises(UnsupportedVersion):
        CODEC.decode_result(_signed((major, *rwire[1:]), FLAG_RESULT))


@pytest.mark.parametrize(
    "wire",
    [
        (2, 0, "id"),  # too short for 2.0
        (1, "id", "n"),  # too short for 1
        (2, 0, "i", "n", "f", (), {}, None, None, 0.0, ["timeout"]),  # options not a dict
        (2, 0, "i", "n", "f", (), {}, None, None, 0.0, {"timeout": -1}),  # not valid
        (),
        "nonsense",
    ],
)
def test_malformed_tuples_of_known_versions_are_undecodable(wire: object) -> None:
    with pytest.raises(UndecodablePayload):
        TaskMessage.from_wire(wire)


PINNED = Codec(Signer.from_secret(SECRET), write_version=1)


@pytest.mark.parametrize("name", sorted(V1_MESSAGES) + sorted(V1_RESULTS))
def test_a_codec_pinned_to_version_1_writes_what_q_0_1_wrote(name: str) -> None:
    """A rolling upgrade producers-first (or clusters-first) relies on this: the pinned codec's
    bytes are the checked-in version 1 sample's, byte for byte."""
    obj = V1_MESSAGES.get(name) or V1_RESULTS[name]
    assert PINNED.encode(obj) == sample("v1", name)
    assert PINNED.write_version == 1 and CODEC.write_version == WIRE_VERSION[0]
    assert pickle.loads(pickle.dumps(PINNED)).encode(obj) == sample("v1", name)


def test_a_pinned_codec_refuses_an_option_version_1_cannot_carry() -> None:
    message = TaskMessage.new("math.floor", (1.5,), options=TaskOptions(retried_from="a" * 32))
    with pytest.raises(ConfigError, match="retried_from, which wire version 1 cannot carry"):
        PINNED.encode(message)
    # Records drop their options instead: version 1 records had none, and readers lose nothing.
    record = TaskResult.from_message(message, result=1, success=True)
    assert PINNED.decode_result(PINNED.encode(record)).options == TaskOptions()


def test_q_wire_version_pins_the_codec_of_a_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("Q_WIRE_VERSION", "1")
    assert codec_for(SECRET).write_version == 1
    monkeypatch.setenv("Q_WIRE_VERSION", "7")
    with pytest.raises(ConfigError, match="write_version must be one of 1, 2, not 7"):
        codec_for(SECRET)
    monkeypatch.setenv("Q_WIRE_VERSION", "one")
    with pytest.raises(ConfigError, match="Q_WIRE_VERSION must be a wire major version"):
        codec_for(SECRET)


def test_a_record_with_a_run_time_is_version_2_1_and_a_2_0_reader_ignores_it() -> None:
    message = TaskMessage.new("math.copysign", (2, -3))
    record = TaskResult.from_message(message, result=-2.0, success=True, run_time=0.00042)
    wire = record.to_wire()
    assert wire[:2] == (2, 1) and wire[-1] == 0.00042 and len(wire) == 17
    read = CODEC.decode_result(CODEC.encode(record))
    assert read.run_time == 0.00042 and read.version == (2, 1)
    # What a 2.0 reader takes of it: the 2.0 fields, the run time left out.
    old = TaskResult.from_wire((2, 0, *wire[2:16]))
    assert old.run_time is None and old.result == -2.0 and old.id == record.id
    # A record without a run time is written exactly as 2.0 was (the samples stay byte-equal).
    assert TaskResult.from_message(message, result=1, success=True).to_wire()[:2] == (2, 0)
