# The README's "Testing code that sends tasks" (Django, pytest-django): no Redis, no cluster.
import pytest

from qdjango import async_task, fetch


@pytest.mark.django_db
def test_a_task_runs_at_the_call_with_sync(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": True}
    task_id = async_task("math.floor", 2.5)  # runs now: saved, hooked, its error re-raised
    task = fetch(task_id)
    assert task.success and task.result == 2
