"""The settings reference, generated from the code: :class:`qcluster.ClusterConfig`'s fields
and their docstrings, qdjango's own ``Q_CLUSTER`` keys (:data:`qdjango.conf.DJANGO_SETTINGS`),
and the help of every option of ``qcluster`` and of qdjango's management commands.

The mkdocs hook (``tools/docs/hooks.py``) puts :func:`markdown` where a page says
``<!-- generated: settings -->``; ``tests/docs`` fails when anything here is undocumented.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import inspect
import itertools
import pkgutil
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Entry",
    "cluster_settings",
    "command_options",
    "django_settings",
    "markdown",
    "qcluster_options",
    "undocumented",
]


@dataclass(frozen=True)
class Entry:
    """One documented setting or option."""

    name: str
    type: str
    default: str
    doc: str
    extra: str = ""


def _md(text: str) -> str:
    """reST-flavoured docstring text as Markdown: ``x`` -> `x`, :class:`x` -> `x`."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)
    text = text.replace("``", "`")
    return " ".join(text.split())


def attribute_docs(cls: type) -> dict[str, str]:
    """The docstrings written under a class's attributes (``x: int = 1`` then a string)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = inspect.cleandoc(after.value.value)
    return docs


def _default(field: dataclasses.Field[Any]) -> str:
    if field.default is not dataclasses.MISSING:
        return f"`{field.default!r}`"
    factory = field.default_factory
    doc = inspect.getdoc(factory) or ""
    first = doc.split("\n\n")[0]
    return _md(first) if first else f"`{factory.__name__}()`"


def cluster_settings() -> list[Entry]:
    """Every :class:`qcluster.ClusterConfig` field: a ``Q_CLUSTER`` key, a ``Q_*`` variable."""
    from qcluster import ClusterConfig

    docs = attribute_docs(ClusterConfig)
    return [
        Entry(
            name=f.name,
            type=str(f.type),
            default=_default(f),
            doc=_md(docs.get(f.name, "")),
            extra=f"`Q_{f.name.upper()}`",
        )
        for f in dataclasses.fields(ClusterConfig)
    ]


def django_settings() -> list[Entry]:
    """qdjango's own ``Q_CLUSTER`` keys."""
    from qdjango.conf import DJANGO_SETTINGS

    return [
        Entry(name=key, type=doc.type, default=f"`{doc.default}`", doc=_md(doc.doc))
        for key, doc in sorted(DJANGO_SETTINGS.items())
    ]


def _options(parser: argparse.ArgumentParser, skip: frozenset[str] = frozenset()) -> list[Entry]:
    entries = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        if action.dest in skip:
            continue
        flags = ", ".join(f"`{flag}`" for flag in action.option_strings) or f"`{action.dest}`"
        if action.nargs == 0:
            kind = "flag"
        elif action.choices:
            kind = " \\| ".join(str(c) for c in action.choices)
        else:
            kind = getattr(action.type, "__name__", "str")
        if isinstance(action, argparse._AppendAction):
            kind += " (repeatable)"
        default = "" if action.default in (None, [], False) else f"`{action.default!r}`"
        entries.append(Entry(name=flags, type=kind, default=default, doc=action.help or ""))
    return entries


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def qcluster_options() -> dict[str, list[Entry]]:
    """The options of each ``qcluster`` subcommand, by subcommand."""
    from qcluster.cli import RUN_SETTINGS, build_parser

    found = {}
    for name, sub in _subcommands(build_parser()).items():
        entries = _options(sub)
        if name == "run":
            entries = [_with_setting(e, RUN_SETTINGS) for e in entries]
        found[name] = entries
    return found


def _with_setting(entry: Entry, settings: dict[str, str]) -> Entry:
    flag = entry.name.strip("`").lstrip("-").replace("-", "_")
    setting = settings.get(flag)
    if setting is None:
        return entry
    return dataclasses.replace(
        entry,
        default=f"`Q_{setting.upper()}`, else [`{setting}`](#{setting})",
    )


def command_options() -> dict[str, tuple[str, list[Entry]]]:
    """qdjango's management commands: their help and their own options (not Django's)."""
    from django.core.management.base import BaseCommand

    import qdjango.management.commands as package

    common = {a.dest for a in BaseCommand().create_parser("manage.py", "x")._actions}
    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        command = module.Command()
        parser = command.create_parser("manage.py", info.name)
        found[info.name] = (str(command.help), _options(parser, skip=frozenset(common)))
    return found


def _all() -> Iterator[tuple[str, Entry]]:
    for entry in cluster_settings():
        yield "Q_CLUSTER / ClusterConfig", entry
    for entry in django_settings():
        yield "Q_CLUSTER (Django)", entry
    for name, entries in qcluster_options().items():
        for entry in entries:
            yield f"qcluster {name}", entry
    for name, (_, entries) in command_options().items():
        for entry in entries:
            yield f"manage.py {name}", entry


def undocumented() -> list[str]:
    """Every setting or option whose documentation is missing."""
    return [f"{where}: {entry.name}" for where, entry in _all() if not entry.doc.strip()]


def _setting_section(entry: Entry, *, env: bool) -> str:
    facts = [f"**type** `{entry.type}`", f"**default** {entry.default}"]
    if env and entry.extra:
        facts.append(f"**environment** {entry.extra} (`qcluster run`)")
    return f"### `{entry.name}` {{#{entry.name}}}\n\n{' · '.join(facts)}\n\n{entry.doc}\n"


def _table(entries: list[Entry]) -> str:
    rows = ["| option | type | default | meaning |", "|---|---|---|---|"]
    for e in entries:
        doc = e.doc.replace("|", "\\|")
        rows.append(f"| {e.name} | {e.type} | {e.default} | {doc} |")
    return "\n".join(rows) + "\n"


def markdown() -> str:
    """The generated part of the settings page."""
    out = [
        "## Cluster settings\n",
        "Keys of `Q_CLUSTER` on a Django site; fields of `qcluster.ClusterConfig` in code; "
        "`Q_<NAME>` environment variables for `qcluster run` (its flags win over them). "
        "Times are in seconds.\n",
    ]
    out += [_setting_section(e, env=True) for e in cluster_settings()]
    out += [
        "## Django-only settings\n",
        "Keys of `Q_CLUSTER` that only a Django site has.\n",
    ]
    out += [_setting_section(e, env=False) for e in django_settings()]
    out.append("## The `qcluster` command\n")
    for name, entries in qcluster_options().items():
        out.append(f"### `qcluster {name}`\n\n{_table(entries)}")
    out.append("## Management commands\n")
    for name, (help_text, entries) in command_options().items():
        body = _table(entries) if entries else "No options of its own.\n"
        out.append(f"### `manage.py {name}`\n\n{help_text}\n\n{body}")
    return "\n".join(out)
