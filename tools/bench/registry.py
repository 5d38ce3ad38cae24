"""Every benchmarked configuration by name (standard library only: the driver imports it)."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["BASELINE", "ORDER", "Q_NAMES", "load"]

# Name -> module under tools.bench.peers. Q's configurations first, then the peers.
ORDER: dict[str, str] = {
    "q-redis": "q",
    "q-django-sqlite": "q",
    "q-django-pg": "q",
    "huey": "huey",
    "dramatiq": "dramatiq",
    "arq": "arq",
    "celery": "celery",
    "djq2-sqlite": "django_q2",
    "djq2-pg": "django_q2",
    "rq-simple": "rq",
    "rq-fork": "rq",
    "bare": "bare",
}
Q_NAMES = ("q-redis", "q-django-sqlite", "q-django-pg")
BASELINE = "@base"
"""Suffix of a Q configuration run from another checkout (``--baseline``)."""


def load(name: str) -> Any:
    """An instance of the configuration ``name``."""
    if name.endswith(BASELINE) and name[: -len(BASELINE)] in Q_NAMES:
        cls = type(load(name[: -len(BASELINE)]))
        attrs = {"name": name, "label": f"{cls.label}, baseline", "baseline_of": cls.name}
        if cls.pair == cls.name:
            attrs["pair"] = name
        return type(f"{cls.__name__}Baseline", (cls,), attrs)()
    if name not in ORDER:
        raise KeyError(f"unknown configuration {name!r}; known: {', '.join(ORDER)}")
    module = importlib.import_module(f"tools.bench.peers.{ORDER[name]}")
    for cls in module.PEERS:
        if cls.name == name:
            return cls()
    raise KeyError(f"tools.bench.peers.{ORDER[name]} defines no configuration {name!r}")
