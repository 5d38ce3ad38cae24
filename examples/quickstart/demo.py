"""Q's quickstart, end to end: Redis, a migrated SQLite database, a cluster, and the examples
of Django Q's "Tasks" page, each result printed as it arrives.

    uv run python examples/quickstart/demo.py

Redis: ``$Q_REDIS_URL`` if it is set (it must answer); otherwise a private ``redis-server``
from PATH on a free port in a temporary folder, stopped at the end. Nothing else is touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
WAIT = 30_000  # ms

REDIS_HELP = """\
No Redis to use: Q_REDIS_URL is not set and there is no redis-server on PATH.
Either install Redis, for example
    sudo apt-get install redis-server      (Debian, Ubuntu)
    brew install redis                     (macOS)
and run this again (a private redis-server is started and stopped for the demo), or point
the demo at a Redis you run:
    Q_REDIS_URL=redis://127.0.0.1:6379/0 uv run python examples/quickstart/demo.py"""


def say(text: str = "") -> None:
    print(text, flush=True)


@contextmanager
def private_redis() -> Iterator[str]:
    """A redis-server of our own on a free port; stopped and removed afterwards."""
    import socket

    import redis

    binary = os.environ.get("REDIS_SERVER") or shutil.which("redis-server")
    if not binary:
        raise SystemExit(REDIS_HELP)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = tempfile.mkdtemp(prefix="q-quickstart-redis-")
    log = str(Path(folder) / "redis.log")
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", folder]
    command += ["--save", "", "--appendonly", "yes", "--logfile", log]
    server = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(
                        f"redis-server ({binary}) did not start; see {folder}"
                    ) from None
                time.sleep(0.05)
        client.close()
        say(f"Redis:    a private redis-server on port {port} (stopped at the end)")
        yield url
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def configured_redis(url: str) -> Iterator[str]:
    import redis

    from qcore import mask_url

    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise SystemExit(
            f"Q_REDIS_URL={mask_url(url)} does not answer ({exc}). Start that Redis, or unset "
            "Q_REDIS_URL to let the demo run a private redis-server."
        ) from None
    finally:
        client.close()
    say(f"Redis:    {mask_url(url)} (from Q_REDIS_URL)")
    yield url


def main() -> int:
    url = os.environ.get("Q_REDIS_URL")
    with configured_redis(url) if url else private_redis() as redis_url:
        os.environ["Q_REDIS_URL"] = redis_url
        return run_examples()


def run_examples() -> int:
    sys.path.insert(0, str(HERE))
    os.environ["DJANGO_SETTINGS_MODULE"] = "quickstart.settings"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from qdjango import async_task, delete_group, fetch, result, result_group
    from qdjango.cluster import build_cluster

    call_command("migrate", verbosity=0)
    say(f"Database: {settings.DATABASES['default']['NAME']} (migrated)")

    cluster = build_cluster(log_level="warning")
    cluster.start()
    say(f"Cluster:  {cluster.config.workers} workers on queue {cluster.config.queue!r}\n")
    problems = []

    def show(call: str, task_id: str, expected: object) -> None:
        value = result(task_id, wait=WAIT)
        say(f"{call:<66} -> {value!r}")
        if value != expected:
            problems.append(f"{call} gave {value!r}, expected {expected!r}")

    try:
        # create the task
        show("async_task('math.copysign', 2, -2)", async_task("math.copysign", 2, -2), -2.0)

        # or with import and storing the id
        from math import copysign

        task_id = async_task(copysign, 2, -2)
        show("async_task(copysign, 2, -2)", task_id, -2.0)

        # in most cases you will want to use a hook: it gets the saved Task
        hooked = async_task("math.modf", 2.5, hook="quickstart.hooks.print_result")
        call = "async_task('math.modf', 2.5, hook='quickstart.hooks.print_result')"
        show(call, hooked, (0.5, 2.0))

        # a lambda travels too (pickled with cloudpickle)
        show("async_task(lambda x: x * 2, 21)", async_task(lambda x: x * 2, 21), 42)

        # a task that fails: its result is the error, with the traceback
        failing = async_task("quickstart.tasks.divide", 1, 0)
        task = fetch(failing, wait=WAIT)
        first_line = str(task.result).splitlines()[0] if task else None
        call = "async_task('quickstart.tasks.divide', 1, 0)"
        say(f"{call:<66} -> Failure: {first_line}")
        if task is None or task.success:
            problems.append("the failing task did not fail")

        # groups: clear the group first, or the results of earlier runs add up
        delete_group("modf", tasks=True)
        for i in range(4):
            async_task("math.modf", i, group="modf")
        group = result_group("modf", count=4, wait=WAIT)
        call = "result_group('modf', count=4) after 4 x math.modf"
        say(f"{call:<66} -> {sorted(group or [])}")
        if not group or len(group) < 4:
            problems.append(f"the group has {group!r}")
    finally:
        code = cluster.stop()
        say(f"\nCluster stopped (exit code {code}).")
    if problems or code != 0:
        for problem in problems:
            say(f"PROBLEM: {problem}")
        return 1
    say(
        "Look at the results in the admin:\n"
        "    uv run python examples/quickstart/manage.py createsuperuser\n"
        "    uv run python examples/quickstart/manage.py runserver\n"
        "then open http://127.0.0.1:8000/admin/ (see examples/quickstart/README.md)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
