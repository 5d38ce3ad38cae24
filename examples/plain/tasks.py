"""The functions a plain-Python cluster runs (``qcluster run --import tasks``)."""

# --8<-- [start:tasks]
import time


def resize(width: int, height: int, factor: float = 0.5) -> tuple[int, int]:
    time.sleep(0.1)  # stands for real work
    return round(width * factor), round(height * factor)


def report(record) -> None:
    # A hook: called in the worker once the task's record is saved.
    print(f"{record.name}: {record.result}", flush=True)


# --8<-- [end:tasks]
