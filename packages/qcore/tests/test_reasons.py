"""Dead letters counted by the kind of their reason: the texts Q writes, each of one kind."""

from __future__ import annotations

from qcore import count_reasons, reason_kind


def test_each_reason_q_writes_has_its_kind() -> None:
    cases = {
        "UnknownKey: the payload was signed with key id 1a2b3c4d, which is neither": "UnknownKey",
        "BadSignature: the payload's signature does not match": "BadSignature",
        "UnsupportedVersion: task message wire version 9.0 is not supported": "UnsupportedVersion",
        "WorkerLost: the worker running the task was lost (killed by SIGKILL; consumer c.1.0): "
        "out of attempts (attempt 3 of 3)": "WorkerLost",
        "TimeoutError: the task timed out after 1 s (its worker, pid 7, was killed): out of "
        "attempts (attempt 1 of 1)": "TimeoutError",
        "consumer c.0.1 stopped heartbeating while holding the task (worker lost): out of "
        "attempts (attempt 1 of 1)": "WorkerLost",
        "worker lost while running the task (consumer c.0.1): out of attempts": "WorkerLost",
        "CopiedPayload: the payload stored under a is task b": "CopiedPayload",
        "replayed": "replayed",
        "bad": "other",
        "": "other",
    }
    assert {reason: reason_kind(reason) for reason in cases} == cases


def test_counts_come_most_frequent_first() -> None:
    reasons = ["b", "UnknownKey: x", "BadMagic: y", "UnknownKey: z", "a"]
    assert list(count_reasons(reasons).items()) == [
        ("UnknownKey", 2),
        ("other", 2),
        ("BadMagic", 1),
    ]
