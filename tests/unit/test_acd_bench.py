"""The pure parts of ``tongdai bench acd``: percentiles, AMI events into per-call moments,
time-to-agent for calls that found a free agent, the generated ACD file, /proc parsing, and the
``acd_enter`` FastAGI script against fakes."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from acd.config import load_acd
from acd.legs import DirectDial
from bench.acd_bench import acd_enter
from bench.acd_metrics import (
    CallTimes,
    bench_acd_toml,
    calls_from_events,
    found_free_agent,
    join_to_called,
    percentile,
    proc_usage,
    ratio,
    summary_ms,
    time_to_agent,
)


def test_percentile_interpolates_between_closest_ranks() -> None:
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 3.0
    assert percentile(values, 100) == 5.0
    assert percentile(values, 25) == 2.0
    assert percentile(values, 90) == pytest.approx(4.6)
    assert percentile([float(i) for i in range(1, 101)], 99) == pytest.approx(99.01)
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_summary_is_in_milliseconds_and_empty_is_none() -> None:
    s = summary_ms([0.010, 0.020, 0.030])
    assert s == {"n": 3, "p50": 20.0, "p95": 29.0, "p99": 29.8, "max": 30.0}
    assert summary_ms([], (50, 99)) == {"n": 0, "p50": None, "p99": None, "max": None}


def ev(name: str, t: float, **headers: str) -> dict[str, str]:
    return {"Event": name, "Timestamp": f"{t:.6f}", **headers}


def app_queue_call(num: str, t0: float, agent: str = "agent101") -> list[dict[str, str]]:
    """What app_queue emits for one answered call (caller on PJSIP/anonymous)."""
    caller = {"Channel": f"PJSIP/anonymous-{num}", "CallerIDNum": num, "Uniqueid": f"c{num}"}
    dest = {"DestChannel": f"PJSIP/{agent}-{num}", "DestUniqueid": f"a{num}"}
    return [
        ev("Newchannel", t0, **caller),
        ev("UserEvent", t0 + 0.01, UserEvent="TongdaiBenchEnter", **caller),
        ev("QueueCallerJoin", t0 + 0.012, **caller),
        ev("AgentCalled", t0 + 0.015, **caller, **dest),
        ev("DialBegin", t0 + 0.016, **caller, **dest),
        ev("DialEnd", t0 + 0.4, DialStatus="ANSWER", **caller, **dest),
        ev("Hangup", t0 + 8.4, Channel=dest["DestChannel"], Uniqueid=dest["DestUniqueid"]),
        ev("Hangup", t0 + 8.41, **caller),
    ]


def test_given_app_queue_events_when_parsed_then_each_moment_is_the_callers() -> None:
    calls = calls_from_events(app_queue_call("0901", 100.0) + app_queue_call("0902", 100.5))
    c = calls["0901"]
    assert (c.invite, c.enter, c.join, c.called) == (100.0, 100.01, 100.012, 100.015)
    assert (c.ring, c.answered, c.talk_end, c.ended) == (100.016, 100.4, 108.4, 108.41)
    assert calls["0902"].ring == 100.516
    assert time_to_agent(calls, 2) == pytest.approx([0.006, 0.006])
    assert join_to_called(calls, 2) == pytest.approx([0.003, 0.003])


def test_given_our_originate_events_then_the_agent_leg_links_by_its_caller_id() -> None:
    # our Originate: DialBegin has no caller channel; the leg's caller ID is the citizen's number
    caller = {"Channel": "PJSIP/anonymous-1", "CallerIDNum": "0901", "Uniqueid": "c1"}
    leg = {"DestChannel": "PJSIP/agent105-9", "DestUniqueid": "tongdai-acd-ab"}
    leg["DestCallerIDNum"] = "0901"
    events = [
        ev("Newchannel", 10.0, **caller),
        ev("UserEvent", 10.01, UserEvent="TongdaiBenchEnter", **caller),
        ev("Newchannel", 10.02, Channel="PJSIP/agent105-9", CallerIDNum="0901"),
        ev("DialBegin", 10.025, **leg),
        ev("DialEnd", 10.33, DialStatus="ANSWER", **leg),
        # Bridge() yanks the caller: a surrogate hangs up first; the real end is the last one
        ev("Hangup", 10.34, **caller),
        ev("Hangup", 18.33, Channel="PJSIP/agent105-9", Uniqueid="tongdai-acd-ab"),
        ev("Hangup", 25.0, **caller),
    ]
    c = calls_from_events(events)["0901"]
    assert (c.invite, c.enter, c.ring, c.answered) == (10.0, 10.01, 10.025, 10.33)
    assert (c.talk_end, c.ended) == (18.33, 25.0)
    assert c.join is None


def test_a_cancelled_ring_sets_ring_but_not_the_end_of_a_conversation() -> None:
    leg = {"DestChannel": "PJSIP/agent101-1", "DestUniqueid": "l1", "DestCallerIDNum": "0901"}
    events = [
        ev("DialBegin", 1.0, **leg),
        ev("DialEnd", 16.0, DialStatus="NOANSWER", **leg),
        ev("Hangup", 16.0, Channel="PJSIP/agent101-1", Uniqueid="l1"),
        ev("UserEvent", 0.5, UserEvent="SomethingElse", CallerIDNum="0901", Channel="PJSIP/x"),
    ]
    c = calls_from_events(events)["0901"]
    assert c.ring == 1.0 and c.answered is None and c.talk_end is None and c.enter is None


def test_events_without_a_time_or_for_other_channels_are_ignored() -> None:
    events: list[Mapping[str, str]] = [
        {"Event": "Newchannel", "CallerIDNum": "0901", "Channel": "PJSIP/anonymous-1"},
        {"Event": "DialBegin", "Timestamp": "5.0", "DestChannel": "PJSIP/anonymous-2"},
        {"Event": "Newchannel", "_rx": "7.5", "CallerIDNum": "0902", "Channel": "PJSIP/x-1"},
    ]
    calls = calls_from_events(events)
    assert set(calls) == {"0902"} and calls["0902"].invite == 7.5


def test_only_calls_entering_while_an_agent_is_free_count() -> None:
    a = CallTimes(enter=0.0, ring=0.1, talk_end=10.0)
    b = CallTimes(enter=1.0, ring=1.2, talk_end=11.0)
    c = CallTimes(enter=2.0, ring=10.05, talk_end=20.0)  # both agents busy: it waited
    d = CallTimes(enter=12.0, ring=12.3, talk_end=22.0)  # a and b are over: one is free again
    e = CallTimes(enter=3.0)  # never answered, left at 4.0: frees its place
    e.ended = 4.0
    calls = {"a": a, "b": b, "c": c, "d": d, "e": e}
    assert found_free_agent(calls, 2) == [a, b, d]
    assert time_to_agent(calls, 2) == pytest.approx([0.1, 0.2, 0.3])
    assert found_free_agent(calls, 10) == [a, b, c, e, d]


def test_ratio_needs_both_figures() -> None:
    assert ratio(2.0, 4.0) == 0.5
    assert ratio(None, 4.0) is None
    assert ratio(1.0, 0.0) is None


def test_the_generated_acd_file_loads_with_n_agents_on_their_endpoints(tmp_path: Path) -> None:
    path = tmp_path / "acd.toml"
    path.write_text(bench_acd_toml(3, max_calls=400), encoding="utf-8")
    cfg = load_acd(path)
    assert [a.endpoint for a in cfg.agents.values()] == [
        "PJSIP/agent101",
        "PJSIP/agent102",
        "PJSIP/agent103",
    ]
    q = cfg.queues["bench"]
    assert (q.strategy, q.wrapup_s, q.ring_timeout_s) == ("longest_idle", 0.0, 15.0)
    assert cfg.max_calls == 400 and not cfg.callback.enabled


def test_proc_usage_reads_cpu_ticks_and_peak_rss(tmp_path: Path) -> None:
    d = tmp_path / "42"
    d.mkdir()
    ticks = os.sysconf("SC_CLK_TCK")
    rest = " ".join(["0"] * 7)  # fields 7..13
    (d / "stat").write_text(f"42 (odd) name) S 1 42 42 {rest} {3 * ticks} {ticks} 0 0\n")
    (d / "status").write_text("Name:\tx\nVmHWM:\t  204800 kB\nVmRSS:\t 1 kB\n")
    u = proc_usage(42, tmp_path)
    assert (u.cpu_s, u.peak_rss_mb) == (4.0, 200.0)
    me = proc_usage(os.getpid())
    assert me.cpu_s > 0 and me.peak_rss_mb > 1


class FakeSession:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.vars: dict[str, str] = {}

    async def set_variable(self, name: str, value: str) -> None:
        self.vars[name] = value


class FakeDist:
    def __init__(self, admit: bool, direct: DirectDial | None = None) -> None:
        self.admit = admit
        self.direct = direct
        self.enqueued: list[tuple[str, str, str, str | None, str | None]] = []
        self.done: list[str] = []

    def enqueue(
        self, uid: str, channel: str, queue: str, caller: str | None, ticket: str | None
    ) -> bool:
        self.enqueued.append((uid, channel, queue, caller, ticket))
        return self.admit

    def dial_now(self, uid: str) -> DirectDial | None:
        self.done.append(uid)
        return self.direct

    def ivr_done(self, uid: str) -> None:
        self.done.append(uid)


ENV = {"agi_uniqueid": "1.5", "agi_channel": "PJSIP/anonymous-1", "agi_callerid": "0901"}


@pytest.mark.parametrize(("admit", "action"), [(True, "acd"), (False, "busy")])
async def test_acd_enter_queues_the_caller_and_without_a_free_agent_they_wait(
    admit: bool, action: str
) -> None:
    session, dist = FakeSession({**ENV, "agi_arg_1": "bench"}), FakeDist(admit)
    await acd_enter(session, dist, 3600)  # type: ignore[arg-type]
    assert dist.enqueued == [("1.5", "PJSIP/anonymous-1", "bench", "0901", None)]
    assert session.vars["TONGDAI_ACTION"] == action
    assert "TONGDAI_DIAL" not in session.vars
    if admit:
        assert session.vars["TONGDAI_ANNOUNCE"] == "3600"
    assert "1.5" in dist.done


async def test_acd_enter_with_a_free_agent_hands_the_channel_the_agent_to_dial() -> None:
    direct = DirectDial("agent107", "PJSIP/agent107", 15)
    session, dist = FakeSession({**ENV, "agi_arg_1": "bench"}), FakeDist(True, direct)
    await acd_enter(session, dist, 3600)  # type: ignore[arg-type]
    assert session.vars == {"TONGDAI_DIAL": "PJSIP/agent107,15"}  # one AGI command


@pytest.mark.parametrize("with_dist", [True, False])
async def test_acd_enter_in_queue_mode_only_says_queue(with_dist: bool) -> None:
    dist = FakeDist(True) if with_dist else None
    session = FakeSession({**ENV, "agi_arg_1": "bench", "agi_arg_2": "queue"})
    await acd_enter(session, dist, 3600)  # type: ignore[arg-type]
    assert session.vars == {"TONGDAI_ACTION": "queue"}
    assert dist is None or dist.enqueued == []
