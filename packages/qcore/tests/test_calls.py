"""How a producer's call splits into Q's options and the task's own kwargs."""

from __future__ import annotations

import time

import pytest

from qcore import ConfigError, TaskOptions, UnknownOption, apply_q_options, task_options


def test_q_options_win_and_move_same_named_keywords_into_the_task() -> None:
    kwargs: dict[str, object] = {"x": 1}
    given = {"hook": None, "group": "g", "timeout": 5, "save": None}
    chosen = apply_q_options({"timeout": 9, "hook": "h.f"}, given, kwargs)
    assert chosen["timeout"] == 9 and chosen["hook"] == "h.f" and chosen["group"] == "g"
    # the keyword timeout=5 was the task's own argument; hook=None stays out of the task
    assert kwargs == {"x": 1, "timeout": 5}


def test_unknown_q_options_are_named_with_the_known_ones() -> None:
    with pytest.raises(UnknownOption, match=r"cached.*known options are") as info:
        apply_q_options({"cached": True}, {}, {})
    assert isinstance(info.value, ConfigError) and isinstance(info.value, TypeError)
    assert apply_q_options({"sync": True}, {"sync": None}, {}, known={"sync"}) == {"sync": True}


def test_task_options() -> None:
    assert task_options() is task_options()  # the shared default, no allocation per call
    assert task_options(timeout=3) == TaskOptions(timeout=3)
    before = time.time()
    eta = task_options(countdown=10).eta
    assert eta is not None and before + 10 <= eta <= time.time() + 10
    with pytest.raises(ConfigError, match="not both"):
        task_options(eta=1.0, countdown=1.0)
