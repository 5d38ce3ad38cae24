"""The site's metrics view: producer-side counters and the queue's gauges, from real Redis."""

from __future__ import annotations

from typing import Any

from django.test import Client
from packages.qdjango.tests import jobs
from prometheus_client.parser import text_string_to_metric_families

from qdjango import async_task

ADD = "packages.qdjango.tests.jobs.add"


def scrape(client: Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/q/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_the_view_counts_what_this_site_enqueued_and_reads_the_queue(
    db_alias: str, q_cluster: dict[str, Any]
) -> None:
    queue = q_cluster["name"]
    client = Client()
    before = scrape(client)
    assert value(before, "q_tasks_enqueued_total", queue=queue, func=ADD) == 0
    for i in range(3):
        async_task(jobs.add, i, 1)
    async_task(jobs.add, 9, 9, q_options={"countdown": 600})
    after = scrape(client)
    assert value(after, "q_tasks_enqueued_total", queue=queue, func=ADD) == 4
    assert value(after, "q_queue_depth", queue=queue) == 3
    assert value(after, "q_queue_delayed", queue=queue) == 1
    assert value(after, "q_queue_in_flight", queue=queue) == 0
    assert value(after, "q_queue_dead", queue=queue) == 0
    assert value(after, "q_clusters", queue=queue) == 0


def test_the_view_adds_up_processes_in_multiprocess_mode(
    db_alias: str, q_cluster: dict[str, Any], tmp_path: Any, monkeypatch: Any
) -> None:
    """With ``PROMETHEUS_MULTIPROC_DIR`` (gunicorn), counts come from every process's files."""
    import subprocess
    import sys

    queue = q_cluster["name"]
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='packages.qdjango.tests.settings';"
        "django.setup();"
        "from django.conf import settings; import json, sys;"
        "settings.Q_CLUSTER = json.loads(sys.argv[1]);"
        "from qdjango import async_task;"
        "[async_task('packages.qdjango.tests.jobs.add', i, 1) for i in range(2)]"
    )
    import json

    for _ in range(2):
        subprocess.run([sys.executable, "-c", code, json.dumps(q_cluster)], check=True)
    samples = scrape(Client())
    assert value(samples, "q_tasks_enqueued_total", queue=queue, func=ADD) == 4
    assert value(samples, "q_queue_depth", queue=queue) == 4
