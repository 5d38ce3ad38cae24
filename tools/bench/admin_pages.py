"""The admin's pages on a large table: how long each takes with N ``Task`` rows on PostgreSQL.

    uv run python tools/bench/admin_pages.py [--rows 1000000] [--runs 20] [--queued 2000]
                                             [--keep] [--reuse]

Makes a database of its own on the local PostgreSQL (``$PGHOST``/``$PGPORT``/``$PGUSER``,
default 127.0.0.1:5432, postgres), migrates it, fills ``qdjango_task`` with ``--rows`` rows in
one ``INSERT ... SELECT generate_series`` (a tenth of them failures, finished over the last
week, run times from 0.1 ms to 1 s), starts a private redis-server for the Redis pages
(``--queued`` tasks waiting in it, 100 of them delayed), and times each page through Django's
test client as a logged-in superuser: the median, p95 and slowest of ``--runs`` requests after
one warm-up, with the load average. The pages include the lists' "Show counts" (``_facets``)
and a search. The target is 200 ms per page; the charts are separate requests (images) and
are timed too. The database is dropped at the end unless ``--keep``; with ``--reuse`` the rows
keep the times of their fill (an hour later, "last hour" and the charts read an empty hour).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

DB = "q_admin_pages_bench"
PAGES = (
    ("all tasks", "/admin/qdjango/task/"),
    ("all tasks, page 50", "/admin/qdjango/task/?p=50"),
    ("all tasks, failed only", "/admin/qdjango/task/?success__exact=0"),
    ("all tasks, last hour", "/admin/qdjango/task/?finished=hour"),
    ("all tasks, show counts", "/admin/qdjango/task/?_facets=1"),
    ("all tasks, failed, counts", "/admin/qdjango/task/?success__exact=0&_facets=1"),
    ("all tasks, by name", "/admin/qdjango/task/?o=1"),
    ("all tasks, search", "/admin/qdjango/task/?q=task-5000"),
    ("all tasks, search, common", "/admin/qdjango/task/?q=task-"),
    ("successful tasks", "/admin/qdjango/success/"),
    ("failed tasks", "/admin/qdjango/failure/"),
    ("failed tasks, last day", "/admin/qdjango/failure/?finished=day"),
    ("failed tasks, show counts", "/admin/qdjango/failure/?_facets=1"),
    ("a task", None),
    ("queue", "/admin/qdjango/queuestatus/"),
    ("queue, live part", "/admin/qdjango/queuestatus/?live=1"),
    ("queued tasks", "/admin/qdjango/queuedtask/"),
    ("chart: tasks per minute", "/admin/qdjango/queuestatus/chart/throughput.svg"),
    ("chart: run time p50/p99", "/admin/qdjango/queuestatus/chart/run-time.svg"),
    ("admin index", "/admin/"),
)

FILL = """
INSERT INTO qdjango_task (id, name, func, args, kwargs, result, "group", started, stopped,
                          success, attempt_count, cluster, run_time, fence)
SELECT md5(i::text), 'task-' || i, 'app.tasks.f' || (i % 20), NULL, NULL, NULL,
       CASE WHEN i % 7 = 0 THEN 'g' || (i % 100) END,
       now() - (i * interval '0.6 second') - interval '0.05 second',
       now() - (i * interval '0.6 second'),
       i % 10 <> 0, 1, 'bench', (i % 1000) / 1000.0 + 0.0001, 0
FROM generate_series(1, {rows}) AS i
"""


def _admin_connection(dbname: str) -> object:
    import psycopg

    return psycopg.connect(
        host=os.environ.get("PGHOST", "127.0.0.1"),
        port=int(os.environ.get("PGPORT", "5432")),
        user=os.environ.get("PGUSER", "postgres"),
        password=os.environ.get("PGPASSWORD", ""),
        dbname=dbname,
        autocommit=True,
    )


def _configure(redis_url: str) -> None:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="admin-pages-bench-secret-key-0123456789abcdef",
        ALLOWED_HOSTS=["*"],
        USE_TZ=True,
        ROOT_URLCONF="tools.bench.admin_pages_urls",
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django.contrib.staticfiles",
            "qdjango",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        STATIC_URL="static/",
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": DB,
                "USER": os.environ.get("PGUSER", "postgres"),
                "PASSWORD": os.environ.get("PGPASSWORD", ""),
                "HOST": os.environ.get("PGHOST", "127.0.0.1"),
                "PORT": int(os.environ.get("PGPORT", "5432")),
            }
        },
        Q_CLUSTER={"name": "bench", "redis": redis_url},
    )
    django.setup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--queued", type=int, default=2000, help="tasks waiting in Redis (100 of them delayed)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument(
        "--reuse", action="store_true", help="use the database a --keep run left (migrated)"
    )
    args = parser.parse_args()

    from tests.support.servers import RedisServer, redis_server_binary

    admin = _admin_connection("postgres")
    if not args.reuse:
        admin.execute(f"DROP DATABASE IF EXISTS {DB}")  # type: ignore[attr-defined]
        admin.execute(f"CREATE DATABASE {DB}")  # type: ignore[attr-defined]
    redis = RedisServer(redis_server_binary())
    redis.start()
    try:
        _configure(redis.url)
        _run(args)
    finally:
        redis.stop()
        from django.db import connections

        connections.close_all()
        if not args.keep:
            admin.execute(f"DROP DATABASE IF EXISTS {DB}")  # type: ignore[attr-defined]


def _run(args: argparse.Namespace) -> None:
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    call_command("migrate", verbosity=0)
    begun = time.perf_counter()
    if not args.reuse:
        with connection.cursor() as cursor:
            cursor.execute(FILL.replace("{rows}", str(int(args.rows))))
            # A table in use is vacuumed by autovacuum: its visibility map lets the list's
            # count read the index alone.
            cursor.execute("VACUUM ANALYZE qdjango_task")
        print(
            f"{args.rows:,} Task rows inserted and analysed in {time.perf_counter() - begun:.1f} s"
        )
        User.objects.create_superuser("bench", "bench@example.com", "bench-pw")
    _queue_tasks(args.queued)
    client = Client()
    client.force_login(User.objects.get(username="bench"))
    one = connection.cursor()
    one.execute("SELECT id FROM qdjango_task ORDER BY stopped DESC LIMIT 1 OFFSET 5000")
    task_id = one.fetchone()[0]
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"{args.runs} requests per page after one warm-up; load average {load} at the start\n")
    # median and slowest: wall time; CPU: this process's (Django, the templates); SQL: the
    # server's execution time of the page's queries (EXPLAIN ANALYZE).
    print(f"{'page':<28} {'median':>9} {'p95':>9} {'slowest':>9} {'CPU':>9} {'SQL':>9}  status")
    worst = 0.0
    for label, path in PAGES:
        url = path or f"/admin/qdjango/task/{task_id}/change/"
        client.get(url)
        times, cpu = [], []
        status = 0
        for _ in range(args.runs):
            start, start_cpu = time.perf_counter(), time.process_time()
            response = client.get(url)
            times.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
            status = response.status_code
        median = statistics.median(times)
        p95 = statistics.quantiles(times, n=20, method="inclusive")[18]
        worst = max(worst, median)
        sql = _sql_time(client, url)
        own = statistics.median(cpu)
        print(
            f"{label:<28} {median:>7.1f}ms {p95:>7.1f}ms {max(times):>7.1f}ms {own:>7.1f}ms"
            f" {sql:>7.1f}ms"
            f"  {status}"
        )
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"\nslowest median {worst:.1f} ms; load average {load} at the end")


def _queue_tasks(count: int) -> None:
    """``count`` tasks waiting in Redis for the Queue and Queued tasks pages (no cluster runs
    them), the last 100 delayed by an hour."""
    from qdjango.tasks import async_task

    for i in range(count):
        delayed = {"countdown": 3600} if i >= count - 100 else None
        async_task("math.sqrt", i, task_name=f"waiting-{i}", q_options=delayed)


def _sql_time(client: object, url: str) -> float:
    """The database's own time for the page's queries (EXPLAIN ANALYZE's execution times,
    in ms): what the page costs the server, apart from Python on a loaded machine."""
    import re

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        client.get(url)  # type: ignore[attr-defined]
    total = 0.0
    with connection.cursor() as cursor:
        for query in captured.captured_queries:
            sql = query["sql"]
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            cursor.execute("EXPLAIN (ANALYZE, FORMAT TEXT) " + sql.replace("%", "%%"))
            plan = "\n".join(row[0] for row in cursor.fetchall())
            found = re.search(r"Execution Time: ([0-9.]+) ms", plan)
            total += float(found.group(1)) if found else 0.0
    return total


if __name__ == "__main__":
    main()
