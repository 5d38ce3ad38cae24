"""Logging for Q: structlog events from the libraries, rendering chosen by entry points.

Libraries only call :func:`get_logger` and emit events (``task.finished``, ``worker.lost``)
with fields. Entry points (the ``qcluster`` CLI, Django management commands) call
:func:`configure_logging` once: console rendering by default, JSON lines with ``json=True``.
"""

from __future__ import annotations

import logging
import os
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
    writer = LineWriter(out)
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    masker = LogMasker(secret_names)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            masker,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=lambda *_: _LineLogger(writer),
        cache_logger_on_first_use=False,
    )
    _configure_stdlib(writer, numeric, json=json, masker=masker)


class LineWriter:
    """Writes each log record as one whole line, in one ``write()`` of the stream's file.

    Every process of a cluster writes to the same stdout/stderr (the workers inherit the
    sentinel's). ``print()``, which structlog's ``PrintLogger`` uses, writes a record's text and
    its newline in two calls: under ``PYTHONUNBUFFERED=1`` each is a ``write()`` of its own, and
    with buffering so is a record longer than the buffer (8 KiB), so another process's record
    could land between the two ("two records, then an empty line"). One ``write()`` of the
    whole line is never split by another process's on a regular file (``O_APPEND`` or a shared
    offset); on a pipe, up to ``PIPE_BUF`` (4 KiB) bytes are. A stream without a file (a
    ``StringIO``, a test's capture) gets the whole line in one ``write`` call.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        try:
            self._fd: int | None = stream.fileno()
        except (AttributeError, OSError, ValueError):
            self._fd = None

    def write(self, text: str) -> None:
        """Write ``text`` and a newline as one line."""
        line = text + "\n"
        if self._fd is None:
            self.stream.write(line)
            self.stream.flush()
            return
        self.stream.flush()  # what was printed to the stream before goes first
        data = memoryview(line.encode("utf-8", "backslashreplace"))
        while data:  # a short write (a signal, a full pipe): the rest follows at once
            data = data[os.write(self._fd, data) :]


class _LineLogger:
    """structlog's final logger: every method writes the rendered record as one line."""

    def __init__(self, writer: LineWriter) -> None:
        self._writer = writer

    def msg(self, message: str) -> None:
        self._writer.write(message)

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


class _LineHandler(logging.Handler):
    """The root logger's handler installed by :func:`configure_logging` (one whole line each)."""

    def __init__(self, writer: LineWriter) -> None:
        super().__init__()
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.writer.write(self.format(record))
        except Exception:
            self.handleError(record)


def _configure_stdlib(writer: LineWriter, level: int, *, json: bool, masker: LogMasker) -> None:
    """Route the standard library's records (redis-py's, a task's own) to the same lines.

    With ``json`` they are JSON records too, so every line of the stream parses. A root logger
    that has handlers of someone else's (a Django site's ``LOGGING``) is left alone.
    """
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h, _LineHandler)]
    if len(ours) != len(root.handlers):
        return
    for handler in ours:
        root.removeHandler(handler)
    handler = _LineHandler(writer)
    if json:
        handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                foreign_pre_chain=[
                    structlog.stdlib.add_log_level,
                    structlog.stdlib.add_logger_name,
                    masker,
                    structlog.processors.TimeStamper(fmt="iso", utc=True),
                ],
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    structlog.processors.JSONRenderer(),
                ],
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
