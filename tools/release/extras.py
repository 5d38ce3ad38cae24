"""Every extra a distribution declares, and what installing it must make importable.

An extra belongs here the day it is declared in a package's pyproject.toml (an optional
integration: `[cron]`, `[metrics]`, `[sentry]` as they land): tests/release keeps this table
and the declared extras equal, and the release rehearsal installs each extra from the local
index and imports its modules.

    python -m tools.release.extras DIST_DIR   # checks the built wheels declare exactly these
                                              # extras, then prints "dist[extra] module ..."
"""

from __future__ import annotations

import sys
import zipfile
from email.parser import HeaderParser
from pathlib import Path

from packaging.utils import canonicalize_name

__all__ = ["EXTRAS", "declared_in_wheels"]

# (distribution, extra) -> the modules that extra must bring.
EXTRAS: dict[tuple[str, str], tuple[str, ...]] = {
    ("qtq-django", "django-redis"): ("django_redis",),
    ("qtq-django", "postgres"): ("psycopg", "psycopg_binary"),
    ("qtq-django", "sentry"): ("sentry_sdk",),
    ("qtq-cluster", "sentry"): ("sentry_sdk",),
}


def declared_in_wheels(dist_dir: Path) -> set[tuple[str, str]]:
    """(distribution, extra) for every ``Provides-Extra`` in the wheels of ``dist_dir``."""
    declared = set()
    for wheel in sorted(dist_dir.glob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            metadata = HeaderParser().parsestr(archive.read(name).decode())
        dist = canonicalize_name(metadata["Name"])
        declared |= {(dist, extra) for extra in metadata.get_all("Provides-Extra") or []}
    return declared


def main(argv: list[str]) -> int:
    declared = declared_in_wheels(Path(argv[0]))
    if declared != set(EXTRAS):
        print(
            f"extras declared by the wheels {sorted(declared)} != tools/release/extras.py "
            f"{sorted(EXTRAS)}: add each extra's modules to EXTRAS",
            file=sys.stderr,
        )
        return 1
    for (dist, extra), modules in sorted(EXTRAS.items()):
        print(f"{dist}[{extra}]", *modules)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
