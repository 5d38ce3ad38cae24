"""Humanized names and dotted-path resolution."""

from __future__ import annotations

import math
import os.path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qcore import FunctionNotFound, dotted_path, humanize, new_id, resolve
from qcore.naming import WORDS


@given(st.uuids())
def test_names_are_four_known_words_and_stable(value: object) -> None:
    task_id = value.hex  # type: ignore[attr-defined]
    name = humanize(task_id)
    words = name.split("-")
    assert len(words) == 4 and all(w in WORDS for w in words)
    assert humanize(task_id) == name


def test_word_list_is_256_unique_words() -> None:
    assert len(set(WORDS)) == 256 and all(w.isalpha() for w in WORDS)


def test_new_ids_are_hex_and_distinct() -> None:
    ids = {new_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(len(i) == 32 for i in ids)


class Holder:
    @staticmethod
    def method(x: int) -> int:
        return x


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("math.copysign", math.copysign),
        ("os.path.join", os.path.join),
        ("builtins.len", len),
        (f"{__name__}.Holder.method", Holder.method),
    ],
)
def test_resolve(path: str, expected: object) -> None:
    assert resolve(path) is expected


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("nosuchmodule_q.func", "no module named 'nosuchmodule_q'"),
        ("math.nosuchfunc", "'math' has no attribute 'nosuchfunc'"),
        ("os.path.nosuch.deeper", "'os.path' has no attribute 'nosuch'"),
        ("math.pi", "not a callable"),
        ("", "not a dotted path"),
        (".math", "not a dotted path"),
    ],
)
def test_resolve_errors_name_what_is_missing(path: str, message: str) -> None:
    with pytest.raises(FunctionNotFound) as info:
        resolve(path)
    assert message in str(info.value)


def test_dotted_path() -> None:
    assert dotted_path(math.copysign) == "math.copysign"
    assert dotted_path("a.b") == "a.b"
    assert dotted_path(Holder.method).endswith("Holder.method")


@given(st.binary(min_size=16, max_size=16))
def test_name_words_are_the_xor_of_each_run_of_four_bytes(raw: bytes) -> None:
    expected = []
    for start in range(0, 16, 4):
        folded = 0
        for byte in raw[start : start + 4]:
            folded ^= byte
        expected.append(WORDS[folded])
    assert humanize(raw.hex()) == "-".join(expected)


def test_known_name() -> None:
    assert humanize("00000000000000000000000000000001") == "acorn-acorn-acorn-acre"
