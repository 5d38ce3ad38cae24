"""Writes the checked-in samples of wire version 1: task messages and result records as Q
released them (commit ada346a), signed with the test suite's fixed secret.

    uv run python packages/qcore/tests/wire/make_v1.py

The bytes are built from version 1's tuple layout, written out below, so running this again
on any later Q writes the same files (a test checks it). With version 1's qcore first on the
path, each sample is also checked to be byte for byte what that ``Codec.encode`` makes of the
same message or record; the checked-in files were made that way::

    git archive ada346a packages/qcore | tar -x -C /tmp/q-v1
    PYTHONPATH=/tmp/q-v1/packages/qcore/src .venv/bin/python packages/qcore/tests/wire/make_v1.py

The tests read the ``.bin`` files: they are the record of version 1.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from qcore import Codec, Signer
from qcore.serialization import deflate, dumps
from qcore.signing import FLAG_COMPRESSED, FLAG_MESSAGE, FLAG_RESULT

HERE = Path(__file__).resolve().parent
OUT = HERE / "v1"
SECRET = "q-test-secret-key-0123456789abcdef"  # conftest.TEST_SECRET
COMPRESS_FROM = 64 * 1024  # version 1's default compress_threshold
STARTED = 1_767_225_600.25  # 2026-01-01T00:00:00.25Z
STOPPED = STARTED + 1.5

# Version 1 of the task message: (1, id, name, func, args, kwargs, hook, group, options,
# started), options None or (timeout, save, max_attempts, eta).
MESSAGES: dict[str, tuple[Any, ...]] = {
    "message-plain": (
        1, "a1" * 16, "alpha-bravo-charlie-delta", "math.copysign", (2, -3), {}, None, None,
        None, STARTED,
    ),
    "message-options": (
        1, "b2" * 16, "echo-foxtrot-golf-hotel", "builtins.dict", (),
        {"timeout": 5, "save": "the task's own", "x": [1, 2]}, "builtins.id", "wire-v1",
        (30.0, True, 2, STARTED - 60), STARTED,
    ),
    "message-callable": (
        1, "c3" * 16, "india-juliet-kilo-lima", math.hypot, (3, 4), {}, None, None, None,
        STARTED,
    ),
    "message-compressed": (
        1, "d4" * 16, "mike-november-oscar-papa", "builtins.len", ("x" * 100_000,), {}, None,
        None, (None, True, None, None), STARTED,
    ),
}  # fmt: skip

# Version 1 of the result record: (1, id, name, func, args, kwargs, result, success, started,
# stopped, attempt_count, hook, group, cluster).
RESULTS: dict[str, tuple[Any, ...]] = {
    "result-success": (
        1, "a1" * 16, "alpha-bravo-charlie-delta", "math.copysign", (2, -3), {}, -2.0, True,
        STARTED, STOPPED, 1, None, None, "wire-v1",
    ),
    "result-failure": (
        1, "e5" * 16, "quebec-romeo-sierra-tango", "tests.tasks.fail", ("boom",),
        {"timeout": 5}, "ValueError: boom\n\nTraceback (most recent call last):\n  ...",
        False, STARTED, STOPPED, 2, "builtins.id", "wire-v1", "wire-v1",
    ),
}  # fmt: skip


def signed(wire: tuple[Any, ...], flags: int, signer: Signer) -> bytes:
    body = dumps(wire)
    if len(body) >= COMPRESS_FROM:
        packed = deflate(body)
        if len(packed) < len(body):
            body, flags = packed, flags | FLAG_COMPRESSED
    return signer.sign(body, flags)


def samples() -> dict[str, bytes]:
    signer = Signer.from_secret(SECRET)
    out = {name: signed(wire, FLAG_MESSAGE, signer) for name, wire in MESSAGES.items()}
    out.update({name: signed(wire, FLAG_RESULT, signer) for name, wire in RESULTS.items()})
    return out


def check_against_v1_codec(made: dict[str, bytes]) -> None:
    """On a Q that writes version 1: its own codec writes the same bytes."""
    import qcore.message
    from qcore import TaskMessage, TaskResult

    if getattr(qcore.message, "MESSAGE_VERSION", None) != 1:
        print("this Q writes a later version: the check against its codec is skipped")
        return
    codec = Codec(Signer.from_secret(SECRET))
    for name, wire in MESSAGES.items():
        assert codec.encode(TaskMessage.from_wire(wire)) == made[name], name
    for name, wire in RESULTS.items():
        assert codec.encode(TaskResult.from_wire(wire)) == made[name], name
    print("checked: Q's version 1 codec writes the same bytes")


def main() -> int:
    made = samples()
    check_against_v1_codec(made)
    OUT.mkdir(exist_ok=True)
    for name, data in made.items():
        (OUT / f"{name}.bin").write_bytes(data)
        print(f"{name}.bin: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
