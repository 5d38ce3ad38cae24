"""Summaries, Q's ratios to each peer, the targets, and the printed tables.

Every figure is the median of the runs, with min-max beside it. A ratio is always
``Q / peer`` on medians: above 1 means Q is faster for a rate (A, A', B, E), and for a time
or a size (C, D) below 1 means Q is better. ``render`` turns the JSON document into the text
the run prints and ``tools.bench.readme`` copies into the README.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tools.bench.measure import summarize
from tools.bench.registry import load

__all__ = ["METRICS", "Q_METRICS", "TARGETS", "build", "render"]

# metric -> (column title, unit, higher is better)
METRICS: dict[str, tuple[str, str, bool]] = {
    "A": ("A one-by-one", "tasks/s", True),
    "A'": ("A' bulk", "tasks/s", True),
    "B": ("B end to end", "tasks/s", True),
    "B_first": ("B 1st result", "s", False),
    "C_p50": ("C start p50", "ms", False),
    "C_p99": ("C start p99", "ms", False),
    "D": ("D idle PSS", "MiB", False),
    "E1k": ("E 1 kB args", "tasks/s", True),
    "E8": ("E 8 workers", "tasks/s", True),
    "R50": ("R recycle=50", "tasks/s", True),
}
# Q's own figures, from its stored records and its stores' "saved" notices.
Q_METRICS: dict[str, tuple[str, str, bool]] = {
    "B_steady": ("B steady", "tasks/s", True),
    "B_ran": ("B 1st task ran", "s", False),
    "V_p50": ("V visible p50, light", "ms", False),
    "V_p99": ("V visible p99, light", "ms", False),
    "VB_p50": ("V visible p50, during B", "ms", False),
    "VB_p99": ("V visible p99, during B", "ms", False),
    "B_result_bytes": ("bytes per result (Redis)", "bytes", False),
}
UNITS = {metric: unit for metric, (_, unit, _) in {**METRICS, **Q_METRICS}.items()}
REFERENCE = "redis-benchmark"


@dataclass(frozen=True)
class Target:
    text: str
    metric: str
    q: str
    peer: str | None
    """None: ``bound`` is an absolute value of Q's metric, not a ratio."""
    higher: bool
    bound: float
    issue: int = 7
    peer_metric: str | None = None
    """The peer's metric when it is not ``metric`` (a Q configuration against itself)."""


TARGETS = [
    Target("end to end, Redis store >= 2x huey", "B", "q-redis", "huey", True, 2.0),
    Target("end to end, Redis store >= 1.3x bare loop", "B", "q-redis", "bare", True, 1.3),
    Target("end to end, Django store on SQLite >= 5x django-q2", "B", "q-django-sqlite",
           "djq2-sqlite", True, 5.0),
    Target("end to end, Django store on PostgreSQL >= 5x django-q2", "B", "q-django-pg",
           "djq2-pg", True, 5.0),
    Target("async_task one by one >= 1x huey", "A", "q-django-sqlite", "huey", True, 1.0),
    Target("bulk enqueue >= 0.8x bare loop's pipelined LPUSH", "A'", "q-redis", "bare", True, 0.8),
    Target("start latency p50 <= 1.5x bare loop", "C_p50", "q-redis", "bare", False, 1.5),
    Target("start latency p99 <= 3 ms", "C_p99", "q-redis", None, False, 3.0),
    Target("idle PSS with 2 workers <= huey's", "D", "q-redis", "huey", False, 1.0),
    Target("steady, Django store on SQLite >= 0.7x Redis store", "B_steady",
           "q-django-sqlite", "q-redis", True, 0.7, 17),
    Target("steady, Django store on PostgreSQL >= 0.7x Redis store", "B_steady",
           "q-django-pg", "q-redis", True, 0.7, 17),
    Target("end to end, Django store on SQLite >= 0.7x Redis store", "B", "q-django-sqlite",
           "q-redis", True, 0.7, 17),
    Target("end to end, Django store on PostgreSQL >= 0.7x Redis store", "B", "q-django-pg",
           "q-redis", True, 0.7, 17),
    Target("first task ran <= 0.5 s after manage.py qcluster (SQLite)", "B_ran",
           "q-django-sqlite", None, False, 0.5, 17),
    Target("first task ran <= 0.5 s after manage.py qcluster (PostgreSQL)", "B_ran",
           "q-django-pg", None, False, 0.5, 17),
    Target("idle PSS, Django cluster on SQLite <= 1.15x qcluster run", "D", "q-django-sqlite",
           "q-redis", False, 1.15, 17),
    Target("idle PSS, Django cluster on PostgreSQL <= 1.15x qcluster run", "D", "q-django-pg",
           "q-redis", False, 1.15, 17),
    Target("result visible p99 <= 5 ms under light load, Redis store", "V_p99", "q-redis",
           None, False, 5.0, 17),
    Target("result visible p99 <= 5 ms under light load, Django store on SQLite", "V_p99",
           "q-django-sqlite", None, False, 5.0, 17),
    Target("result visible p99 <= 5 ms under light load, Django store on PostgreSQL", "V_p99",
           "q-django-pg", None, False, 5.0, 17),
    Target("end to end with recycle=50 >= 0.8x without recycling", "R50", "q-redis",
           "q-redis", True, 0.8, 21, "B"),
    Target("a no-op result <= 300 bytes of Redis", "B_result_bytes", "q-redis", None, False,
           300.0, 21),
]  # fmt: skip

# Ratio columns: (title, metric, which Q configuration: a name, or "pair" for the peer's own).
RATIO_COLUMNS: list[tuple[str, str, str]] = [
    ("A async_task", "A", "q-django-sqlite"),
    ("A Producer", "A", "q-redis"),
    ("A' enqueue_many", "A'", "q-redis"),
    ("B", "B", "pair"),
    ("C p50", "C_p50", "pair"),
    ("C p99", "C_p99", "pair"),
    ("D PSS", "D", "pair"),
    ("E 1 kB", "E1k", "pair"),
    ("E 8 w", "E8", "pair"),
]


def _median(results: Mapping[str, Any], subject: str, metric: str) -> float | None:
    value = results.get(subject, {}).get(metric, {}).get("median")
    return None if value is None else float(value)


def build(
    *,
    options: Mapping[str, Any],
    subjects: Sequence[str],
    results: Mapping[str, Mapping[str, list[float]]],
    errors: Mapping[str, Mapping[str, str]],
    notes: Sequence[str],
    details: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any],
) -> dict[str, Any]:
    """The JSON document: raw runs, summaries, ratios and targets."""
    summaries = {
        subject: {metric: summarize(values) for metric, values in metrics.items()}
        for subject, metrics in results.items()
    }
    described = {}
    for name in subjects:
        peer = load(name)
        described[name] = {
            "label": peer.label,
            "is_q": peer.is_q,
            "store": peer.store,
            "pair": peer.pair,
            "requirements": list(peer.requirements),
            "task_share": peer.task_share,
            "baseline_of": peer.baseline_of,
            "quick_share": peer.quick_share if options.get("quick") else 1.0,
        }
    ratios: dict[str, dict[str, float | None]] = {}
    for name in [*subjects, REFERENCE]:
        if name != REFERENCE and load(name).is_q:
            continue
        pair = load(name).pair if name != REFERENCE else "q-redis"
        row: dict[str, float | None] = {}
        for title, metric, q in RATIO_COLUMNS:
            q_value = _median(summaries, pair if q == "pair" else q, metric)
            peer_value = _median(summaries, name, metric)
            row[title] = q_value / peer_value if q_value and peer_value else None
        if any(v is not None for v in row.values()):
            ratios[name] = row
    targets = []
    for target in TARGETS:
        q_value = _median(summaries, target.q, target.metric)
        peer_metric = target.peer_metric or target.metric
        peer_value = _median(summaries, target.peer, peer_metric) if target.peer else None
        if q_value is None or (target.peer and not peer_value):
            measured, verdict = None, "n/a"
        else:
            measured = q_value / peer_value if target.peer and peer_value else q_value
            ok = measured >= target.bound if target.higher else measured <= target.bound
            verdict = "PASS" if ok else "FAIL"
        targets.append(
            {
                "target": target.text,
                "metric": target.metric,
                "q": target.q,
                "peer": target.peer,
                "bound": target.bound,
                "q_value": q_value,
                "peer_value": peer_value,
                "measured": measured,
                "verdict": verdict,
                "issue": target.issue,
            }
        )
    return {
        "meta": dict(meta),
        "options": {k: str(v) if k == "json_copy" else v for k, v in options.items()},
        "notes": list(notes),
        "subjects": described,
        "results": summaries,
        "errors": {k: dict(v) for k, v in errors.items()},
        "details": dict(details or {}),
        "ratios": ratios,
        "targets": targets,
    }


def _num(value: float, unit: str) -> str:
    if unit == "tasks/s":
        return f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.0f}"
    if unit in ("ms", "s"):
        return f"{value:.2f}"
    return f"{value:.1f}"


def _ratio(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}x" if value >= 0.1 else f"{value:.3f}x"


def _cell(summary: Mapping[str, Any] | None, unit: str) -> str:
    if not summary or summary.get("median") is None:
        return "—"
    text = _num(summary["median"], unit)
    if len(summary.get("runs", [])) > 1:
        text += f" ({_num(summary['min'], unit)}-{_num(summary['max'], unit)})"
    return text


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
    return "\n".join(lines)


def _summary_table(
    document: Mapping[str, Any], names: list[str], metrics: Mapping[str, tuple[str, str, bool]]
) -> str:
    results = document["results"]
    header = ["configuration"] + [f"{title} ({unit})" for title, unit, _ in metrics.values()]
    rows = []
    for name in names:
        if name not in results:
            continue
        cells = [name]
        for metric, (_, unit, _) in metrics.items():
            error = document["errors"].get(name, {}).get(metric.split("_")[0])
            summary = results[name].get(metric)
            cells.append("error" if error and not summary else _cell(summary, unit))
        rows.append(cells)
    return _table(header, rows)


def _target_line(target: Mapping[str, Any]) -> str:
    unit = UNITS[target["metric"]]
    if target["verdict"] == "n/a":
        detail = "not measured in this run"
    elif target["peer"]:
        detail = (
            f"{target['measured']:.2f}x ({target['q']} {_num(target['q_value'], unit)} vs "
            f"{target['peer']} {_num(target['peer_value'], unit)} {unit})"
        )
    else:
        detail = f"{_num(target['measured'], unit)} {unit}"
    return f"  {target['verdict']:4}  {target['target']}: {detail}"


def _baseline_table(document: Mapping[str, Any], subjects: list[str]) -> str | None:
    """Each Q configuration against its ``@base`` twin, metric by metric: after / before."""
    pairs = [
        (document["subjects"][s]["baseline_of"], s)
        for s in subjects
        if document["subjects"][s].get("baseline_of") in document["results"]
    ]
    if not pairs:
        return None
    metrics = {**METRICS, **Q_METRICS}
    rows = []
    for after, before in pairs:
        for metric, (title, unit, _) in metrics.items():
            new = _median(document["results"], after, metric)
            old = _median(document["results"], before, metric)
            if new is None or old is None:
                continue
            rows.append(
                [after, f"{title} ({unit})", _num(old, unit), _num(new, unit), _ratio(new / old)]
            )
    return _table(["configuration", "figure", "before", "after", "after / before"], rows)


def render(document: Mapping[str, Any]) -> str:
    """The tables a person reads: results, ratios, targets, and what went wrong."""
    subjects = list(document["subjects"])
    out: list[str] = []
    options, meta = document["options"], document["meta"]
    load = meta.get("loadavg") or {}
    out.append(
        f"Results: median (min-max) of {options['runs']} run(s), {options['tasks']:,} tasks, "
        f"{options['workers']} workers (E 8 w: {options['many_workers']}), "
        f"C over {options['latency_tasks']} tasks {options['interval'] * 1000:.0f} ms apart; "
        f"commit {meta.get('commit', '?')}, load average {load.get('start', float('nan')):.2f} "
        f"at the start, {load.get('end', float('nan')):.2f} at the end"
    )
    out.append(_summary_table(document, [*subjects, REFERENCE], METRICS))
    labels = ", ".join(f"{s} = {document['subjects'][s]['label']}" for s in subjects)
    out.append(f"\n{labels}; {REFERENCE} = redis-benchmark -t lpush -P 1000 on the same server.")
    for name in subjects:
        quick = document["subjects"][name].get("quick_share", 1.0)
        share = document["subjects"][name].get("task_share", 1.0)
        base = max(10, round(options["tasks"] * quick))
        if quick != 1.0:
            out.append(f"{name}: A and B over {base:,} tasks in this quick run.")
        if share != 1.0:
            tasks = max(10, round(base * share))
            out.append(f"{name}: B and E over {tasks:,} tasks (too slow for all of them).")

    q_names = [s for s in subjects if document["subjects"][s]["is_q"]]
    if any(m in document["results"].get(s, {}) for s in q_names for m in Q_METRICS):
        out.append(
            "\nQ's own figures, from its records: B steady = tasks/s between the 10th and 90th "
            "percentile of the tasks' ends;\nB 1st task ran = the first task's end - the worker "
            "command's launch; V visible = the store's 'saved' notice - the task's end,\nfor "
            "C's tasks (light load) and for B's (during B)."
        )
        out.append(_summary_table(document, q_names, Q_METRICS))

    if document["ratios"]:
        out.append(
            "\nQ / peer (medians). Rates (A, A', B, E): above 1 = Q faster. "
            "Times and sizes (C, D): below 1 = Q better.\nB-E compare like with like: "
            "Redis-store peers with q-redis, django-q2 with Q's Django store on the same database."
        )
        header = ["peer"] + [title for title, _, _ in RATIO_COLUMNS]
        rows = []
        for name, row in document["ratios"].items():
            rows.append([name] + [_ratio(v) for v in row.values()])
        out.append(_table(header, rows))

    before_after = _baseline_table(document, subjects)
    if before_after:
        out.append("\nThis checkout against the baseline (--baseline), same run:")
        out.append(before_after)

    for issue in sorted({t.get("issue", 7) for t in document["targets"]}):
        out.append(f"\nTargets of issue {issue} (medians):")
        out += [_target_line(t) for t in document["targets"] if t.get("issue", 7) == issue]

    if document["errors"]:
        out.append("\nFailures:")
        for name, failed in document["errors"].items():
            for workload, message in failed.items():
                out.append(f"  {name} {workload}: {message.splitlines()[0]}")
    for note in document["notes"]:
        out.append(f"Note: {note}")
    return "\n".join(out)
