"""The guide's code samples (docs/guide/*.md include them from examples/guide/myapp) run on a
real cluster and give what the pages say they give."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packages.qdjango.tests.conftest import q_cluster_value

GUIDE = Path(__file__).resolve().parents[3] / "examples" / "guide"


@pytest.fixture
def guide_cluster(
    settings: Any, redis_url: str, queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    from qdjango.cluster import build_cluster, close_connections

    # As on a site: the app's package is importable where the site and its workers run.
    monkeypatch.syspath_prepend(str(GUIDE))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(GUIDE), os.environ.get("PYTHONPATH", "")])
    )
    settings.Q_CLUSTER = q_cluster_value(redis_url, queue_name, "default", workers=2)
    cluster = build_cluster()
    close_connections()
    cluster.start(wait=120)
    yield cluster
    assert cluster.stop(timeout=30) == 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_task_pages_samples_give_what_the_page_says(guide_cluster: Any) -> None:
    from myapp import usage  # type: ignore[import-not-found]

    task_id, value = usage.send_and_wait()
    assert value == 5
    assert usage.fetch_a_record(task_id) == ("myapp.tasks.add", (2, 3), 5, True, True)
    assert usage.a_failure() == (False, "ZeroDivisionError: division by zero")
    assert usage.options() == (2, "receipt 42 sent (smtp timeout 3 s)")
    assert usage.later() == (True, 42)
    assert usage.groups() == ([4.0, 6.0, 12.0], 1, 4)

    from qdjango.models import Task

    assert Task.objects.filter(name="r-42").exists()
