"""The signing keys of a process that is not a Django site, read from the environment."""

from __future__ import annotations

import pytest

from qcore import ConfigError, Signer, UnknownKey, codec_for


def test_codec_for_reads_fallback_secrets_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old, new = "an-old-secret-0123456789abcdef-rotated", "a-new-secret-0123456789abcdef-current"
    monkeypatch.setenv("Q_SECRET_KEY", old)
    signed_with_old = codec_for().encode("saved before the rotation")
    monkeypatch.setenv("Q_SECRET_KEY", new)
    monkeypatch.setenv("Q_SECRET_KEY_FALLBACKS", f" other-secret-0123456789abcdef-kept-too , {old}")
    assert codec_for().decode(signed_with_old) == "saved before the rotation"
    monkeypatch.delenv("Q_SECRET_KEY_FALLBACKS")
    with pytest.raises(UnknownKey):
        codec_for().decode(signed_with_old)


def test_a_signing_secret_under_32_bytes_is_refused_with_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Guarantee (issue 11, item 9): a signing secret shorter than 32 bytes is refused, from
    # the environment, as an argument and as a fallback, with a message saying what to set.
    monkeypatch.setenv("Q_SECRET_KEY", "x" * 31)
    with pytest.raises(ConfigError, match=r"31 bytes, shorter than the 32 .* Q_SECRET_KEY"):
        codec_for()
    with pytest.raises(ConfigError, match="shorter than the 32"):
        codec_for("short-secret")
    with pytest.raises(ConfigError, match="fallback"):
        Signer("k" * 32, fallbacks=["k" * 20])
    assert codec_for("s" * 32).signer.key_ids  # 32 bytes is enough
