"""Dotted paths to callables: ``"math.copysign"``, ``"pkg.mod.Class.method"``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from qcore.errors import FunctionNotFound

__all__ = ["dotted_path", "resolve"]

_cache: dict[str, Callable[..., Any]] = {}


def resolve(path: str) -> Callable[..., Any]:
    """Import the longest module prefix of ``path`` and walk the rest as attributes.

    Raises :class:`FunctionNotFound` naming the part that was missing. Successful look-ups
    are cached for the life of the process (workers resolve the same paths over and over).
    """
    found = _cache.get(path)
    if found is not None:
        return found
    if not isinstance(path, str) or not path or path.startswith(".") or path.endswith("."):
        raise FunctionNotFound(f"{path!r} is not a dotted path such as 'math.copysign'")
    parts = path.split(".")
    module = None
    index = len(parts)
    while index > 0:
        name = ".".join(parts[:index])
        try:
            module = importlib.import_module(name)
            break
        except ModuleNotFoundError as exc:
            # Only swallow "this very module is missing"; an import error raised *inside*
            # an existing module is the user's bug and must surface as it is.
            if exc.name is None or not (name == exc.name or name.startswith(exc.name + ".")):
                raise
            index -= 1
    if module is None:
        raise FunctionNotFound(f"cannot resolve {path!r}: no module named {parts[0]!r}")
    target: Any = module
    for depth, attr in enumerate(parts[index:], start=index):
        try:
            target = getattr(target, attr)
        except AttributeError:
            owner = ".".join(parts[:depth])
            raise FunctionNotFound(
                f"cannot resolve {path!r}: {owner!r} has no attribute {attr!r}"
            ) from None
    if not callable(target):
        raise FunctionNotFound(
            f"cannot resolve {path!r}: it names a {type(target).__name__}, not a callable"
        )
    _cache[path] = target
    return target  # type: ignore[no-any-return]


def dotted_path(func: Callable[..., Any] | str) -> str:
    """A readable dotted name for a callable (what records and logs show as ``func``)."""
    if isinstance(func, str):
        return func
    module = getattr(func, "__module__", None) or "?"
    qualname = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    if qualname is None:
        qualname = type(func).__qualname__
    return f"{module}.{qualname}"
