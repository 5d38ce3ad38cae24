"""The admin under attack (issue 20): a retry runs only what Q signed, task data is always
escaped, rights match actions, no password reaches an error page or the Queue page, and odd
data in Redis never breaks a page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from django.utils.safestring import mark_safe
from packages.qdjango.tests import jobs

from qcore import TaskMessage
from qdjango import async_task
from qdjango.models import Failure, Success, Task

FAILURES = reverse("admin:qdjango_failure_changelist")
SUCCESSES = reverse("admin:qdjango_success_changelist")
QUEUE = reverse("admin:qdjango_queuestatus_changelist")


def _failure(text: str = "fails on purpose") -> str:
    """A Failure row saved by Q (run in-process through the worker's code and store)."""
    with pytest.raises(ValueError):
        async_task(jobs.fail, text, group=text, sync=True)
    return Failure.objects.get(group=text).pk  # type: ignore[no-any-return]


def _transport() -> Any:
    from qdjango.connection import transport

    return transport()


def _action(client: Any, url: str, action: str, ids: list[str]) -> Any:
    return client.post(url, {"action": action, "_selected_action": ids}, follow=True)


# -- 1. a retry runs only what Q signed --------------------------------------------------------


def _tamper_func(task_id: str, other: str) -> None:
    Task.objects.filter(pk=task_id).update(func="os.system")


def _tamper_hook(task_id: str, other: str) -> None:
    Task.objects.filter(pk=task_id).update(hook="os.system")


def _swap_args(task_id: str, other: str) -> None:
    # A validly signed args blob, taken from another row: each blob verifies on its own.
    from django.db import connections

    table = Task._meta.db_table
    with connections[Task.objects.db].cursor() as cursor:
        cursor.execute(f"SELECT args FROM {table} WHERE id = %s", [other])
        [blob] = cursor.fetchone()
        cursor.execute(f"UPDATE {table} SET args = %s WHERE id = %s", [blob, task_id])


def _unsign(task_id: str, other: str) -> None:
    Task.objects.filter(pk=task_id).update(signature=None)  # an older Q's row, or imported


TAMPER = {"func": _tamper_func, "hook": _tamper_hook, "args": _swap_args, "unsigned": _unsign}


@pytest.mark.parametrize("how", list(TAMPER))
def test_a_tampered_row_is_refused_by_retry_and_nothing_is_queued(
    db_alias: str, q_cluster: dict[str, Any], superuser_client: Any, how: str
) -> None:
    good, bad, other = _failure("good"), _failure("tampered"), _failure("echo $HOME")
    TAMPER[how](bad, other)
    # The bad row in a selection: nothing of it is sent.
    response = _action(superuser_client, FAILURES, "retry", [good, bad])
    assert b"Nothing was queued" in response.content
    expected = b"no signature" if how == "unsigned" else b"changed outside Q"
    assert expected in response.content
    assert _transport().queue_size() == 0
    # The untouched row alone is sent, as it was saved.
    response = _action(superuser_client, FAILURES, "retry", [good])
    assert b"1 task(s) queued again" in response.content
    [delivery] = _transport().fetch("security-test", count=5)
    from qdjango.conf import task_codec

    message = task_codec().decode_message(delivery.payload)
    assert (message.func, message.args, message.retried_from) == (
        "packages.qdjango.tests.jobs.fail",
        ("good",),
        good,
    )


def test_a_retry_after_a_key_rotation_verifies_with_the_fallback_and_not_without(
    db_alias: str, q_cluster: dict[str, Any], superuser_client: Any, settings: Any
) -> None:
    from django.contrib.auth.models import User

    task_id = _failure("before the rotation")
    old = settings.SECRET_KEY
    settings.SECRET_KEY = "a-new-secret-key-for-the-rotation-test-0123456789"
    settings.SECRET_KEY_FALLBACKS = []
    superuser_client.force_login(User.objects.get(username="admin"))  # sessions rotate too
    response = _action(superuser_client, FAILURES, "retry", [task_id])
    assert b"signed with a key this site no longer has" in response.content
    assert _transport().queue_size() == 0
    settings.SECRET_KEY_FALLBACKS = [old]
    response = _action(superuser_client, FAILURES, "retry", [task_id])
    assert b"1 task(s) queued again" in response.content
    assert _transport().queue_size() == 1


def test_run_again_refuses_a_success_whose_func_was_changed(
    db_alias: str, q_cluster: dict[str, Any], superuser_client: Any
) -> None:
    task_id = async_task(jobs.add, 1, 2, sync=True)
    Success.objects.filter(pk=task_id).update(func="builtins.exec")
    response = _action(superuser_client, SUCCESSES, "run_again", [task_id])
    assert b"Nothing was queued" in response.content
    assert _transport().queue_size() == 0


# -- 2. task data is always escaped ------------------------------------------------------------


def test_a_safestring_result_and_argument_are_shown_escaped(
    db_alias: str, q_cluster: dict[str, Any], superuser_client: Any
) -> None:
    task_id = async_task(jobs.safe_html, mark_safe("<b>an argument</b>"), sync=True)
    row = Success.objects.get(pk=task_id)
    assert type(row.result).__name__ == "SafeString"  # saved and read back as markup
    with pytest.raises(ValueError):
        async_task(jobs.fail, mark_safe("<script>alert('error')</script>"), sync=True)
    pages = [
        reverse("admin:qdjango_success_change", args=[task_id]),
        SUCCESSES,
        FAILURES,
        reverse("admin:qdjango_failure_change", args=[Failure.objects.get().pk]),
    ]
    for url in pages:
        page = superuser_client.get(url).content.decode()
        assert "<script>alert(" not in page and "<b>an argument</b>" not in page, url
    page = superuser_client.get(pages[0]).content.decode()
    assert "&lt;script&gt;alert(" in page and "&lt;b&gt;an argument&lt;/b&gt;" in page
    failures = superuser_client.get(pages[3]).content.decode()
    assert "&lt;script&gt;alert(" in failures


# -- 3. rights match actions -------------------------------------------------------------------

ROLES = {
    "anonymous": set(),
    "non-staff": set(),
    "staff without permissions": set(),
    "view-only": {"see"},
    "change-only": {"see", "retry", "requeue"},
    "delete-only": {"delete", "purge"},
}


def _log_in(client: Any, role: str) -> None:
    from django.contrib.auth.models import Permission, User

    if role == "anonymous":
        return
    user = User.objects.create_user("u", password="pw", is_staff=role != "non-staff")
    if role.endswith("-only"):
        verb = role.removesuffix("-only")
        models = ("success", "failure", "queuestatus")
        codenames = [f"{verb}_{model}" for model in models]
        perms = Permission.objects.filter(content_type__app_label="qdjango", codename__in=codenames)
        assert perms.count() == 3
        user.user_permissions.add(*perms)
    client.force_login(user)


def _dead_letter() -> str:
    from qdjango.conf import task_codec

    transport = _transport()
    message = TaskMessage.new(jobs.add, (1, 1))
    transport.enqueue(message.id, task_codec().encode_message(message))
    [delivery] = transport.fetch("security-test", count=1)
    assert transport.dead_letter(delivery, "dead for the permission test")
    return message.id


@pytest.mark.parametrize("role", list(ROLES))
def test_each_action_is_shown_and_allowed_only_with_its_permission(
    db_alias: str, q_cluster: dict[str, Any], client: Any, role: str
) -> None:
    may = ROLES[role]
    failure, doomed = _failure("first"), _failure("second")
    success = async_task(jobs.add, 1, 2, sync=True)
    _dead_letter()
    transport = _transport()
    _log_in(client, role)

    listing = client.get(FAILURES)
    assert (listing.status_code == 200) == ("see" in may)
    if "see" in may:
        assert (b'value="retry"' in listing.content) == ("retry" in may)
        assert b'value="delete_selected"' not in listing.content
        page = client.get(QUEUE).content
        assert (b'value="requeue"' in page) == ("requeue" in may)
        assert b'value="purge"' not in page
    else:
        assert client.get(QUEUE).status_code in (302, 403)

    # retry and run again: queued only with the change permission
    _action(client, FAILURES, "retry", [failure])
    _action(client, SUCCESSES, "run_again", [success])
    assert transport.queue_size() == (2 if "retry" in may else 0)
    assert Failure.objects.filter(pk=failure).exists()  # a retry never deletes

    # deleting a row: only with the delete permission
    client.post(reverse("admin:qdjango_failure_delete", args=[doomed]), {"post": "yes"})
    assert Failure.objects.filter(pk=doomed).exists() == ("delete" not in may)

    # the Queue page's buttons: requeue needs change, purge (for good) needs delete
    client.post(QUEUE, {"action": "requeue", "scope": "all"})
    assert transport.dead_size() == (0 if "requeue" in may else 1)
    client.post(QUEUE, {"action": "purge", "scope": "all"})
    assert transport.dead_size() == (0 if may & {"requeue", "purge"} else 1)
    if "purge" in may:
        assert transport.queue_size() == 0  # purged, not requeued


# -- 4. no password on an error page, nor on the Queue page ------------------------------------

SECRET = "hunter2-not-for-your-eyes"


@pytest.mark.parametrize(
    "url",
    [f"redis://:{SECRET}@127.0.0.1:1/0", f"redis://127.0.0.1:1/0?db=0&password={SECRET}"],
)
def test_the_debug_error_page_shows_no_redis_password(
    db_alias: str, q_cluster: dict[str, Any], settings: Any, client: Any, url: str
) -> None:
    from django.views.debug import get_default_exception_reporter_filter

    settings.Q_CLUSTER = {**q_cluster, "redis": url}
    settings.DEBUG = True
    client.raise_request_exception = False
    get_default_exception_reporter_filter.cache_clear()  # Django caches the filter it made
    try:
        page = client.get("/boom/")
        assert page.status_code == 500 and b"the view failed" in page.content
        assert b"Q_CLUSTER" in page.content and b"127.0.0.1:1" in page.content  # the settings
        assert b"url" in page.content  # the view's variables are listed
        assert SECRET.encode() not in page.content
        # Django's own filter alone shows it (what the app's filter is there for).
        settings.DEFAULT_EXCEPTION_REPORTER_FILTER = (
            "django.views.debug.SafeExceptionReporterFilter"
        )
        get_default_exception_reporter_filter.cache_clear()
        assert SECRET.encode() in client.get("/boom/").content
    finally:
        get_default_exception_reporter_filter.cache_clear()


def test_the_queue_page_masks_a_password_given_in_the_query_string(
    db_alias: str,
    q_cluster: dict[str, Any],
    settings: Any,
    superuser_client: Any,
    redis_factory: Any,
) -> None:
    acl = ["--user", "qtest", "on", f">{SECRET}", "~*", "&*", "+@all"]
    server = redis_factory(extra=acl)
    url = f"redis://127.0.0.1:{server.port}/0?username=qtest&password={SECRET}"
    settings.Q_CLUSTER = {**q_cluster, "redis": url}
    _dead_letter()
    page = superuser_client.get(QUEUE)
    assert page.status_code == 200 and b"dead for the permission test" in page.content
    assert b"password=***" in page.content
    assert SECRET.encode() not in page.content


# -- 5. odd data in Redis, a unix socket: the Queue page renders -------------------------------


def test_the_queue_page_renders_with_malformed_dead_letters(
    db_alias: str, q_cluster: dict[str, Any], superuser_client: Any
) -> None:
    good = _dead_letter()
    transport = _transport()
    client = transport.client
    keys = transport.keys
    for task_id, info in (("a" * 32, b"{}"), ("b" * 32, b"not json"), ("c" * 32, b"[1, 2]")):
        client.zadd(keys.dead, {task_id: 1_000})
        client.hset(keys.deadinfo, task_id, info)
    page = superuser_client.get(QUEUE)
    assert page.status_code == 200
    # Each shown once (its reason cell's text; the cell's title repeats it), escaped.
    assert page.content.count(b'">&lt;unreadable dead-letter entry') == 3
    assert good.encode() in page.content and b"dead for the permission test" in page.content


def test_the_queue_page_renders_on_a_unix_socket(
    db_alias: str,
    q_cluster: dict[str, Any],
    settings: Any,
    superuser_client: Any,
    redis_factory: Any,
    tmp_path: Path,
) -> None:
    socket = Path("/tmp") / f"q-{tmp_path.name[-20:]}.sock"  # short: a socket path has a limit
    server = redis_factory(extra=["--unixsocket", str(socket), "--unixsocketperm", "700"])
    try:
        settings.Q_CLUSTER = {**q_cluster, "redis": f"unix://{socket}"}
        _dead_letter()
        page = superuser_client.get(QUEUE)
        assert page.status_code == 200, page.content[:500]
        assert f"unix://{socket}".encode() in page.content
        assert b"dead for the permission test" in page.content
    finally:
        server.close()
