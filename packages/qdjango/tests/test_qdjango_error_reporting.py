"""``Q_CLUSTER["error_reporter"]`` on a Django site: the system check names the extra."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from django.core import checks

from qcore import ConfigError
from qdjango.checks import check_error_reporter

SENTRY = {"sentry": {"dsn": "https://public@sentry.invalid/1"}}


def test_a_missing_sentry_sdk_is_a_system_check_error_naming_the_extra(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.Q_CLUSTER = {"name": "site", "error_reporter": SENTRY}
    assert check_error_reporter() == []
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)
    (error,) = check_error_reporter()
    assert error.id == "qdjango.E005" and error.level == checks.ERROR
    assert "sentry-sdk" in error.msg and "pip install 'qtq-django[sentry]'" in error.msg
    assert [e.id for e in checks.run_checks() if e.id.startswith("qdjango")] == ["qdjango.E005"]


def test_build_cluster_refuses_a_reporter_whose_package_is_missing(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qdjango.cluster import build_cluster

    settings.Q_CLUSTER = {"name": "site", "error_reporter": SENTRY}
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)
    with pytest.raises(ConfigError, match=r"qtq-django\[sentry\]"):
        build_cluster()


def test_the_setting_is_no_longer_refused_as_django_q2_only(settings: Any) -> None:
    from qdjango.conf import problems

    assert problems({"name": "site", "error_reporter": SENTRY}) == []
    assert problems({"name": "site", "error_reporter": "sentry"})[0][0] == "qdjango.E004"
