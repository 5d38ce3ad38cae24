"""django-q2's unsigned pickled columns are read as plain data only."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import os
import pickle
import uuid
import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qdjango.django_q2.pickles import MAX_SIZE, BadValue, UnsafeValue, read_pickled


def column(
    value: object, *, protocol: int = pickle.HIGHEST_PROTOCOL, compress: bool = False
) -> str:
    """A value as django-picklefield stores it."""
    data = pickle.dumps(value, protocol=protocol)
    return base64.b64encode(zlib.compress(data) if compress else data).decode()


plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    | st.binary() | st.decimals(allow_nan=False) | st.datetimes() | st.dates() | st.uuids(),
    lambda inner: st.lists(inner) | st.tuples(inner, inner)
    | st.dictionaries(st.text(), inner) | st.frozensets(st.integers()),
    max_leaves=20,
)  # fmt: skip


@given(plain, st.sampled_from([2, 3, 4, 5]), st.booleans())
def test_plain_values_read_back_whatever_the_protocol(
    value: object, protocol: int, z: bool
) -> None:
    assert read_pickled(column(value, protocol=protocol, compress=z)) == value


def test_aware_times_sets_and_decimals() -> None:
    value = {
        "when": dt.datetime(2024, 1, 2, 3, 4, tzinfo=dt.UTC),
        "tags": {"a", "b"},
        "price": decimal.Decimal("9.99"),
        "id": uuid.UUID(int=7),
        "span": dt.timedelta(seconds=90),
    }
    assert read_pickled(column(value)) == value


class Trap:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.path}",))


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_a_pickle_that_would_run_a_command_is_refused_unopened(
    tmp_path: Path, protocol: int
) -> None:
    trap = tmp_path / "trap"
    text = column([1, Trap(trap)], protocol=protocol)
    with pytest.raises(UnsafeValue, match=r"needs posix\.system"):
        read_pickled(text)
    assert not trap.exists()
    # The trap is live: plain pickle would have run it.
    pickle.loads(base64.b64decode(text))
    assert trap.exists()


def test_a_class_of_the_site_is_refused_by_name() -> None:
    with pytest.raises(UnsafeValue, match=r"needs pathlib\.(_local\.)?PosixPath"):
        read_pickled(column(Path("/etc")))


@pytest.mark.parametrize("text", ["not base64!", base64.b64encode(b"\x80\x05garbage").decode(), ""])
def test_what_is_not_a_pickle_is_a_bad_value(text: str) -> None:
    with pytest.raises(BadValue):
        read_pickled(text)


def test_a_decompression_bomb_stops_at_the_size_limit() -> None:
    bomb = base64.b64encode(zlib.compress(b"\x80\x05" + b"\0" * (MAX_SIZE + 10))).decode()
    with pytest.raises(BadValue, match="larger than"):
        read_pickled(bomb)


def test_a_pickle_cannot_ask_for_more_memory_than_the_limit() -> None:
    # bytearray(2**40), as protocol 2 would write it: GLOBAL builtins bytearray, REDUCE.
    huge = b"\x80\x02c__builtin__\nbytearray\nJ\x00\x00\x00\x40\x85R."
    with pytest.raises(BadValue, match="asks for"):
        read_pickled(base64.b64encode(huge).decode())
