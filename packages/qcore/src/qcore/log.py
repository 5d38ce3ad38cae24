"""Logging for Q: structlog events from the libraries, rendering chosen by entry points.

Libraries only call :func:`get_logger` and emit events (``task.finished``, ``worker.lost``)
with fields. Entry points (the ``qcluster`` CLI, Django management commands) call
:func:`configure_logging` once: console rendering by default, JSON lines with ``json=True``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TextIO

from qcore.errors import ConfigError
from qcore.masking import LogMasker, mask_url

if TYPE_CHECKING:
    import structlog


def _import_structlog() -> Any:
    """structlog, imported without rich unless rich is loaded already.

    structlog imports rich, when it is installed, to render pretty tracebacks, which Q never
    uses (``format_exc_info`` renders exceptions as text before the renderer). That is memory
    and start-up time in every process of a cluster, for nothing (see tools/bench/README.md,
    'structlog without rich'): rich is hidden from that one import, and importable again right
    after it (``qmonitor`` uses it).
    """
    if "structlog" in sys.modules or "rich" in sys.modules:
        import structlog
    else:
        sys.modules["rich"] = None  # type: ignore[assignment]  # import rich -> ImportError
        try:
            import structlog
        finally:
            del sys.modules["rich"]
    return structlog


if not TYPE_CHECKING:
    structlog = _import_structlog()

__all__ = ["configure_logging", "get_logger", "is_configured", "mask_url"]

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


def get_logger(name: str, **initial: Any) -> Any:
    """A structlog logger bound to ``logger=name``."""
    return structlog.get_logger(name, **initial)


def is_configured() -> bool:
    """Whether logging was configured in this process (by :func:`configure_logging` or not)."""
    return bool(structlog.is_configured())


def configure_logging(
    *,
    json: bool = False,
    level: str | int = "info",
    stream: TextIO | None = None,
    secret_names: Iterable[str] = (),
) -> None:
    """Configure structlog (and the stdlib root logger) for a process that runs Q.

    ``json=True`` renders one JSON object per line, for log shippers; the default is
    human-readable console output. Safe to call again (in a child process, say). Fields
    named like secrets (see :mod:`qcore.masking`, plus ``secret_names``) are masked in every
    event, and so are such keys inside mapping fields (a task's ``kwargs``).
    """
    if isinstance(level, str):
        if level.lower() not in _LEVELS:
            raise ConfigError(f"unknown log level {level!r}; use one of {', '.join(_LEVELS)}")
        numeric = _LEVELS[level.lower()]
    else:
        numeric = int(level)
    out = stream or sys.stderr
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            LogMasker(secret_names),
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=numeric, stream=out, format="%(levelname)s %(name)s: %(message)s")
