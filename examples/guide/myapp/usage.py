"""The guide's examples of the task API, as functions that packages/qdjango/tests runs on a cluster.

Each function returns what the page says it gives, so the test can check the page.
"""

from __future__ import annotations

from typing import Any


def send_and_wait() -> tuple[str, Any]:
    # --8<-- [start:send]
    from qdjango import async_task, result

    task_id = async_task("myapp.tasks.add", 2, 3, hook="myapp.tasks.report")
    value = result(task_id, wait=5000)  # 5; None if it did not finish within 5 s
    # --8<-- [end:send]
    return task_id, value


def fetch_a_record(task_id: str) -> Any:
    # --8<-- [start:fetch]
    from qdjango import fetch

    task = fetch(task_id, wait=5000)  # a Task row, or None
    summary = (task.func, task.args, task.result, task.success, task.time_taken() >= 0)
    # ('myapp.tasks.add', (2, 3), 5, True, True)
    # --8<-- [end:fetch]
    return summary


def a_failure() -> tuple[bool, str]:
    # --8<-- [start:failure]
    from qdjango import async_task, fetch

    task = fetch(async_task("myapp.tasks.divide", 1, 0), wait=5000)
    outcome = (task.success, task.result.splitlines()[0])
    # (False, 'ZeroDivisionError: division by zero'); the traceback follows in task.result
    # --8<-- [end:failure]
    return outcome


def options() -> tuple[Any, Any]:
    # --8<-- [start:options]
    from qdjango import async_task, result

    # Options are keywords of async_task; they never reach the task.
    quick = async_task("myapp.tasks.add", 1, 1, timeout=30, group="sums", save=True)

    # A task with a parameter called `timeout` of its own: Q's options go in q_options,
    # and the keyword goes to the task.
    receipt = async_task(
        "myapp.tasks.send_receipt", 42, timeout=3, q_options={"timeout": 60, "task_name": "r-42"}
    )
    values = (result(quick, wait=5000), result(receipt, wait=5000))
    # (2, 'receipt 42 sent (smtp timeout 3 s)')
    # --8<-- [end:options]
    return values


def later() -> tuple[bool, Any]:
    # --8<-- [start:later]
    from qdjango import async_task, result

    task_id = async_task("myapp.tasks.add", 20, 22, q_options={"countdown": 1})
    early = result(task_id)  # None: not due for another second
    value = result(task_id, wait=10_000)  # 42
    # --8<-- [end:later]
    return early is None, value


def groups() -> tuple[Any, ...]:
    # --8<-- [start:groups]
    from qdjango import async_task, count_group, delete_group, fetch_group, result_group

    for n in range(4):
        async_task("myapp.tasks.divide", 12, n, group="twelfths")
    results = result_group("twelfths", count=4, wait=10_000)  # [12.0, 6.0, 4.0] in any order
    failures = count_group("twelfths", failures=True)  # 1: 12 / 0
    tasks = fetch_group("twelfths", failures=True)  # a QuerySet of the 4 Task rows
    size = len(tasks)  # 4
    delete_group("twelfths", tasks=True)  # deletes the 4 rows (tasks=False: only the label)
    # --8<-- [end:groups]
    return sorted(results or []), failures, size
