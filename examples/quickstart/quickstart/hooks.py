"""The hook of Django Q's Tasks page: it receives the saved Task."""


def print_result(task):
    # Runs in a worker process; flush so the line shows up at once.
    print(f"  hook print_result: {task.name} -> {task.result}", flush=True)
