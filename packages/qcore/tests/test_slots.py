"""qcore.slots: the constructors that skip a frozen dataclass's ``__init__`` build the same
instances as it does."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Generic, TypeVar

import pytest

from qcore.slots import retyped_constructor, unchecked_constructor

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class Plain:
    a: int
    b: list[int]
    _c: str = "c"


@dataclasses.dataclass(frozen=True, slots=True)
class Typed(Generic[T]):  # as django-tasks's TaskResult on Django 5.2
    value: T
    other: str


@dataclasses.dataclass(frozen=True, slots=True, weakref_slot=True)
class WithWeakref:
    a: int


@pytest.mark.parametrize("cls", [Plain, Typed])
def test_a_retyped_instance_is_the_class_s_own(cls: type) -> None:
    build = retyped_constructor(cls)
    assert build.__code__.co_names[0] == "twin"  # not the fallback
    values = [[1], "x", "y"][: len(dataclasses.fields(cls))]
    made = build(*values)
    assert type(made) is cls and made == cls(*values)
    assert [getattr(made, f.name) for f in dataclasses.fields(cls)] == values
    assert pickle.loads(pickle.dumps(made)) == made
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(made, dataclasses.fields(cls)[0].name, "changed")


def test_another_layout_gets_the_unchecked_constructor() -> None:
    build = retyped_constructor(WithWeakref)
    assert build.__code__.co_names[0] != "twin"
    assert build(1) == WithWeakref(1) == unchecked_constructor(WithWeakref)(1)
