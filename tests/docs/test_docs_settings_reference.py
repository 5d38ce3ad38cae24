"""The settings reference is generated from the code and documents everything; the django-q2
page maps every key Q refuses, and the system checks point to it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from tools.docs import settings_reference as ref

ROOT = Path(__file__).resolve().parents[2]
MIGRATION = ROOT / "docs" / "migration" / "django-q2.md"


def test_every_setting_and_option_is_documented() -> None:
    assert ref.undocumented() == []


def test_the_reference_names_every_setting_and_option() -> None:
    from qcluster import ClusterConfig
    from qcluster.cli import build_parser
    from qdjango.conf import DJANGO_KEYS

    text = ref.markdown()
    for key in ClusterConfig.field_names() | DJANGO_KEYS:
        assert f"### `{key}` {{#{key}}}" in text, key
    run = next(a for a in build_parser()._actions if a.dest == "command").choices["run"]  # type: ignore[index]
    for action in run._actions:
        if "-h" in action.option_strings:
            continue
        for flag in action.option_strings:
            assert f"`{flag}`" in text, flag
    for command in ("qcluster", "qinfo", "qmonitor", "q_import_django_q"):
        assert f"### `manage.py {command}`" in text


def test_a_field_without_a_docstring_is_caught() -> None:
    from dataclasses import dataclass

    @dataclass
    class Sample:
        documented: int = 1
        """Says what it is."""
        bare: int = 2

    assert ref.attribute_docs(Sample) == {"documented": "Says what it is."}


@pytest.mark.parametrize("key", sorted(__import__("qdjango.conf").conf.DJANGO_SETTINGS))
def test_documented_defaults_are_the_real_ones(key: str) -> None:
    from qdjango.conf import DJANGO_SETTINGS, parse

    default = ast.literal_eval(DJANGO_SETTINGS[key].default)
    if default is None:
        # Leaving it out is the default; None is only accepted where it is a value.
        return
    assert parse({key: default}) == parse({}), key


def test_the_django_q2_page_maps_every_key_q_refuses_and_the_checks_point_to_it() -> None:
    from qdjango.conf import MIGRATION_PAGE, SEED_ONLY_KEYS, problems

    page, anchor = MIGRATION_PAGE.split("#")
    assert ROOT / page == MIGRATION
    text = MIGRATION.read_text()
    section = text.split(f"## {anchor.capitalize()}\n", 1)[1].split("\n## ", 1)[0]
    first_cells = {
        name
        for line in section.splitlines()
        if line.startswith("| `")
        for name in re.findall(r"`([A-Za-z_]+)`", line.split("|")[1])
    }
    assert set(SEED_ONLY_KEYS) <= first_cells
    for key in SEED_ONLY_KEYS:
        [(_, message)] = problems({key: 1})
        assert MIGRATION_PAGE in message, message
