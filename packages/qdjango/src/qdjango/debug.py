"""Django's error page without the passwords in URLs.

With ``DEBUG = True`` Django's error page lists every setting and each frame's variables. It
hides values whose *names* look secret (``SECRET_KEY``, ``PASSWORD``, ...), not a password
inside a URL: ``Q_CLUSTER["redis"] = "redis://:pw@host/0"`` (or ``...?password=pw``) would be
shown as it is, and so would a frame's ``url`` variable. :class:`ExceptionReporterFilter` keeps
Django's rules and also masks the password of every URL in settings and frame variables. The
app installs it when the site uses Django's default filter (``DEFAULT_EXCEPTION_REPORTER_FILTER``
unset); a site with a filter of its own makes it a subclass of this one.
"""

from __future__ import annotations

import re
from typing import Any

from django.views.debug import SafeExceptionReporterFilter

__all__ = ["DJANGO_DEFAULT", "ExceptionReporterFilter", "mask_urls"]

DJANGO_DEFAULT = "django.views.debug.SafeExceptionReporterFilter"

_QUOTES = "'\""
_USERINFO = re.compile(rf"(\b[a-z][a-z0-9+.-]*://[^\s/@:{_QUOTES}]*:)[^\s@/{_QUOTES}]+(?=@)", re.I)
_QUERY = re.compile(
    rf"([?&][^\s&=?{_QUOTES}]*(?:pass|secret|token)[^\s&=?{_QUOTES}]*=)[^\s&#{_QUOTES}]+", re.I
)


def mask_urls(text: str) -> str:
    """``text`` with the password of each URL in it replaced by ``***`` (in the user part and
    in password-like query parameters)."""
    return _QUERY.sub(r"\1***", _USERINFO.sub(r"\1***", text))


class _Shown:
    """A frame variable shown by its masked text (Django pretty-prints it with ``repr``)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class ExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's ``SafeExceptionReporterFilter``, and no password of a URL shown."""

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        cleansed = super().cleanse_setting(key, value)
        return mask_urls(cleansed) if isinstance(cleansed, str) else cleansed

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        shown = []
        for name, value in super().get_traceback_frame_variables(request, tb_frame):
            if not isinstance(value, int | float | type(None)):
                try:
                    text = repr(value)
                except Exception:  # Django shows its own note for a repr that raises
                    text = ""
                masked = mask_urls(text)
                if masked != text:
                    value = _Shown(masked)
            shown.append((name, value))
        return shown


def install() -> None:
    """Make this the site's filter, unless the site chose one of its own (called by the app)."""
    from django.conf import settings
    from django.views.debug import get_default_exception_reporter_filter

    if settings.DEFAULT_EXCEPTION_REPORTER_FILTER == DJANGO_DEFAULT:
        settings.DEFAULT_EXCEPTION_REPORTER_FILTER = "qdjango.debug.ExceptionReporterFilter"
        get_default_exception_reporter_filter.cache_clear()
