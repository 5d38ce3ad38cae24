"""The four distributions agree: one prefix, one version, bounds on each other of that version.

A wheel installed from an index resolves its siblings by these names and bounds; a name that
drifts back to a bare `qcore` installs someone else's library, and a bound that lags the version
installs an older sibling. Everything is read from the files, as a build would.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from tools.release.extras import EXTRAS
from tools.release.workspace import (
    IMPORT_NAMES,
    PREFIX,
    ROOT,
    changelog_headings,
    distribution_name,
    packages,
    root_project,
)
from trove_classifiers import classifiers as known_classifiers

OURS = {distribution_name(name) for name in IMPORT_NAMES}
# The bare names: unrelated projects on PyPI (qcore, qredis, qcluster) or free for anyone.
BARE = set(IMPORT_NAMES)
PYTHONS = ("3.11", "3.12", "3.13")


def agreement_problems(root: Path) -> list[str]:
    """Everything that disagrees about names, versions and bounds in the tree at ``root``."""
    problems = []
    members = packages(root)
    project = root_project(root)
    version = project["tool"]["bumpversion"]["current_version"]  # type: ignore[index]
    if project["project"]["version"] != version:  # type: ignore[index]
        problems.append(f"root project version {project['project']['version']} != {version}")  # type: ignore[index]
    for below, package in enumerate(members):
        want = distribution_name(package.import_name)
        if package.name != want:
            problems.append(f"{package.folder.name}: name {package.name!r}, expected {want!r}")
        names = package.project.get("import-names")
        if not isinstance(names, list) or names[:1] != [package.import_name]:
            problems.append(f"{package.name}: import-names {package.project.get('import-names')}")
        if package.version != version:
            problems.append(f"{package.name}: version {package.version} != {version}")
        if package.init_version != version:
            problems.append(f"{package.name}: __version__ {package.init_version} != {version}")
        siblings = {r.name: r for r in package.requirements if r.name.startswith(PREFIX)}
        expected = {m.name for m in members[:below]}
        if set(siblings) != expected:
            problems.append(
                f"{package.name}: depends on {sorted(siblings)}, not {sorted(expected)}"
            )
        for name, requirement in siblings.items():
            if str(requirement.specifier) != f"~={version}":
                problems.append(f"{package.name}: {requirement}, expected {name}~={version}")
        sources = package.tool.get("uv", {}).get("sources", {})  # type: ignore[attr-defined]
        if set(sources) != expected or any(s != {"workspace": True} for s in sources.values()):
            problems.append(f"{package.name}: [tool.uv.sources] {sources}")
        everything = package.requirements + [r for rs in package.extras.values() for r in rs]
        bare = sorted(r.name for r in everything if r.name in BARE)
        if bare:
            problems.append(f"{package.name}: depends on bare names {bare} (not ours on PyPI)")
    return problems


def test_names_versions_and_bounds_agree() -> None:
    assert agreement_problems(ROOT) == []


def test_a_drifted_bound_or_name_is_caught(tmp_path: Path) -> None:
    tree = _copy_tree(tmp_path)
    qdjango = tree / "packages" / "qdjango" / "pyproject.toml"
    qdjango.write_text(qdjango.read_text().replace('"qtq-redis~=0.', '"qtq-redis~=9.'))
    qredis = tree / "packages" / "qredis" / "pyproject.toml"
    qredis.write_text(qredis.read_text().replace('"qtq-core~=', '"qcore~='))
    problems = agreement_problems(tree)
    assert any(p.startswith("qtq-django: qtq-redis~=9.") for p in problems), problems
    assert any("bare names ['qcore']" in p for p in problems), problems


def test_the_workspace_root_uses_the_distribution_names() -> None:
    project = root_project()
    deps = project["project"]["dependencies"]  # type: ignore[index]
    assert sorted(deps) == sorted(OURS)
    assert set(project["tool"]["uv"]["sources"]) == OURS  # type: ignore[index]


def test_one_command_bumps_every_version_and_bound(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    bump = shutil.which("bump-my-version", path=str(bin_dir))
    assert bump, "bump-my-version is a dev dependency: uv sync"
    if shutil.which("uv") is None:
        pytest.skip("uv is not on PATH (the bump runs `uv lock`)")
    tree = _copy_tree(tmp_path)
    old = root_project(tree)["tool"]["bumpversion"]["current_version"]  # type: ignore[index]
    major, minor, _ = (int(part) for part in str(old).split("."))
    new = f"{major}.{minor + 1}.0"
    subprocess.run([bump, "bump", "minor"], cwd=tree, check=True, capture_output=True, timeout=120)
    assert agreement_problems(tree) == []
    assert {p.version for p in packages(tree)} == {new}
    headings = changelog_headings(tree)
    assert headings[0] == "Unreleased" and headings[1].startswith(f"{new} (")
    lock = tomllib.loads((tree / "uv.lock").read_text())
    locked = {p["name"]: p["version"] for p in lock["package"] if p["name"] in OURS}
    assert locked == dict.fromkeys(OURS, new)
    left = [
        str(path.relative_to(tree))
        for path in tree.rglob("*")
        if path.is_file() and path.name != "uv.lock" and f'"{old}"' in path.read_text()
    ]
    assert left == [], f"still at {old} after the bump"


def _copy_tree(tmp_path: Path) -> Path:
    """The files a bump reads and writes, copied (the bump runs `uv lock` on them)."""
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("pyproject.toml", "uv.lock", "CHANGELOG.md"):
        shutil.copy(ROOT / name, tree / name)
    for package in packages():
        shutil.copytree(
            package.folder,
            tree / "packages" / package.import_name,
            ignore=shutil.ignore_patterns("tests", "__pycache__"),
        )
    return tree


@pytest.mark.parametrize("import_name", IMPORT_NAMES)
def test_metadata_is_complete(import_name: str) -> None:
    package = next(p for p in packages() if p.import_name == import_name)
    project = package.project
    assert project["license"] == "BSD-3-Clause"
    assert project["license-files"] == ["LICENSE"]
    assert (package.folder / "LICENSE").read_text() == (ROOT / "LICENSE").read_text()
    assert project["requires-python"] == f">={PYTHONS[0]}"
    classifiers = project["classifiers"]
    assert isinstance(classifiers, list)
    assert not set(classifiers) - known_classifiers, set(classifiers) - known_classifiers
    for python in PYTHONS:
        assert f"Programming Language :: Python :: {python}" in classifiers
    if import_name == "qdjango":
        for django in ("", " :: 5.2", " :: 6"):
            assert f"Framework :: Django{django}" in classifiers
    else:
        assert not [c for c in classifiers if c.startswith("Framework :: Django")]
    urls = project["urls"]
    assert isinstance(urls, dict)
    assert set(urls) == {"Homepage", "Documentation", "Changelog", "Issues", "Source"}
    assert urls["Source"].endswith(f"/packages/{import_name}")
    assert project["readme"] == "README.md"
    readme = (package.folder / "README.md").read_text()
    assert readme.startswith(f"# {package.name}\n")


def test_every_package_has_the_same_project_urls_apart_from_its_source() -> None:
    urls = [dict(p.project["urls"]) for p in packages()]  # type: ignore[call-overload]
    for each in urls:
        each.pop("Source")
    assert all(each == urls[0] for each in urls)


def test_every_declared_extra_is_checked_by_the_rehearsal() -> None:
    declared = {(p.name, extra) for p in packages() for extra in p.extras}
    assert declared == set(EXTRAS)


INSTALL = re.compile(r"\b(?:pip install|uv add|uv pip install)\s+([^\n#`]+)")


DOCUMENTS = sorted(
    str(path.relative_to(ROOT))
    for pattern in ("*.md", "docs/**/*.md", "examples/**/*.md", "packages/*/README.md")
    for path in ROOT.glob(pattern)
)


@pytest.mark.parametrize("path", DOCUMENTS)
def test_install_lines_name_our_distributions(path: str) -> None:
    text = (ROOT / path).read_text()
    named = []
    for match in INSTALL.finditer(text):
        for word in match.group(1).split():
            if word.startswith("-") or "/" in word or word in {"&&", ";"}:
                continue
            named.append(re.split(r"[\[<>=~!;]", word.strip("'\"`"))[0])
    ours = [name for name in named if name.startswith(PREFIX) or name in BARE]
    assert not [name for name in ours if name in BARE], f"{path} installs a bare name: {named}"
    assert not [name for name in ours if name not in OURS], f"{path}: unknown name in {named}"
    if path.startswith("packages/"):
        own = distribution_name(path.split("/")[1])
        assert f"pip install {own}" in text
