"""Erlang C staffing: how many agents a queue needs to answer X% of calls within T seconds.

The model (M/M/N, published in README and ../shared/docs/domain.md): calls arrive at random at
rate λ, handle times are exponential with mean AHT, nobody hangs up. Traffic ``A = λ·AHT``
(Erlangs); with ``N > A`` agents the probability that a call waits is Erlang C ``Pw``, and

- service level ``SL(t) = 1 − Pw·e^(−(N−A)·t/AHT)`` (share answered within ``t`` seconds),
- average speed of answer ``ASA = Pw·AHT/(N−A)``,
- occupancy ``A/N``, and positions to roster ``ceil(N / (1 − shrinkage))``.

``Pw`` comes from the Erlang B recursion ``B(0) = 1, B(k) = A·B(k−1) / (k + A·B(k−1))`` and
``C = N·B / (N − A·(1 − B))``: every term stays in [0, 1], so it is exact and stable for
thousands of Erlangs (no factorials, no ``A**N``). ``erlang_c`` answers one interval;
``forecast_week`` applies it to each hour of the week from measured arrivals and AHT.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

#: the JSON keys of a ``StaffingResult`` (``tongdai staffing --json``), in order
RESULT_KEYS = (
    "agents",
    "agents_with_shrinkage",
    "traffic_erlangs",
    "wait_probability",
    "service_level",
    "asa_seconds",
    "occupancy",
)
HOURS_PER_WEEK = 7 * 24


@dataclass(frozen=True)
class StaffingResult:
    """Agents needed for one interval, and how the queue performs with exactly that many."""

    agents: int
    agents_with_shrinkage: int
    traffic_erlangs: float
    wait_probability: float
    service_level: float
    asa_seconds: float
    occupancy: float

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` form: exactly ``RESULT_KEYS``, full precision."""
        return asdict(self)


def _check(
    name: str,
    value: float,
    *,
    low: float,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = True,
) -> float:
    """``value`` as a float, or ``ValueError`` naming ``name`` and the allowed range."""
    number = float(value)
    below = number <= low if low_open else number < low
    above = high is not None and (number >= high if high_open else number > high)
    if math.isnan(number) or math.isinf(number) or below or above:
        left = "(" if low_open else "["
        right = ")" if high_open or high is None else "]"
        upper = "∞" if high is None else f"{high:g}"
        raise ValueError(f"{name} must be in {left}{low:g}, {upper}{right}, got {value!r}")
    return number


def erlang_b(traffic: float, agents: int) -> float:
    """Blocking probability with ``agents`` servers (Erlang B), by the stable recursion."""
    b = 1.0
    for k in range(1, agents + 1):
        b = traffic * b / (k + traffic * b)
    return b


def _wait_probability(traffic: float, agents: int, blocking: float) -> float:
    """Erlang C from Erlang B for ``agents > traffic``."""
    return agents * blocking / (agents - traffic * (1.0 - blocking))


def erlang_c(
    calls: float,
    interval_s: float,
    aht_s: float,
    target_sl: float,
    answer_within_s: float,
    max_occupancy: float | None = None,
    shrinkage: float = 0.0,
) -> StaffingResult:
    """The smallest number of agents ``N > A`` whose service level reaches ``target_sl``
    (and whose occupancy ``A/N`` stays at or under ``max_occupancy`` when given).

    ``calls`` arrive in ``interval_s`` seconds, each handled in ``aht_s`` seconds on average;
    the service level counts calls answered within ``answer_within_s`` seconds. No calls give
    0 agents (service level 1, nothing waits). Invalid input raises ``ValueError`` naming the
    parameter.
    """
    calls = _check("calls", calls, low=0.0)
    interval_s = _check("interval_s", interval_s, low=0.0, low_open=True)
    aht_s = _check("aht_s", aht_s, low=0.0, low_open=True)
    target_sl = _check("target_sl", target_sl, low=0.0, high=1.0, low_open=True)
    answer_within_s = _check("answer_within_s", answer_within_s, low=0.0)
    if max_occupancy is not None:
        max_occupancy = _check(
            "max_occupancy", max_occupancy, low=0.0, high=1.0, low_open=True, high_open=False
        )
    shrinkage = _check("shrinkage", shrinkage, low=0.0, high=1.0)

    traffic = calls * aht_s / interval_s
    if traffic == 0.0:
        return StaffingResult(0, 0, 0.0, 0.0, 1.0, 0.0, 0.0)
    agents = math.floor(traffic) + 1
    if max_occupancy is not None:
        agents = max(agents, math.ceil(traffic / max_occupancy - 1e-12))
        if agents <= traffic:
            agents += 1
    blocking = erlang_b(traffic, agents)
    while True:
        pw = _wait_probability(traffic, agents, blocking)
        sl = 1.0 - pw * math.exp(-(agents - traffic) * answer_within_s / aht_s)
        if sl >= target_sl:
            break
        agents += 1
        blocking = traffic * blocking / (agents + traffic * blocking)
    return StaffingResult(
        agents=agents,
        agents_with_shrinkage=math.ceil(agents / (1.0 - shrinkage) - 1e-9),
        traffic_erlangs=traffic,
        wait_probability=pw,
        service_level=min(1.0, max(0.0, sl)),
        asa_seconds=pw * aht_s / (agents - traffic),
        occupancy=traffic / agents,
    )


@dataclass(frozen=True)
class HourLoad:
    """Measured load of one hour of the week (Vietnam time).

    ``calls_per_hour`` is the mean number of calls offered in that hour of the week (e.g. all
    calls of Mondays 09:00-10:00 in the period divided by the number of Mondays);
    ``aht_seconds`` their mean handle time, or 0 when unknown (no call was handled then).
    """

    weekday: int  # 0 = Monday .. 6 = Sunday
    hour: int  # 0..23
    calls_per_hour: float
    aht_seconds: float


@dataclass(frozen=True)
class HourForecast:
    """Agents needed in one hour of the week, with the load it was computed from."""

    weekday: int
    hour: int
    calls_per_hour: float
    aht_seconds: float
    staffing: StaffingResult


def forecast_week(
    rows: Iterable[HourLoad | tuple[int, int, float, float]],
    *,
    target_sl: float = 0.8,
    answer_within_s: float = 20.0,
    max_occupancy: float | None = None,
    shrinkage: float = 0.0,
) -> list[HourForecast]:
    """Erlang C for each of the 168 hours of the week, Monday 00:00 first.

    ``rows`` are ``HourLoad``s or ``(weekday, hour, calls_per_hour, aht_seconds)`` tuples; an
    hour missing from ``rows`` has no calls (0 agents). Where calls were offered but no AHT
    was measured (``aht_seconds`` 0), the call-weighted mean AHT of the week is used. A
    repeated hour or an out-of-range weekday/hour raises ``ValueError``.
    """
    loads: dict[tuple[int, int], HourLoad] = {}
    for row in rows:
        load = row if isinstance(row, HourLoad) else HourLoad(*row)
        if not (0 <= load.weekday <= 6 and 0 <= load.hour <= 23):
            raise ValueError(
                f"weekday must be 0-6 and hour 0-23, got weekday={load.weekday} hour={load.hour}"
            )
        if (load.weekday, load.hour) in loads:
            raise ValueError(f"hour of week given twice: weekday={load.weekday} hour={load.hour}")
        _check("calls_per_hour", load.calls_per_hour, low=0.0)
        _check("aht_seconds", load.aht_seconds, low=0.0)
        loads[(load.weekday, load.hour)] = load
    measured = [x for x in loads.values() if x.aht_seconds > 0]
    weight = sum(x.calls_per_hour for x in measured)
    mean_aht = (
        sum(x.calls_per_hour * x.aht_seconds for x in measured) / weight if weight > 0 else 0.0
    )
    out: list[HourForecast] = []
    for weekday in range(7):
        for hour in range(24):
            load = loads.get((weekday, hour), HourLoad(weekday, hour, 0.0, 0.0))
            aht = load.aht_seconds or mean_aht
            if load.calls_per_hour == 0.0 or aht == 0.0:
                staffing = StaffingResult(0, 0, 0.0, 0.0, 1.0, 0.0, 0.0)
            else:
                staffing = erlang_c(
                    load.calls_per_hour,
                    3600.0,
                    aht,
                    target_sl,
                    answer_within_s,
                    max_occupancy=max_occupancy,
                    shrinkage=shrinkage,
                )
            out.append(HourForecast(weekday, hour, load.calls_per_hour, aht, staffing))
    return out
