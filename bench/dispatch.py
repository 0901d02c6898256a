"""Micro-benchmark of the dispatcher's decision: ``python -m bench.dispatch [--json]``.

Not a test: it prints how long ``Dispatcher.assign`` takes with 1,000 calls waiting and 100
agents, in three situations:

- ``one_free``: steady state; one agent finishes a call, assign picks its next call, a new
  caller arrives (so 1,000 keep waiting). This is the decision the engine makes most often.
- ``burst``: all 100 agents become free at once; one assign makes 100 offers.
- ``no_match``: the only free agent has a skill no waiting call needs, so assign scans the
  whole line and offers nothing (the worst case of the scan).

Agents have 2-3 of the 7 category skills plus ``chung``; queues use every strategy in turn.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable

from acd.agent import AgentState
from acd.calls import CallState
from acd.config import AcdConfig, AgentConfig, Overflow, QueueConfig, SkillReq
from acd.dispatch import Dispatcher

CATEGORIES = ("thu_tuc", "tra_cuu_ho_so", "phan_anh", "dau_tu", "du_lich", "buu_chinh", "chung")
STRATEGY_CYCLE = ("longest_idle", "skills", "fewest_calls", "round_robin")


class FakeClock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def bench_config(agents: int, max_calls: int, rng: random.Random) -> AcdConfig:
    skills = (*CATEGORIES, "lonely")
    agent_cfgs = {}
    for i in range(agents):
        aid = f"agent{i + 1:03d}"
        mine = rng.sample(CATEGORIES[:-1], rng.randint(2, 3))
        levels = {s: rng.randint(1, 5) for s in mine} | {"chung": rng.randint(1, 5)}
        agent_cfgs[aid] = AgentConfig(aid, f"Agent {i + 1}", f"PJSIP/{aid}", levels)
    # logged in last, for no_match: a skill no queue needs
    agent_cfgs["lonely"] = AgentConfig("lonely", "Lonely", "PJSIP/lonely", {"lonely": 5})
    queues = {
        name: QueueConfig(
            name=name,
            category=name,
            skills=(SkillReq(name, 1),),
            strategy=STRATEGY_CYCLE[i % len(STRATEGY_CYCLE)],
            priority=1 if name == "phan_anh" else 0,
            max_wait_s=86400,
            overflow=(Overflow(120, add_skills=(SkillReq("chung", 2),)),),
        )
        for i, name in enumerate(CATEGORIES)
    }
    return AcdConfig("bench", skills, agent_cfgs, queues, max_calls=max_calls)


def _percentiles(xs: list[float]) -> dict[str, float]:
    ms = sorted(x * 1000 for x in xs)
    q = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
    return {
        "n": len(ms),
        "p50_ms": round(q[49], 4),
        "p99_ms": round(q[98], 4),
        "max_ms": round(ms[-1], 4),
    }


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(
    waiting: int = 1000, agents: int = 100, rounds: int = 2000, seed: int = 1
) -> dict[str, object]:
    rng = random.Random(seed)
    clock = FakeClock()
    cfg = bench_config(agents, waiting + agents + 10, rng)
    d = Dispatcher(cfg, clock=clock)
    n = 0

    def arrive() -> None:
        nonlocal n
        n += 1
        d.call_arrived(f"c{n}", rng.choice(CATEGORIES), caller=f"09{n:08d}")
        clock.t += 0.01

    for aid in d.agents:
        if aid != "lonely":
            d.agent_login(aid)
    for _ in range(agents + waiting):
        arrive()
    for offer in d.assign():  # every agent takes a call; the rest wait
        d.answered(offer.call_id)
    d.drain_events()

    one_free: list[float] = []
    for _ in range(rounds):
        busy = [a for a in d.agents.values() if a.state is AgentState.ON_CALL]
        agent = rng.choice(busy)
        clock.t += rng.uniform(0.5, 3.0)
        d.call_completed(agent.call_id or "", rng.choice(("caller", "agent")))
        one_free.append(_timed(d.assign))
        for c in list(d.calls.values()):
            if c.state is CallState.OFFERED:
                d.answered(c.uniqueid)
        arrive()
        d.drain_events()

    burst: list[float] = []
    for _ in range(20):
        for a in d.agents.values():
            if a.state is AgentState.ON_CALL:
                d.call_completed(a.call_id or "", "caller")
        while sum(1 for c in d.calls.values() if c.in_line) < waiting:
            arrive()
        burst.append(_timed(d.assign))
        for c in list(d.calls.values()):
            if c.state is CallState.OFFERED:
                d.answered(c.uniqueid)
        d.drain_events()

    while sum(1 for c in d.calls.values() if c.in_line) < waiting:
        arrive()
    d.agent_login("lonely")  # the only free agent, and no waiting call needs its skill
    no_match = [_timed(d.assign) for _ in range(200)]
    assert sum(1 for c in d.calls.values() if c.in_line) >= waiting
    return {
        "waiting_calls": waiting,
        "agents": agents,
        "assign_one_free": _percentiles(one_free),
        "assign_burst_all_free": _percentiles(burst),
        "assign_no_match_full_scan": _percentiles(no_match),
        "target_p99_ms": 20,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--waiting", type=int, default=1000)
    ap.add_argument("--agents", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="(default) print JSON")
    a = ap.parse_args()
    print(json.dumps(run(a.waiting, a.agents, a.rounds, a.seed), indent=2))


if __name__ == "__main__":
    main()
