"""What the workspace says about its four distributions, read from the pyproject files.

One reading for the test that keeps names, versions and bounds agreed
(tests/release/test_distributions.py) and for the release rehearsal (rehearse.sh), so the two
can never disagree about which distributions exist.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement

__all__ = [
    "IMPORT_NAMES",
    "PREFIX",
    "ROOT",
    "Package",
    "changelog_headings",
    "distribution_name",
    "packages",
    "root_project",
]

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "qtq-"
# Lowest first: each package may depend only on those before it (the arrows point down).
IMPORT_NAMES = ("qcore", "qredis", "qcluster", "qdjango")


def distribution_name(import_name: str) -> str:
    """``qcore`` -> ``qtq-core``: the name on the package index of an import package."""
    return PREFIX + import_name.removeprefix("q")


@dataclass(frozen=True)
class Package:
    """One workspace member as its pyproject.toml and ``__init__.py`` describe it."""

    folder: Path
    import_name: str
    project: dict[str, object]
    tool: dict[str, object]
    init_version: str | None

    @property
    def name(self) -> str:
        return str(self.project["name"])

    @property
    def version(self) -> str:
        return str(self.project["version"])

    @property
    def requirements(self) -> list[Requirement]:
        deps = self.project.get("dependencies", [])
        assert isinstance(deps, list)
        return [Requirement(str(d)) for d in deps]

    @property
    def extras(self) -> dict[str, list[Requirement]]:
        optional = self.project.get("optional-dependencies", {})
        assert isinstance(optional, dict)
        return {extra: [Requirement(str(d)) for d in deps] for extra, deps in optional.items()}


def _init_version(path: Path) -> str | None:
    match = re.search(r'^__version__ = "([^"]+)"$', path.read_text(), re.MULTILINE)
    return match.group(1) if match else None


def packages(root: Path = ROOT) -> list[Package]:
    """The members, lowest first (qcore, qredis, qcluster, qdjango)."""
    found = []
    for import_name in IMPORT_NAMES:
        folder = root / "packages" / import_name
        data = tomllib.loads((folder / "pyproject.toml").read_text())
        found.append(
            Package(
                folder=folder,
                import_name=import_name,
                project=data["project"],
                tool=data.get("tool", {}),
                init_version=_init_version(folder / "src" / import_name / "__init__.py"),
            )
        )
    return found


def root_project(root: Path = ROOT) -> dict[str, object]:
    """The root pyproject.toml, whole."""
    return tomllib.loads((root / "pyproject.toml").read_text())


def changelog_headings(root: Path = ROOT) -> list[str]:
    """The ``## `` headings of CHANGELOG.md, in order."""
    text = (root / "CHANGELOG.md").read_text()
    return [line[3:].strip() for line in text.splitlines() if line.startswith("## ")]


if __name__ == "__main__":
    # For rehearse.sh: one line per distribution, lowest first:
    # "name version import_name top-level,names,of,its,wheel".
    for package in packages():
        top = package.project.get("import-names", [package.import_name])
        assert isinstance(top, list)
        print(package.name, package.version, package.import_name, ",".join(map(str, top)))
