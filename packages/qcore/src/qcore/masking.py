"""What Q shows of secrets: nothing. URLs, keyword arguments and log fields are masked before
they are logged or displayed (logs, the admin, ``qinfo``).

A name is secret when it contains one of :data:`SECRET_NAMES` (case and ``-``/``_`` ignored):
``password``, ``db_password``, ``X-Api-Key`` and ``stripe_token`` all are. Callers may add
names of their own (the cluster's ``secret_names`` setting); the defaults always apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any
from urllib.parse import unquote_plus, urlsplit, urlunsplit

__all__ = ["MASK", "SECRET_NAMES", "LogMasker", "is_secret_name", "mask_mapping", "mask_url"]

MASK = "***"

SECRET_NAMES: tuple[str, ...] = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "access_key",
    "private_key",
    "credential",
    "authorization",
    "cookie",
    "session_key",
)
"""Parts of a name that mark its value as secret."""


def _normal(name: str) -> str:
    return name.lower().replace("-", "_")


def _parts(extra: Iterable[str]) -> tuple[str, ...]:
    return SECRET_NAMES + tuple(_normal(e) for e in extra if e)


def is_secret_name(name: object, extra: Iterable[str] = ()) -> bool:
    """Whether a value under ``name`` must never be shown."""
    if not isinstance(name, str):
        return False
    normal = _normal(name)
    return any(part in normal for part in _parts(extra))


def mask_mapping(values: Mapping[Any, Any], extra: Iterable[str] = ()) -> dict[Any, Any]:
    """A copy of ``values`` with every secret-named value (in nested mappings too) masked."""
    parts = _parts(extra)
    return _mask(values, parts)


def _mask(values: Mapping[Any, Any], parts: tuple[str, ...]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for key, value in values.items():
        if isinstance(key, str) and any(p in _normal(key) for p in parts):
            out[key] = MASK
        elif isinstance(value, Mapping):
            out[key] = _mask(value, parts)
        else:
            out[key] = value
    return out


def mask_url(url: str, extra: Iterable[str] = ()) -> str:
    """A URL fit for logs: the password of ``user:password@`` and every secret-named query
    parameter (``?password=``, ``?token=``) replaced by ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    if password is not None:
        user = parts.username or ""
        # As written: a Redis Cluster or Sentinel URL names several host:port pairs.
        netloc = f"{user}:{MASK}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:  # each parameter as it was written, only secret-named values replaced
        query = "&".join(
            f"{name}={MASK}" if sep and is_secret_name(unquote_plus(name), extra) else item
            for item in query.split("&")
            for name, sep, _ in [item.partition("=")]
        )
    if netloc == parts.netloc and query == parts.query:
        return url
    if not netloc and url.startswith(f"{parts.scheme}://"):  # unix:///path keeps its "//"
        masked = f"{parts.scheme}://{parts.path}"
        masked += f"?{query}" if query else ""
        return masked + (f"#{parts.fragment}" if parts.fragment else "")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class LogMasker:
    """A structlog processor: secret-named fields, and secret-named keys inside mapping
    fields (a task's ``kwargs``), are masked in every event, whoever logged it."""

    __slots__ = ("_parts",)

    def __init__(self, extra: Iterable[str] = ()) -> None:
        self._parts = _parts(extra)

    def __call__(
        self, logger: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        parts = self._parts
        for key, value in event.items():
            if key == "event":
                continue
            if any(p in _normal(key) for p in parts):
                # A secret is text; a number or a list under such a name is Q's own (a fencing
                # token, the secret_names setting).
                if isinstance(value, str | bytes | bytearray):
                    event[key] = MASK
                elif isinstance(value, Mapping):
                    event[key] = _mask(value, parts)
            elif isinstance(value, Mapping):
                event[key] = _mask(value, parts)
        return event
