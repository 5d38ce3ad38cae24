"""The permission probe covers every command Q sends, and the documented ACL rule is the one
the code derives."""

from __future__ import annotations

from pathlib import Path

import redis

from qredis import RedisTransport
from qredis.permissions import KEY_COMMANDS, KEYLESS_COMMANDS, acl_rule, script_commands

ROOT = Path(__file__).resolve().parents[3]


def test_every_command_a_script_calls_is_probed_with_a_valid_call() -> None:
    known = set(KEY_COMMANDS) | {call[0] for call in KEYLESS_COMMANDS} | {"PUBLISH"}
    assert script_commands() <= known, sorted(script_commands() - known)


def test_the_redis_conf_of_the_docs_carries_the_rule_the_code_derives() -> None:
    conf = (ROOT / "examples" / "deploy" / "redis.conf").read_text()
    assert f"user q {acl_rule('change-this-password')}\n" in conf


def test_a_user_with_the_derived_rule_is_missing_nothing(
    redis_client: redis.Redis, redis_url: str, queue_name: str
) -> None:
    redis_client.execute_command("ACL", "SETUSER", "qmin", "reset", *acl_rule("pw").split())
    try:
        url = redis_url.replace("redis://", "redis://qmin:pw@")
        transport = RedisTransport(queue_name, url=url)
        assert transport.check_permissions() == []
        transport.close()
    finally:
        redis_client.execute_command("ACL", "DELUSER", "qmin")
