"""``tongdai bench webhooks``: the load it plans (the mix the issue asks for), its percentiles,
its report, and clear errors for bad options."""

from __future__ import annotations

import argparse

import pytest

from bench.reports_bench import BenchError
from bench.webhooks_bench import (
    Step,
    _rates,
    cmd_bench_webhooks,
    percentile,
    plan,
    report,
)


def test_the_plan_mixes_zalo_and_facebook_with_redeliveries_and_bad_signatures() -> None:
    planned = plan(100, 50, "t")  # 5000 requests
    assert [p.index for p in planned] == list(range(5000))
    kinds = {k: sum(p.kind == k for p in planned) for k in ("new", "redelivery", "bad")}
    assert 0.04 < kinds["redelivery"] / 5000 < 0.06
    assert 0.005 < kinds["bad"] / 5000 < 0.015
    new = [p for p in planned if p.kind == "new"]
    assert len({p.external_id for p in new}) == len(new)  # each new event once
    assert abs(sum(p.channel == "zalo" for p in new) - len(new) / 2) <= 1
    seen: set[str] = set()
    for p in planned:  # a redelivery repeats an event already sent
        if p.kind == "redelivery":
            assert p.external_id in seen
        seen.add(p.external_id)
    users = {p.user for p in new}
    assert len(new) / len(users) == pytest.approx(2, rel=0.01)  # two messages per citizen
    assert all(p.external_id.startswith("t-") for p in planned)
    assert plan(100, 50, "t") == planned  # deterministic


def test_percentiles_interpolate() -> None:
    assert percentile([], 0.99) == 0.0
    assert percentile([5.0], 0.5) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile(list(map(float, range(101))), 0.99) == pytest.approx(99.0)


def test_the_report_names_the_highest_sustained_rate_per_database() -> None:
    steps = {
        "postgres": [
            Step("postgres", 25, 5, sustained=True, kept_up=True),
            Step("postgres", 50, 5, sustained=True),
            Step("postgres", 100, 5),
        ],
        "sqlite": [Step("sqlite", 50, 5)],
    }
    doc = report(steps, [50, 100], 5, 200)
    assert doc["max_sustained_rate"] == {"postgres": 50, "sqlite": None}
    assert doc["max_rate_processing_kept_up"] == {"postgres": 25, "sqlite": None}
    assert [s["rate"] for s in doc["results"]["postgres"]] == [25, 50, 100]
    assert doc["mix"] == {"bad_signatures": 0.01, "redeliveries": 0.05}


def test_bad_options_are_clear_errors() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="rates per second"):
        _rates("fast")
    with pytest.raises(argparse.ArgumentTypeError, match="each rate"):
        _rates("0,10")
    args = argparse.Namespace(databases="mysql", seconds=5, rate=[10.0], p99_ms=200, json=True)
    with pytest.raises(BenchError, match="choose among sqlite, postgres"):
        cmd_bench_webhooks(args)
