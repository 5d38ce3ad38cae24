"""The logging helper and URL masking."""

from __future__ import annotations

import io
import json

import pytest

from qcore import ConfigError, configure_logging, get_logger, mask_url


def test_json_switch_renders_one_object_per_line() -> None:
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    get_logger("qtest").info("task.finished", task_id="abc", duration=0.5)
    line = json.loads(out.getvalue().strip().splitlines()[-1])
    assert line["event"] == "task.finished" and line["task_id"] == "abc"
    assert line["level"] == "info"


def test_console_rendering_and_levels() -> None:
    out = io.StringIO()
    configure_logging(level="warning", stream=out)
    log = get_logger("qtest")
    log.info("hidden")
    log.warning("shown", key="v")
    text = out.getvalue()
    assert "shown" in text and "hidden" not in text


def test_bad_level_is_named() -> None:
    with pytest.raises(ConfigError, match="loud"):
        configure_logging(level="loud")


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://user:s3cret@host:6379/0", "redis://user:***@host:6379/0"),
        ("rediss://:pw@host/1", "rediss://:***@host/1"),
        ("redis://host:6379/0", "redis://host:6379/0"),
        ("redis://host/0?password=s3cret&db=1", "redis://host/0?password=***&db=1"),
        ("unix:///run/redis.sock?db=2&password=s3cret", "unix:///run/redis.sock?db=2&password=***"),
        (
            "rediss://u:pw@h:1/0?ssl_password=x&ssl_certfile=/c",
            "rediss://u:***@h:1/0?ssl_password=***&ssl_certfile=/c",
        ),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked
