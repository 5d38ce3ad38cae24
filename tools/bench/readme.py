"""Writes a bench run's tables into ``tools/bench/README.md``, between its markers.

    uv run python -m tools.bench.readme [.bench/results-<stamp>.json]   # default: the latest

The section "A run on record" is this command's output, never typed by hand: the figures on
record are always those of one run, as its JSON has them.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tools.bench.report import render

__all__ = ["BEGIN", "END", "main", "section"]

README = Path(__file__).with_name("README.md")
BEGIN = "<!-- bench:run begin (python -m tools.bench.readme writes this part) -->"
END = "<!-- bench:run end -->"


def _command(options: Mapping[str, Any]) -> str:
    words = ["uv run python -m tools.bench"]
    words.append(f"--runs {options['runs']} --tasks {options['tasks']}")
    names = [s for s in options["subjects"] if not s.endswith("@base")]
    words.append(f"--only {','.join(names)}")
    words.append(f'--workloads "{",".join(options["workloads"])}"')
    if options.get("baseline"):
        words.append(f"--baseline {options['baseline']}")
    return " ".join(words)


def section(document: Mapping[str, Any]) -> str:
    """The Markdown of one run: where and how it was taken, then its tables."""
    meta, options = document["meta"], document["options"]
    minutes = float(meta["seconds"]) / 60
    lines = [
        f"`{_command(options)}` ({minutes:.0f} minutes) on {meta['started']}, commit "
        f"{meta.get('commit', 'unknown')}, {meta['cpus']} CPUs, Python {meta['python']}, "
        f"redis-server {meta['redis_server']}. Written by `python -m tools.bench.readme` from "
        "that run's JSON.",
        "",
    ]
    in_table = in_targets = False
    for line in render(document).splitlines():
        is_table = line.startswith("|")
        is_target = line.startswith("  ") and line.split()[0] in ("PASS", "FAIL", "n/a")
        if in_targets and not is_target:
            lines += ["```", ""]
            in_targets = False
        if is_table != in_table:
            if lines and lines[-1] != "":
                lines.append("")
            in_table = is_table
        elif not is_table and not is_target and lines and lines[-1].startswith("|"):
            lines.append("")
        if is_target and not in_targets:
            lines.append("```")
            in_targets = True
        lines.append(line)
    if in_targets:
        lines.append("```")
    text = "\n".join(lines).strip()
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.readme", description=__doc__)
    parser.add_argument("json", nargs="?", type=Path, default=None, help="a run's JSON")
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args(argv)
    path = args.json or Path(__file__).resolve().parents[2] / ".bench" / "results-latest.json"
    document = json.loads(path.read_text())
    text = args.readme.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{args.readme} has no {BEGIN!r} ... {END!r} markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    args.readme.write_text(f"{head}{BEGIN}\n{section(document)}{END}{tail}")
    print(f"{args.readme}: 'A run on record' rewritten from {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
