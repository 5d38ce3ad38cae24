"""ClusterConfig: defaults, validation messages, mappings and the environment."""

from __future__ import annotations

import os
import sys

import pytest

from qcluster import ClusterConfig
from qcore import ConfigError


def test_defaults_are_valid() -> None:
    config = ClusterConfig()
    assert config.workers == (os.cpu_count() or 1)
    assert config.timeout is None
    assert config.retry > config.heartbeat * 2
    if sys.platform == "linux":
        # No helper process, and workers share the sentinel's memory copy-on-write.
        assert config.start_method == "fork"
    assert config.log_args is False


def test_retry_must_exceed_timeout_with_a_message_that_says_why() -> None:
    with pytest.raises(ConfigError) as caught:
        ClusterConfig(timeout=60, retry=30)
    assert str(caught.value) == (
        "retry (30) must be greater than timeout (60): tasks would run twice"
    )
    with pytest.raises(ConfigError, match="retry"):
        ClusterConfig(timeout=30, retry=30)
    assert ClusterConfig(timeout=30, retry=31).timeout == 30


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"workers": 0}, "workers must be an integer >= 1, not 0"),
        ({"workers": True}, "workers must be an integer >= 1, not True"),
        ({"workers": 2.5}, "workers must be an integer >= 1"),
        ({"timeout": 0}, "timeout must be a positive number of seconds, not 0"),
        ({"timeout": -1.5}, "timeout must be a positive number"),
        ({"timeout": float("inf")}, "timeout must be a finite number"),
        ({"retry": "60"}, "retry must be a positive number of seconds, not '60'"),
        ({"recycle": 0}, "recycle must be an integer >= 1"),
        ({"max_rss": -5}, "max_rss must be an integer >= 1"),
        ({"prefetch": 0}, "prefetch must be an integer >= 1"),
        ({"max_attempts": 0}, "max_attempts must be an integer >= 1"),
        ({"heartbeat": 40, "retry": 60}, r"heartbeat \(40\) must be at most half of retry"),
        ({"start_method": "thread"}, "start_method must be one of fork, forkserver, spawn"),
        ({"log_level": "loud"}, "log_level must be one of debug, info"),
        ({"name": ""}, "name must be a non-empty string"),
        ({"save": "yes"}, "save must be True or False"),
    ],
)
def test_bad_values_are_named(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ClusterConfig(**changes)  # type: ignore[arg-type]


def test_from_mapping_rejects_unknown_keys_naming_them_and_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        ClusterConfig.from_mapping({"workers": 2, "wokrers": 3, "cpu_affinity": 1})
    text = str(caught.value)
    assert text.startswith("unknown cluster setting(s) cpu_affinity, wokrers; known settings")
    assert "workers" in text and "timeout" in text


def test_from_mapping_builds_a_frozen_config() -> None:
    config = ClusterConfig.from_mapping({"workers": 3, "timeout": 5, "retry": 10})
    assert (config.workers, config.timeout, config.retry) == (3, 5, 10)
    with pytest.raises(AttributeError):
        config.workers = 4  # type: ignore[misc]
    assert config.with_changes(workers=4).workers == 4
    with pytest.raises(ConfigError, match="unknown cluster setting"):
        config.with_changes(nope=1)


def test_from_env_reads_only_settings_and_parses_them() -> None:
    env = {
        "Q_WORKERS": "3",
        "Q_TIMEOUT": "2.5",
        "Q_RECYCLE": "none",
        "Q_LOG_JSON": "yes",
        "Q_NAME": "billing",
        "Q_SECRET_KEY": "not a setting",
    }
    config = ClusterConfig.from_env(env, grace=1.0)
    assert config.workers == 3 and config.timeout == 2.5 and config.recycle is None
    assert config.log_json is True and config.name == "billing" and config.grace == 1.0
    with pytest.raises(ConfigError, match="workers must be a number, not 'many'"):
        ClusterConfig.from_env({"Q_WORKERS": "many"})
    with pytest.raises(ConfigError, match="log_args must be true or false"):
        ClusterConfig.from_env({"Q_LOG_ARGS": "maybe"})
