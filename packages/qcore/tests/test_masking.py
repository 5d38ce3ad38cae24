"""What Q shows of secrets: URLs, keyword arguments and log fields, masked."""

from __future__ import annotations

import io
import json

import pytest

from qcore import configure_logging, get_logger, is_secret_name, mask_mapping, mask_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@h:6379/0", "redis://:***@h:6379/0"),
        ("redis://q:hunter2@h:6379/0", "redis://q:***@h:6379/0"),
        ("redis://h:6379/0?password=hunter2", "redis://h:6379/0?password=***"),
        (
            "rediss://h/0?username=q&password=hunter2&ssl_cert_reqs=none",
            "rediss://h/0?username=q&password=***&ssl_cert_reqs=none",
        ),
        ("redis://u:p1@h/0?token=t2&db=1", "redis://u:***@h/0?token=***&db=1"),
        (
            "unix:///run/redis.sock?password=hunter2&db=2",
            "unix:///run/redis.sock?password=***&db=2",
        ),
        ("redis://h:6379/0", "redis://h:6379/0"),
    ],
)
def test_every_form_of_password_in_a_url_is_masked(url: str, shown: str) -> None:
    assert mask_url(url) == shown
    assert "hunter2" not in mask_url(url) and "t2&" not in mask_url(url)


def test_secret_names_are_recognised_in_any_case_and_spelling() -> None:
    for name in ("password", "DB_PASSWORD", "X-Api-Key", "stripe_token", "client_secret", "pwd"):
        assert is_secret_name(name), name
    for name in ("author", "amount", "queue", "keyword"):
        assert not is_secret_name(name), name
    assert is_secret_name("iban", extra=["iban"])


def test_mask_mapping_masks_nested_secret_names_and_keeps_the_rest() -> None:
    kwargs = {"amount": 3, "api_key": "sk_live_1", "config": {"password": "p", "host": "h"}}
    assert mask_mapping(kwargs) == {
        "amount": 3,
        "api_key": "***",
        "config": {"password": "***", "host": "h"},
    }
    assert kwargs["api_key"] == "sk_live_1"  # a copy: the task's own kwargs are untouched
    assert mask_mapping({"iban": "DE89"}, extra=["iban"]) == {"iban": "***"}


def test_logs_mask_secret_fields_and_secret_keys_of_mapping_fields() -> None:
    out = io.StringIO()
    configure_logging(json=True, level="debug", stream=out, secret_names=["iban"])
    try:
        get_logger("t").info(
            "task.finished",
            kwargs={"api_key": "sk_live_1", "n": 1},
            password="hunter2",
            iban="DE89",
            token=42,  # a number is Q's own (a fencing token), never a secret
        )
    finally:
        configure_logging(level="info")
    line = json.loads(out.getvalue().strip().splitlines()[-1])
    assert line["kwargs"] == {"api_key": "***", "n": 1}
    assert line["password"] == "***" and line["iban"] == "***" and line["token"] == 42
