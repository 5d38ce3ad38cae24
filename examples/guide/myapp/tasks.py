"""The task functions of the guide's examples: an app's ``tasks.py``."""

# --8<-- [start:tasks]
import logging

log = logging.getLogger(__name__)


def add(a: int, b: int) -> int:
    return a + b


def divide(a: float, b: float) -> float:
    return a / b


def send_receipt(order_id: int, *, timeout: int = 10) -> str:
    # This task has a parameter called `timeout` of its own: see q_options below.
    return f"receipt {order_id} sent (smtp timeout {timeout} s)"


def report(task) -> None:
    # A hook: called with the saved Task once the task's record is saved.
    log.info("task %s finished: success=%s", task.name, task.success)


# --8<-- [end:tasks]
