"""DjangoResultStore on SQLite and PostgreSQL: upserts, precedence, save_limit, notices,
pickling into a spawned process, and the hook runner."""

from __future__ import annotations

import multiprocessing
import pickle
import threading
import time
from typing import Any

import pytest
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext
from packages.qdjango.tests import jobs

from qcore import ConfigError, TaskMessage, TaskResult
from qdjango import pruning
from qdjango.fields import Unreadable
from qdjango.hooks import DjangoHookRunner
from qdjango.models import Failure, Success, Task
from qdjango.store import DjangoResultStore


def record(
    *, success: bool = True, result: Any = 1, attempt: int = 1, stopped: float | None = None
) -> TaskResult:
    message = TaskMessage.new("packages.qdjango.tests.jobs.add", (1, 2), {"k": "v"}, group="g")
    return TaskResult.from_message(
        message, result=result, success=success, attempt_count=attempt, stopped=stopped
    )


def same(base: TaskResult, **changes: Any) -> TaskResult:
    import dataclasses

    return dataclasses.replace(base, **changes)


def test_upsert_keeps_one_row_per_id(db_alias: str, q_cluster: dict[str, Any]) -> None:
    store = DjangoResultStore(using=db_alias, save_limit=0)
    first = record(success=False, result="boom", attempt=1)
    store.save_many([first])
    store.save_many([same(first, result="boom again", attempt_count=2)])
    row = Task.objects.get(pk=first.id)
    assert row.result == "boom again" and row.attempt_count == 2 and not row.success
    assert row.args == (1, 2) and row.kwargs == {"k": "v"} and row.group == "g"
    assert row.func == "packages.qdjango.tests.jobs.add" and row.name == first.name
    assert abs(row.started.timestamp() - first.started) < 1e-3
    # An older attempt count never lowers the stored one.
    store.save_many([same(first, attempt_count=1)])
    assert Task.objects.get(pk=first.id).attempt_count == 2
    assert Task.objects.count() == 1


def test_a_later_failure_never_replaces_a_success(db_alias: str, q_cluster: dict[str, Any]) -> None:
    store = DjangoResultStore(using=db_alias, save_limit=0)
    ok = record(success=True, result=42)
    store.save_many([ok])
    store.save_many([same(ok, success=False, result="late failure", attempt_count=3)])
    row = Task.objects.get(pk=ok.id)
    assert row.success and row.result == 42

    failed = record(success=False, result="first try failed")
    store.save_many([failed])
    store.save_many([same(failed, success=True, result="second try worked", attempt_count=2)])
    row = Task.objects.get(pk=failed.id)
    assert row.success and row.result == "second try worked" and row.attempt_count == 2


def test_a_superseded_delivery_s_late_save_never_replaces_the_newer_row(
    db_alias: str, q_cluster: dict[str, Any]
) -> None:
    """Fenced saves (issue 11, item 3): a row keeps the record of the highest fence."""
    store = DjangoResultStore(using=db_alias, save_limit=0)
    newer = record(success=False, result="the re-run's failure", attempt=2)
    store.save_many([newer], fences=[9])
    store.save_many(
        [same(newer, success=True, result="the frozen run", attempt_count=1)], fences=[4]
    )
    row = Task.objects.get(pk=newer.id)
    assert (row.result, row.success, row.fence) == ("the re-run's failure", False, 9)
    # a later delivery still replaces it; an unfenced save too, keeping the fence
    store.save_many([same(newer, success=True, result="third", attempt_count=3)], fences=[12])
    store.save_many([same(newer, success=True, result="unfenced", attempt_count=3)])
    row = Task.objects.get(pk=newer.id)
    assert (row.result, row.fence) == ("unfenced", 12)
    store.save_many([same(newer, success=True, result="late", attempt_count=3)], fences=[11])
    assert Task.objects.get(pk=newer.id).result == "unfenced"
    # within one batch the same rules: the higher fence wins, whatever the order
    other = record(result="newer")
    store.save_many([other, same(other, result="older")], fences=[8, 5])
    assert (Task.objects.get(pk=other.id).result, Task.objects.get(pk=other.id).fence) == (
        "newer",
        8,
    )


def test_duplicates_in_one_batch(db_alias: str, q_cluster: dict[str, Any]) -> None:
    store = DjangoResultStore(using=db_alias, save_limit=0)
    ok = record(success=True, result="ok")
    store.save_many([ok, same(ok, success=False, result="dup failure")])
    assert Task.objects.get(pk=ok.id).result == "ok"


def test_a_batch_is_a_few_statements(db_alias: str, q_cluster: dict[str, Any]) -> None:
    store = DjangoResultStore(using=db_alias, save_limit=100)
    batch = [record(result=i) for i in range(300)]
    with CaptureQueriesContext(connections[db_alias]) as queries:
        store.save_many(batch)
    statements = [q["sql"] for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    # One INSERT per chunk (SQLite: up to 500 rows; PostgreSQL: all), one DELETE, a lock.
    assert len(statements) <= 5, statements
    assert Success.objects.count() == 100


def test_save_limit_keeps_the_newest_successes_and_all_failures(
    db_alias: str, q_cluster: dict[str, Any]
) -> None:
    store = DjangoResultStore(using=db_alias, save_limit=3)
    now = time.time()
    successes = [record(result=i, stopped=now + i) for i in range(5)]
    failures = [record(success=False, result=f"f{i}", stopped=now - 100 + i) for i in range(4)]
    store.save_many(successes[:2] + failures[:2])
    store.save_many(successes[2:] + failures[2:])
    # Fewer successes than a prune waits for: a closing store (a leaving worker) prunes.
    assert Success.objects.count() == 5
    store.close()
    assert sorted(Success.objects.values_list("result", flat=True)) == [2, 3, 4]
    assert Failure.objects.count() == 4


def test_pruning_comes_every_slack_successes_off_the_batch(
    db_alias: str, q_cluster: dict[str, Any]
) -> None:
    store = DjangoResultStore(using=db_alias, save_limit=3)
    slack = pruning.slack(3)
    now = time.time()
    saved = 0
    while saved < slack + 20:
        store.save_many([record(result=saved + i, stopped=now + saved + i) for i in range(10)])
        saved += 10
        # Never more than the limit plus one slack (this store is the only writer).
        assert Success.objects.count() <= 3 + slack
    # The prune ran after the batch that reached the slack, and no other since.
    assert Success.objects.count() == 3 + saved - slack
    newest = sorted(Success.objects.values_list("result", flat=True))[-3:]
    assert newest == list(range(saved - 3, saved))
    store.close()
    assert sorted(Success.objects.values_list("result", flat=True)) == newest


def test_save_limit_minus_one_keeps_no_success(db_alias: str, q_cluster: dict[str, Any]) -> None:
    store = DjangoResultStore(using=db_alias, save_limit=-1)
    store.save_many([record(), record(success=False, result="kept")])
    assert Success.objects.count() == 0 and Failure.objects.count() == 1


def test_concurrent_writers_prune_to_exactly_the_limit(
    db_alias: str, q_cluster: dict[str, Any]
) -> None:
    """Four writers (as four workers: a store each), each pruning on its own once it saved
    the slack, then once more as it closes while the others still write: the table never
    holds more than the limit plus a slack and a batch per writer, and exactly the limit at
    the end (the last prune saw every committed row)."""
    limit, writers, batch = 10, 4, 4
    bound = limit + writers * (pruning.slack(limit) + batch)
    errors: list[BaseException] = []
    seen: list[int] = []

    def writer() -> None:
        store = DjangoResultStore(using=db_alias, save_limit=limit)
        try:
            for _ in range(30):
                store.save_many([record(result=i) for i in range(batch)])
                seen.append(Success.objects.using(db_alias).count())
            store.close()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert max(seen) <= bound
    assert Success.objects.count() == limit


def test_saved_ids_are_published_after_commit(
    db_alias: str, q_cluster: dict[str, Any], redis_client: Any
) -> None:
    from qdjango.connection import notifier

    store = DjangoResultStore.from_settings()
    pubsub = redis_client.pubsub()
    pubsub.subscribe(notifier().channel)
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    batch = [record(), record(success=False, result="x")]
    store.save_many(batch)
    message = pubsub.get_message(timeout=5)
    assert set(message["data"].decode().split()) == {r.id for r in batch}
    # The notice came after the commit: another connection reads both rows.
    assert _rows_elsewhere(db_alias, [r.id for r in batch]) == 2

    # Inside a caller's transaction, the notice waits for its commit.
    later = [record()]
    with transaction.atomic(using=db_alias):
        store.save_many(later)
        assert pubsub.get_message(timeout=0.5) is None
        assert _rows_elsewhere(db_alias, [later[0].id]) == 0
    message = pubsub.get_message(timeout=5)
    assert message["data"].decode() == later[0].id
    assert _rows_elsewhere(db_alias, [later[0].id]) == 1
    pubsub.close()


def _rows_elsewhere(alias: str, ids: list[str]) -> int:
    """How many of ``ids`` a connection of another thread sees (committed rows only)."""
    seen: list[int] = []

    def count() -> None:
        try:
            seen.append(Task.objects.using(alias).filter(pk__in=ids).count())
        finally:
            connections.close_all()

    thread = threading.Thread(target=count)
    thread.start()
    thread.join(30)
    return seen[0]


def test_store_works_in_a_spawned_process(db_alias: str, q_cluster: dict[str, Any]) -> None:
    store = DjangoResultStore.from_settings()
    records = [record(result="from a spawned child")]
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=jobs.save_in_child, args=(pickle.dumps((store, records)), queue))
    child.start()
    outcome = queue.get(timeout=60)
    child.join(30)
    assert outcome == "ok"
    assert Task.objects.get(pk=records[0].id).result == "from a spawned child"


def test_get_reads_a_record_back(db_alias: str, q_cluster: dict[str, Any]) -> None:
    store = DjangoResultStore(using=db_alias, save_limit=0)
    saved = record(result={"a": [1, 2]})
    store.save_many([saved])
    assert store.get(saved.id).result == {"a": [1, 2]}
    assert store.get(saved.name).id == saved.id
    assert store.get("0" * 32) is None


def test_hook_runner_passes_the_saved_task(db_alias: str, q_cluster: dict[str, Any]) -> None:
    store = DjangoResultStore(using=db_alias, save_limit=0)
    done = record(result=7)
    store.save_many([done])
    seen: list[Any] = []
    DjangoHookRunner(using=db_alias)(seen.append, done)
    (task,) = seen
    assert isinstance(task, Task) and not task._state.adding and task._state.db == db_alias
    assert task.pk == done.id and task.result == 7 and task.time_taken() >= 0
    DjangoHookRunner(using=db_alias)(jobs.mark_saved, done)
    assert Task.objects.get(pk=done.id).cluster == f"{jobs.HOOK_MARK}:Task"


def test_a_value_signed_with_an_unknown_key_reads_as_unreadable(
    db_alias: str, q_cluster: dict[str, Any]
) -> None:
    from qcore import Codec, Signer

    store = DjangoResultStore(using=db_alias, save_limit=0)
    done = record(result="secret")
    store.save_many([done])
    forged = Codec(
        Signer.from_secret("another-secret-key-entirely-abcdefgh", purpose="qdjango.records")
    )
    Task.objects.filter(pk=done.id).update(result=None)
    table = Task._meta.db_table
    with connections[db_alias].cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET result = %s WHERE id = %s",
            [forged.encode("injected"), done.id],
        )
    value = Task.objects.get(pk=done.id).result
    assert isinstance(value, Unreadable) and "key" in value.reason


def test_secret_key_fallbacks_keep_old_rows_readable(
    db_alias: str, q_cluster: dict[str, Any], settings: Any
) -> None:
    store = DjangoResultStore(using=db_alias, save_limit=0)
    done = record(result="before rotation")
    store.save_many([done])
    old = settings.SECRET_KEY
    settings.SECRET_KEY = "a-brand-new-secret-key-for-the-rotation-test"
    settings.SECRET_KEY_FALLBACKS = [old]
    assert Task.objects.get(pk=done.id).result == "before rotation"
    settings.SECRET_KEY_FALLBACKS = []
    assert isinstance(Task.objects.get(pk=done.id).result, Unreadable)


@pytest.mark.parametrize("limit", [True, -2, "3"])
def test_bad_save_limit(limit: Any) -> None:
    with pytest.raises(ConfigError, match="save_limit"):
        DjangoResultStore(using="default", save_limit=limit)
