"""Q's one error tree. Every error Q raises on purpose derives from :class:`QError`."""

from __future__ import annotations

__all__ = [
    "BadMagic",
    "BadSignature",
    "ConfigError",
    "FunctionNotFound",
    "GarbagePayload",
    "PayloadError",
    "PayloadTooLarge",
    "QError",
    "SerializationError",
    "TaskRunning",
    "TruncatedPayload",
    "UndecodablePayload",
    "UnknownKey",
    "UnknownOption",
    "UnknownTask",
    "UnsupportedVersion",
]


class QError(Exception):
    """Root of every error Q raises on purpose."""


class ConfigError(QError, ValueError):
    """A setting is missing, unknown or has a value Q cannot run with."""


class UnknownOption(ConfigError, TypeError):
    """A call names a task option Q does not know (in ``q_options``, say)."""


class UnknownTask(QError, LookupError):
    """No task of that id is where the call needs it (queued, delayed or running)."""


class TaskRunning(QError):
    """The task is running, and the call would need it not to be (``terminate=True`` stops it)."""


class SerializationError(QError):
    """An object could not be pickled into a payload (the message names the object)."""


class FunctionNotFound(QError, LookupError):
    """A dotted path does not name an importable callable."""


class PayloadError(QError):
    """A payload was rejected before it was trusted; nothing in it was unpickled."""


class PayloadTooLarge(PayloadError):
    """The payload is bigger than the configured size limit (checked before any other work)."""


class GarbagePayload(PayloadError):
    """The payload is empty or not bytes at all."""


class TruncatedPayload(PayloadError):
    """The payload is shorter than a signed header: it was cut off in transit or storage."""


class BadMagic(PayloadError):
    """The payload does not start with Q's magic bytes: it was not produced by Q's signer."""


class UnsupportedVersion(PayloadError):
    """The payload's format version is not one this version of Q can read."""


class UnknownKey(PayloadError):
    """The payload was signed with a key that is neither the current key nor a fallback."""


class BadSignature(PayloadError):
    """The payload's HMAC does not match: it was tampered with or forged."""


class UndecodablePayload(PayloadError):
    """The signature is good but the body cannot be decompressed or unpickled here.

    Typically a class or module that the producer had and this process does not.
    """
