"""Functions the demo sends to the cluster."""


def divide(a, b):
    return a / b
