"""Error reporting: one event per failure to a fake Sentry transport, on a real cluster."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from qcluster import Cluster, ClusterConfig
from qcore import ConfigError
from qcore.testing import MemoryResultStore, MemoryTransport
from tests.cluster import sentry_fake, tasks
from tests.cluster.support import Bench, eventually

SENTRY = {"sentry": {"dsn": sentry_fake.DSN, "transport": sentry_fake.RedisListTransport}}
CARD = "4111-1111-1111-1111"


@pytest.fixture
def reported(bench: Bench, monkeypatch: pytest.MonkeyPatch) -> Any:
    key = f"sentry:{bench.queue}"
    monkeypatch.setenv("Q_TEST_SENTRY", f"{bench.url} {key}")
    return lambda: sentry_fake.events(bench.url, key)


def test_each_failure_is_reported_once_with_its_tags_and_never_its_arguments(
    bench: Bench, reported: Any
) -> None:
    failed = [bench.producer.enqueue(tasks.fail_with, CARD, api_key="k-123") for _ in range(3)]
    ok = bench.producer.enqueue_many(tasks.add, [(1, 2), (3, 4)])
    slow = bench.producer.enqueue(tasks.sleep_then, 30, CARD, timeout=1)
    hooked = bench.producer.enqueue(tasks.add, 5, 5, hook=tasks.raising_hook)
    # retry well past the kill of the sleeper: on a loaded machine the sentinel once took 8 s
    # from the timeout to the ack, the task went back to the queue and timed out twice.
    with bench.cluster(error_reporter=SENTRY, retry=30, start_method="fork"):
        bench.wait_all([*failed, *ok, slow, hooked])
        events = eventually(lambda: len(e := reported()) >= 5 and e, what="five events")
    assert len(reported()) == 5  # nothing more once the cluster stopped
    by_outcome: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_outcome.setdefault(event["tags"]["outcome"], []).append(event)
    assert {k: len(v) for k, v in by_outcome.items()} == {
        "failed": 3,
        "timed_out": 1,
        "hook_failed": 1,
    }
    assert sorted(e["tags"]["task_id"] for e in by_outcome["failed"]) == sorted(failed)
    first = by_outcome["failed"][0]
    assert first["tags"] == {
        "func": "tests.cluster.tasks.fail_with",
        "task_id": first["tags"]["task_id"],
        "attempt": "1",
        "queue": bench.queue,
        "outcome": "failed",
    }
    exception = first["exception"]["values"][0]
    assert exception["type"] == "ValueError"
    assert exception["stacktrace"]["frames"][-1]["function"] == "fail_with"
    assert by_outcome["timed_out"][0]["tags"]["task_id"] == slow
    assert by_outcome["hook_failed"][0]["tags"]["task_id"] == hooked
    text = json.dumps(events)
    assert CARD not in text and "k-123" not in text
    assert "vars" not in text  # no frame's local variables either


def test_with_log_args_the_message_and_masked_arguments_are_sent(
    bench: Bench, reported: Any
) -> None:
    task_id = bench.producer.enqueue(tasks.fail_with, CARD, api_key="k-123")
    with bench.cluster(error_reporter=SENTRY, log_args=True, workers=1):
        bench.wait_all([task_id])
        (event,) = eventually(reported, what="an event")
    assert event["exception"]["values"][0]["value"] == f"card {CARD} was declined"
    assert CARD in event["extra"]["args"]
    assert "k-123" not in json.dumps(event) and "api_key" in event["extra"]["kwargs"]


def test_a_missing_sentry_sdk_is_an_error_naming_the_extra(monkeypatch: Any) -> None:
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)
    with pytest.raises(ConfigError, match=r"pip install 'qtq-cluster\[sentry\]'"):
        Cluster(
            ClusterConfig(error_reporter={"sentry": {"dsn": sentry_fake.DSN}}),
            transport=MemoryTransport(),
            store=MemoryResultStore(),
        )


def test_a_bad_error_reporter_setting_is_refused_naming_it() -> None:
    with pytest.raises(ConfigError, match="error_reporter must map"):
        ClusterConfig(error_reporter={"sentry": "https://dsn"})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match=r"error_reporter 'nowhere\.Reporter' is neither"):
        Cluster(
            ClusterConfig(error_reporter={"nowhere.Reporter": {}}),
            transport=MemoryTransport(),
            store=MemoryResultStore(),
        )
