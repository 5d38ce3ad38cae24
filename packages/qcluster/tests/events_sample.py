"""The events guide's sample (docs/guide/events.md includes it; test_events_sample.py runs it)."""

# --8<-- [start:bus]
from qcore import EventBus
from qcore.events import TaskFailed, TaskSucceeded


def report_failure(event: TaskFailed) -> None:  # module-level: a cluster pickles its bus
    first_line = event.record.result.splitlines()[0]
    print(f"{event.record.func} failed on attempt {event.record.attempt_count}: {first_line}")


def report_success(event: TaskSucceeded) -> None:
    print(f"{event.record.func} ran in {event.duration * 1000:.1f} ms")


bus = EventBus()
bus.subscribe(TaskFailed, report_failure)
bus.subscribe(TaskSucceeded, report_success)
# then: Cluster(config, transport=..., store=..., events=bus), Producer(url, events=bus)
# --8<-- [end:bus]
