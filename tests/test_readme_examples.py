"""The README's examples are tests that run: the files it shows, verbatim."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "example",
    [
        "packages/qcluster/tests/test_readme_example.py",
        "packages/qdjango/tests/test_readme_example.py",
    ],
)
def test_the_readme_shows_the_example_as_it_runs(example: str) -> None:
    code = (ROOT / example).read_text()
    assert f"```python\n{code}```" in (ROOT / "README.md").read_text(), example
