"""The signing keys of a process that is not a Django site, read from the environment."""

from __future__ import annotations

import pytest

from qcore import UnknownKey, codec_for


def test_codec_for_reads_fallback_secrets_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old, new = "an-old-secret-0123456789abcdef", "a-new-secret-0123456789abcdef"
    monkeypatch.setenv("Q_SECRET_KEY", old)
    signed_with_old = codec_for().encode("saved before the rotation")
    monkeypatch.setenv("Q_SECRET_KEY", new)
    monkeypatch.setenv("Q_SECRET_KEY_FALLBACKS", f" other-secret-0123456789abcdef , {old}")
    assert codec_for().decode(signed_with_old) == "saved before the rotation"
    monkeypatch.delenv("Q_SECRET_KEY_FALLBACKS")
    with pytest.raises(UnknownKey):
        codec_for().decode(signed_with_old)
