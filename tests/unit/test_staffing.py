"""Erlang C staffing: reference vector, large traffic, edge cases, week forecast, CLI."""

from __future__ import annotations

import argparse
import json
import math

import pytest

from reports.staffing import (
    RESULT_KEYS,
    HourLoad,
    StaffingResult,
    erlang_c,
    forecast_week,
)
from reports.staffing_cli import register


def textbook_pw(traffic: float, agents: int) -> float:
    """Erlang C straight from the formula in domain.md, in log space (independent check)."""
    terms = [k * math.log(traffic) - math.lgamma(k + 1) for k in range(agents)]
    last = (
        agents * math.log(traffic) - math.lgamma(agents + 1) + math.log(agents / (agents - traffic))
    )
    terms.append(last)
    top = max(terms)
    total = top + math.log(sum(math.exp(t - top) for t in terms))
    return math.exp(last - total)


def textbook_sl(traffic: float, agents: int, aht: float, t: float) -> float:
    return 1 - textbook_pw(traffic, agents) * math.exp(-(agents - traffic) * t / aht)


def test_given_the_reference_vector_when_staffing_then_pyworkforce_figures() -> None:
    r = erlang_c(100, 1800, 180, 0.8, 20, shrinkage=0.3)
    assert r.traffic_erlangs == 10.0
    assert r.agents == 14
    assert round(r.wait_probability, 4) == 0.1741
    assert round(r.service_level, 4) == 0.8884
    assert round(r.occupancy, 3) == 0.714
    assert round(r.asa_seconds, 2) == 7.84
    assert r.agents_with_shrinkage == 20
    assert erlang_c(100, 1800, 180, 0.8, 20).agents_with_shrinkage == 14


def test_given_the_reference_vector_then_one_agent_fewer_misses_the_target() -> None:
    assert textbook_sl(10.0, 13, 180, 20) < 0.8 <= textbook_sl(10.0, 14, 180, 20)
    assert erlang_c(100, 1800, 180, 0.8, 20).wait_probability == pytest.approx(
        textbook_pw(10.0, 14), rel=1e-12
    )


@pytest.mark.parametrize("traffic", [500.0, 2000.0])
def test_given_large_traffic_when_staffing_then_finite_minimal_and_exact(traffic: float) -> None:
    r = erlang_c(traffic * 3600 / 180, 3600, 180, 0.8, 20)
    assert r.traffic_erlangs == pytest.approx(traffic)
    values = (r.wait_probability, r.service_level, r.asa_seconds, r.occupancy)
    assert all(math.isfinite(v) for v in values)
    assert 0.0 <= r.wait_probability <= 1.0 and 0.8 <= r.service_level <= 1.0
    assert traffic < r.agents < traffic * 1.05  # big pools are efficient
    assert r.wait_probability == pytest.approx(textbook_pw(traffic, r.agents), rel=1e-9)
    assert textbook_sl(traffic, r.agents - 1, 180, 20) < 0.8


def test_given_growing_traffic_then_agents_never_decrease_and_sl_meets_target() -> None:
    previous = 0
    for calls in range(0, 40_001, 997):
        r = erlang_c(calls, 3600, 180, 0.8, 20)
        assert r.agents >= previous
        assert r.service_level >= 0.8
        previous = r.agents


def test_given_an_occupancy_cap_then_more_agents_and_occupancy_under_it() -> None:
    r = erlang_c(100, 1800, 180, 0.8, 20, max_occupancy=0.65)
    assert r.agents == 16 and r.occupancy <= 0.65
    assert erlang_c(100, 1800, 180, 0.8, 20, max_occupancy=0.9).agents == 14


def test_given_no_calls_then_no_agents_and_nothing_waits() -> None:
    r = erlang_c(0, 1800, 180, 0.8, 20, shrinkage=0.3)
    assert r == StaffingResult(0, 0, 0.0, 0.0, 1.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"calls": -1}, "calls"),
        ({"interval_s": 0}, "interval_s"),
        ({"aht_s": -5}, "aht_s"),
        ({"target_sl": 1.0}, "target_sl"),
        ({"target_sl": 0}, "target_sl"),
        ({"answer_within_s": -1}, "answer_within_s"),
        ({"max_occupancy": 1.2}, "max_occupancy"),
        ({"shrinkage": 1.0}, "shrinkage"),
        ({"calls": math.nan}, "calls"),
    ],
)
def test_given_invalid_input_then_value_error_names_the_field(
    kwargs: dict[str, float], field: str
) -> None:
    args: dict[str, float] = {
        "calls": 100,
        "interval_s": 1800,
        "aht_s": 180,
        "target_sl": 0.8,
        "answer_within_s": 20,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=f"^{field} must be"):
        erlang_c(**args)


def test_given_hourly_loads_when_forecasting_the_week_then_168_hours_in_order() -> None:
    rows: list[HourLoad | tuple[int, int, float, float]] = [
        HourLoad(0, 9, 200.0, 180.0),  # Monday 09:00: 200 calls/hour = 10 Erlangs
        (2, 14, 100.0, 0.0),  # Wednesday 14:00: AHT unknown -> the week's mean
        HourLoad(5, 10, 20.0, 360.0),
    ]
    week = forecast_week(rows, shrinkage=0.3)
    assert len(week) == 168
    assert [(h.weekday, h.hour) for h in week[:2]] == [(0, 0), (0, 1)]
    monday9 = week[9]
    assert (monday9.weekday, monday9.hour) == (0, 9)
    assert monday9.staffing == erlang_c(200, 3600, 180, 0.8, 20, shrinkage=0.3)
    assert monday9.staffing.agents == 14 and monday9.staffing.agents_with_shrinkage == 20
    wednesday = week[2 * 24 + 14]
    assert wednesday.aht_seconds == pytest.approx((200 * 180 + 20 * 360) / 220)
    assert wednesday.staffing.agents > 0
    assert week[3].staffing.agents == 0 and week[3].calls_per_hour == 0.0


@pytest.mark.parametrize(
    "rows",
    [[(0, 9, 1.0, 1.0), (0, 9, 2.0, 1.0)], [(7, 0, 1.0, 1.0)], [(0, 24, 1.0, 1.0)]],
)
def test_given_bad_hours_when_forecasting_then_value_error(
    rows: list[tuple[int, int, float, float]],
) -> None:
    with pytest.raises(ValueError, match="hour"):
        forecast_week(rows)


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tongdai")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    rc: int = args.func(args)
    return rc


REFERENCE = ["staffing", "--calls", "100", "--interval", "1800", "--aht", "180"]
REFERENCE += ["--target", "0.8", "--answer-within", "20"]


def test_given_json_when_cli_then_exactly_the_published_keys(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _cli([*REFERENCE, "--shrinkage", "0.3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert tuple(out) == RESULT_KEYS
    assert out["agents"] == 14 and out["agents_with_shrinkage"] == 20
    assert round(out["wait_probability"], 4) == 0.1741


def test_given_no_json_when_cli_then_a_readable_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli([*REFERENCE, "--max-occupancy", "0.85"]) == 0
    out = capsys.readouterr().out
    assert "agents on the phones" in out and "14" in out and "0.8884" in out


@pytest.mark.parametrize(
    ("option", "value"),
    [("--target", "1.5"), ("--calls", "-3"), ("--shrinkage", "1"), ("--aht", "abc")],
)
def test_given_bad_option_when_cli_then_error_names_the_option(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*REFERENCE, option, value]
    with pytest.raises(SystemExit) as stop:
        _cli(argv)
    assert stop.value.code == 2
    assert f"argument {option}" in capsys.readouterr().err
