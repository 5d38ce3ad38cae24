"""Writes the checked-in samples of wire version 2.0, with the Q that writes version 2.

    uv run python packages/qcore/tests/wire/make_v2.py

The same calls as the version 1 samples (``make_v1.py``), plus a retry (``retried_from``), and
the two records in the compact layout of the Redis result store (``compact-*``, as written
before records carried a run time: added later, made with the Q of that time).
``test_wire_versions.py`` checks that this Q still writes these bytes exactly, so a change of
layout cannot slip in without a new version; once a later version is written, these files
are the record of 2.0 and are never made again.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from qcore import WIRE_VERSION, Codec, Signer, TaskMessage, TaskOptions, TaskResult

HERE = Path(__file__).resolve().parent
OUT = HERE / "v2"
SECRET = "q-test-secret-key-0123456789abcdef"  # conftest.TEST_SECRET
STARTED = 1_767_225_600.25  # 2026-01-01T00:00:00.25Z
STOPPED = STARTED + 1.5
V2 = (2, 0)

MESSAGES = {
    "message-plain": TaskMessage(
        "a1" * 16, "alpha-bravo-charlie-delta", "math.copysign", (2, -3), {}, None, None,
        TaskOptions(), STARTED, V2,
    ),
    "message-options": TaskMessage(
        "b2" * 16, "echo-foxtrot-golf-hotel", "builtins.dict", (),
        {"timeout": 5, "save": "the task's own", "x": [1, 2]}, "builtins.id", "wire-v2",
        TaskOptions(timeout=30.0, save=True, max_attempts=2, eta=STARTED - 60), STARTED, V2,
    ),
    "message-callable": TaskMessage(
        "c3" * 16, "india-juliet-kilo-lima", math.hypot, (3, 4), {}, None, None,
        TaskOptions(), STARTED, V2,
    ),
    "message-compressed": TaskMessage(
        "d4" * 16, "mike-november-oscar-papa", "builtins.len", ("x" * 100_000,), {}, None,
        None, TaskOptions(save=True), STARTED, V2,
    ),
    "message-retry": TaskMessage(
        "f6" * 16, "uniform-victor-whiskey-xray", "math.copysign", (2, -3), {}, None, None,
        TaskOptions(timeout=30.0, retried_from="a1" * 16), STARTED, V2,
    ),
}  # fmt: skip

RESULTS = {
    "result-success": TaskResult(
        "a1" * 16, "alpha-bravo-charlie-delta", "math.copysign", (2, -3), {}, -2.0, True,
        STARTED, STOPPED, 1, None, None, "wire-v2", TaskOptions(), V2,
    ),
    "result-failure": TaskResult(
        "e5" * 16, "quebec-romeo-sierra-tango", "tests.tasks.fail", ("boom",),
        {"timeout": 5}, "ValueError: boom\n\nTraceback (most recent call last):\n  ...",
        False, STARTED, STOPPED, 2, "builtins.id", "wire-v2", "wire-v2",
        TaskOptions(timeout=30.0, max_attempts=2, retried_from="a1" * 16), V2,
    ),
}  # fmt: skip


COMPACT = {
    "compact-success": RESULTS["result-success"],
    "compact-failure": RESULTS["result-failure"],
}


def samples() -> dict[str, bytes]:
    codec = Codec(Signer.from_secret(SECRET))
    made = {name: codec.encode(message) for name, message in MESSAGES.items()}
    made.update({name: codec.encode(record) for name, record in RESULTS.items()})
    made.update({name: codec.encode_compact(record) for name, record in COMPACT.items()})
    return made


def main() -> int:
    if WIRE_VERSION[0] != 2:
        print(f"this Q writes version {WIRE_VERSION}: the 2.0 samples are kept as they are")
        return 1
    OUT.mkdir(exist_ok=True)
    for name, data in samples().items():
        (OUT / f"{name}.bin").write_bytes(data)
        print(f"{name}.bin: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
