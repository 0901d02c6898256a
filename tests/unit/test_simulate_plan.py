"""The simulated call mix assigns every call to a behaviour, in proportion."""

from __future__ import annotations

import pytest

from lab.simulate import BEHAVIOURS, split


def test_the_shares_add_up_to_one() -> None:
    assert sum(b.share for b in BEHAVIOURS) == pytest.approx(1.0)


@pytest.mark.parametrize("calls", [1, 7, 40, 100, 1000])
def test_every_call_is_assigned(calls: int) -> None:
    plan = split(calls)
    assert sum(n for _, n in plan) == calls
    for b, n in plan:
        assert abs(n - calls * b.share) < 1
