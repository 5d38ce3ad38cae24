"""Fast construction of frozen slots dataclasses, for the types a worker builds per task.

A frozen dataclass's generated ``__init__`` sets each field through ``object.__setattr__``;
setting the slots through their descriptors is two to three times faster (tools/bench/README.md,
'unchecked constructor'). That counts where a worker builds a message, a record or an event for
every task, and nowhere else: other types keep the dataclass's own ``__init__``.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["fast_init", "fields_set", "retyped_constructor", "unchecked_constructor"]

C = TypeVar("C", bound=type)


def _setters(cls: type, names: tuple[str, ...], namespace: dict[str, Any]) -> list[str]:
    lines = []
    for index, name in enumerate(names):
        slot = next(k.__dict__[name] for k in cls.__mro__ if name in k.__dict__)
        namespace[f"set_{index}"] = slot.__set__
        lines.append(f"    set_{index}(__obj, {name})")
    return lines


def unchecked_constructor(cls: type) -> Callable[..., Any]:
    """A positional constructor for a frozen slots dataclass that skips ``__init__`` (and its
    ``__post_init__`` checks): only for values already validated."""
    names = tuple(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    namespace: dict[str, Any] = {"new": object.__new__, "cls": cls}
    lines = [f"def build({', '.join(names)}):", "    __obj = new(cls)"]
    lines += _setters(cls, names, namespace)
    lines.append("    return __obj")
    exec("\n".join(lines), namespace)  # the source is built from field names only
    return namespace["build"]  # type: ignore[no-any-return]


def fast_init(cls: C) -> C:
    """Give a frozen slots dataclass an ``__init__`` of the same signature (names, order,
    plain defaults) that sets its slots through their descriptors, then calls its
    ``__post_init__`` (its checks) if it has one."""
    fields = dataclasses.fields(cls)
    post_init = getattr(cls, "__post_init__", None) is not None
    namespace: dict[str, Any] = {}
    params = []
    for index, f in enumerate(fields):
        if f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name} has a default factory: not for fast_init")
        if f.default is dataclasses.MISSING:
            params.append(f.name)
        else:
            namespace[f"default_{index}"] = f.default
            params.append(f"{f.name}=default_{index}")
    names = tuple(f.name for f in fields)
    lines = [f"def __init__({', '.join(('__obj', *params))}):"]
    lines += _setters(cls, names, namespace) or ["    pass"]
    if post_init:
        lines.append("    __obj.__post_init__()")
    exec("\n".join(lines), namespace)  # the source is built from field names only
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[misc]
    return cls


def fields_set(cls: type) -> Callable[[Any], dict[str, Any]]:
    """A function giving the fields of an instance of the dataclass ``cls`` that are not None,
    by name in field order: written out field by field, which costs a quarter of a loop over
    the fields (tools/bench/README.md, 'issue 14')."""
    names = tuple(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    lines = ["def fields_set(obj):", "    out = {}"]
    for name in names:
        lines += [f"    v = obj.{name}", "    if v is not None:", f"        out[{name!r}] = v"]
    lines.append("    return out")
    namespace: dict[str, Any] = {}
    exec("\n".join(lines), namespace)  # the source is built from field names only
    return namespace["fields_set"]  # type: ignore[no-any-return]


def retyped_constructor(cls: type) -> Callable[..., Any]:
    """:func:`unchecked_constructor`, a third of its cost for a class of many fields: the
    fields are stored on an instance of a twin class (the same slots, not frozen: plain
    attribute stores, which the interpreter specializes), which then takes ``cls`` as its
    class (allowed between classes of the same bases and slots). For a class whose slots are not
    exactly its fields (a ``__weakref__``), or where the retyped instance does not read back as
    built, it is :func:`unchecked_constructor`."""
    names = tuple(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    if tuple(cls.__dict__.get("__slots__", ())) != names:
        return unchecked_constructor(cls)
    # The same bases (a Generic[T] too: new_class resolves it), the same slots.
    bases = cls.__dict__.get("__orig_bases__", cls.__bases__)
    try:
        twin = types.new_class(
            f"{cls.__name__}Twin", bases, {}, lambda ns: ns.update(__slots__=names)
        )
    except TypeError:
        return unchecked_constructor(cls)
    namespace: dict[str, Any] = {"cls": cls, "twin": twin}
    lines = [f"def build({', '.join(names)}):", "    __obj = twin()"]
    lines += [f"    __obj.{name} = {name}" for name in names]
    lines += ["    __obj.__class__ = cls", "    return __obj"]
    exec("\n".join(lines), namespace)  # the source is built from field names only
    build = namespace["build"]
    values = [object() for _ in names]
    try:
        probe = build(*values)
    except (TypeError, AttributeError):
        return unchecked_constructor(cls)
    if type(probe) is not cls or any(getattr(probe, n) is not v for n, v in zip(names, values)):
        return unchecked_constructor(cls)
    return build  # type: ignore[no-any-return]
