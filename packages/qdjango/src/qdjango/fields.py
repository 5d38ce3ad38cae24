"""A model field holding any picklable value as signed bytes.

Values are pickled with cloudpickle and signed with a key derived from ``SECRET_KEY`` for
this purpose alone (see :func:`qdjango.conf.record_codec`), so a row written into the table by
anyone without the key is never unpickled. A value signed with a key that is no longer known
(a ``SECRET_KEY`` rotated without keeping the old one in ``SECRET_KEY_FALLBACKS``) reads back
as an :class:`Unreadable` marker instead of breaking every page that lists the table.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from qcore import PayloadError, get_logger

__all__ = ["PickledField", "Unreadable"]

log = get_logger("qdjango.fields")


class Unreadable:
    """Stands for a stored value that could not be verified or unpickled here."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"<unreadable value: {self.reason}>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Unreadable) and other.reason == self.reason

    def __hash__(self) -> int:
        return hash(self.reason)


class PickledField(models.BinaryField):
    """Any picklable Python value, stored as signed (and, when large, compressed) bytes."""

    description = "A picklable Python object, stored signed"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("editable", None)
        return name, path, args, kwargs

    def get_prep_value(self, value: Any) -> Any:
        if value is None and self.null:
            return None
        from qdjango.conf import record_codec

        return record_codec().encode(value)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        from qdjango.conf import record_codec

        try:
            return record_codec().decode(bytes(value))
        except PayloadError as exc:
            log.warning("record.unreadable", field=self.name, error=str(exc))
            return Unreadable(str(exc))

    def to_python(self, value: Any) -> Any:
        # Forms and deserialization hand over Python values; nothing to convert.
        return value

    def value_to_string(self, obj: Any) -> str:
        return repr(self.value_from_object(obj))
