"""The Grafana dashboard and the alert rules in docs/operations name only metrics Q serves."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from qcluster.exporter import ClusterCollector
from qcluster.forking import ForkGuard
from qcluster.metrics import MetricsRecorder
from qcore import Delivery, TaskResult, build_message
from qcore.events import TaskOutcome, TasksSettled, WorkerLost
from qcore.testing import MemoryTransport

DOCS = Path(__file__).resolve().parents[2] / "docs" / "operations"
SITE_ONLY = {"q_clusters"}  # qdjango's view (packages/qdjango/tests/test_qdjango_metrics.py)
NAME = re.compile(r"\b(q_[a-z_]+)")


def served() -> set[str]:
    recorder = MetricsRecorder("default")
    record = TaskResult(
        id="a" * 32,
        name="x",
        func="math.floor",
        args=(),
        kwargs={},
        result=1,
        success=True,
        started=0.0,
        stopped=1.0,
    )
    message = build_message("math.floor", (1.5,), {})
    delivery = Delivery(message.id, b"", 1, 1, 1, "c")
    ran = TaskOutcome(message, delivery, record, True, 0.01)
    recorder.settled(TasksSettled((ran,), "c"))
    recorder.worker_lost(WorkerLost("c", 1, "killed by SIGKILL", None, None, 0))
    collector = ClusterCollector(recorder, MemoryTransport("default"), list, ForkGuard())
    names = set()
    for family in collector.collect():
        names.update(sample.name for sample in family.samples)
        names.add(family.name)
    return names | SITE_ONLY


def expressions() -> list[str]:
    dashboard = json.loads((DOCS / "q-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    rules = yaml.safe_load((DOCS / "q-alerts.yml").read_text())
    exprs += [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    return exprs


def test_the_dashboard_and_the_rules_name_only_served_metrics() -> None:
    names = served()
    used = {m for expr in expressions() for m in NAME.findall(expr)}
    assert used, "no metric found in the dashboard and rules"
    assert used <= names, sorted(used - names)


def test_the_rules_cover_a_growing_queue_dead_letters_and_no_live_cluster() -> None:
    rules = yaml.safe_load((DOCS / "q-alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {"QQueueGrowing", "QDeadLetters", "QNoLiveCluster"} <= alerts
