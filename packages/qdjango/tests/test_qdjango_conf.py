"""Q_CLUSTER parsing, without a database or Redis; and importing qdjango without Django set up."""

from __future__ import annotations

import subprocess
import sys

import pytest

from qcore import DEFAULT_COMPRESS_THRESHOLD, ConfigError
from qdjango.conf import parse, problems


def test_defaults() -> None:
    conf = parse({})
    assert conf.cluster.name == "default" and conf.queue == "default"
    assert conf.save_limit == 250 and conf.sync is False and conf.label is None
    assert conf.compress_threshold == DEFAULT_COMPRESS_THRESHOLD
    assert conf.redis_url is None and dict(conf.redis_kwargs) == {}


def test_name_is_also_the_queue_unless_a_queue_is_named() -> None:
    assert parse({"name": "shop"}).queue == "shop"
    assert parse({"name": "shop", "queue": "emails"}).queue == "emails"


def test_cluster_settings_map_onto_cluster_config() -> None:
    conf = parse(
        {
            "workers": 3,
            "timeout": 20,
            "retry": 45,
            "max_attempts": 2,
            "recycle": 100,
            "max_rss": 200_000,
            "prefetch": 8,
            "redis": "redis://example:6380/2",
            "compress": True,
            "save_limit": 10,
            "label": "Jobs",
        }
    )
    c = conf.cluster
    assert (c.workers, c.timeout, c.retry, c.max_attempts) == (3, 20, 45, 2)
    assert (c.recycle, c.max_rss, c.prefetch) == (100, 200_000, 8)
    assert conf.redis_url == "redis://example:6380/2"
    assert conf.compress_threshold == 1024 and conf.save_limit == 10 and conf.label == "Jobs"


def test_redis_as_keyword_dict_and_compress_off() -> None:
    conf = parse({"redis": {"host": "cache", "port": 6380, "db": 1}, "compress": False})
    assert dict(conf.redis_kwargs) == {"host": "cache", "port": 6380, "db": 1}
    assert conf.redis_url is None and conf.compress_threshold is None


def test_save_limit_minus_one_turns_saving_off() -> None:
    assert parse({"save_limit": -1}).cluster.save is False
    assert parse({"save_limit": 0}).cluster.save is True


def test_every_problem_is_listed_at_once() -> None:
    found = problems({"wrokers": 2, "bulk": 10, "save_limit": -5, "workers": 0})
    ids = [cid for cid, _ in found]
    assert ids == ["qdjango.E002", "qdjango.E002", "qdjango.E003", "qdjango.E004"]
    text = " ".join(message for _, message in found)
    assert "did you mean 'workers'?" in text and "use 'prefetch' instead" in text
    with pytest.raises(ConfigError) as caught:
        parse({"wrokers": 2, "bulk": 10})
    assert "wrokers" in str(caught.value) and "bulk" in str(caught.value)


def test_not_a_dict() -> None:
    assert problems("workers=4") == [("qdjango.E001", "Q_CLUSTER must be a dict, not a str")]


def test_import_needs_no_settings_and_loads_no_models() -> None:
    code = (
        "import sys, qdjango; "
        "assert getattr(qdjango, 'async') is qdjango.async_task; "
        "assert 'qdjango.models' not in sys.modules; "
        "from django.conf import settings; assert not settings.configured; "
        "from django.apps import apps; assert not apps.ready"
    )
    env_free = {"PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env_free, timeout=60
    )
    assert done.returncode == 0, done.stderr
