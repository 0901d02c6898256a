"""Property test: random event sequences never break the dispatcher's promises.

After every step: a call is offered to at most one agent and an agent holds at most one call
(both sides agree); positions are dense (1..n) and the relative order of calls staying in a
queue never changes; ring-no-answer keeps the call's position; capacity holds; an agent whose
phone is busy is never offered; a rebuild from the persisted state gives the same view.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from acd.agent import AgentState
from acd.calls import IN_LINE, Admission, CallState, QueuedCall
from acd.config import (
    AcdConfig,
    AgentConfig,
    CallbackConfig,
    Overflow,
    QueueConfig,
    SkillReq,
)
from acd.dispatch import Dispatcher

A, C = AgentState, CallState
MAX_CALLS = 8
HOLDING = {C.OFFERED, C.CONNECTED, C.CALLBACK_DIALING}


def config(mode: str) -> AcdConfig:
    agents = {
        "a1": {"thu_tuc": 5, "chung": 2},
        "a2": {"thu_tuc": 2},
        "a3": {"chung": 4, "phan_anh": 3},
        "a4": {"phan_anh": 5},
    }
    queues = {
        "thu_tuc": QueueConfig(
            "thu_tuc",
            "thu_tuc",
            (SkillReq("thu_tuc", 2),),
            strategy="skills",
            overflow=(
                Overflow(30, add_skills=(SkillReq("chung", 2),)),
                Overflow(90, queue="chung"),
            ),
            wrapup_s=5,
            max_misses=2,
        ),
        "phan_anh": QueueConfig(
            "phan_anh", "phan_anh", (SkillReq("phan_anh", 1),), strategy="round_robin", priority=3
        ),
        "chung": QueueConfig(
            "chung", "chung", (SkillReq("chung", 1),), strategy="fewest_calls", max_wait_s=300
        ),
    }
    return AcdConfig(
        "props",
        ("thu_tuc", "chung", "phan_anh"),
        {a: AgentConfig(a, a, f"PJSIP/{a}", s) for a, s in agents.items()},
        queues,
        max_calls=MAX_CALLS,
        callback=CallbackConfig(mode=mode, max_attempts=2, retry_after_s=20, offer_after_s=0),
    )


class Clock:
    t = 1000.0

    def __call__(self) -> float:
        return self.t


class DispatcherMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.d = Dispatcher(config("caller_first"), clock=self.clock)
        self.n = 0
        self.prev_lines: dict[str, list[str]] = {}

    # -- helpers -----------------------------------------------------------------------------

    def calls_in(self, *states: CallState) -> list[str]:
        return sorted(u for u, c in self.d.calls.items() if c.state in states)

    def agents_in(self, *states: AgentState) -> list[str]:
        return sorted(a for a, ag in self.d.agents.items() if ag.state in states)

    # -- rules -------------------------------------------------------------------------------

    @initialize(n=st.integers(0, 4))
    def some_agents_log_in(self, n: int) -> None:
        for aid in list(self.d.agents)[:n]:
            self.d.agent_login(aid)

    @rule(mode=st.sampled_from(["caller_first", "agent_first"]))
    def switch_callback_mode(self, mode: str) -> None:
        if not self.d.calls:  # only before anything happened to a call
            cfg = config(mode)
            self.d.cfg = cfg

    @rule(
        queue=st.sampled_from(["thu_tuc", "phan_anh", "chung"]), prio=st.sampled_from([None, 0, 9])
    )
    def arrive(self, queue: str, prio: int | None) -> None:
        self.n += 1
        full = self.d.active_calls() >= MAX_CALLS
        got = self.d.call_arrived(f"c{self.n}", queue, caller=f"09{self.n}", priority=prio)
        assert got is (Admission.REJECTED_BUSY if full else Admission.QUEUED)

    @rule(data=st.data())
    def leave(self, data: st.DataObject) -> None:
        in_line = self.calls_in(*IN_LINE)
        if in_line:
            self.d.call_left(data.draw(st.sampled_from(in_line)))

    @rule(dt=st.sampled_from([0.5, 3, 10, 25, 60, 120]))
    def time_passes(self, dt: float) -> None:
        self.clock.t += dt

    @rule()
    def assign(self) -> None:
        self.d.tick()  # wrap-ups ending now make agents eligible for this round
        eligible = {a for a, ag in self.d.agents.items() if ag.eligible}
        offers = self.d.assign()
        agents = [o.agent_id for o in offers]
        calls = [o.call_id for o in offers]
        assert len(set(agents)) == len(agents) and len(set(calls)) == len(calls)
        assert set(agents) <= eligible

    @rule(data=st.data())
    def answer(self, data: st.DataObject) -> None:
        offered = self.calls_in(C.OFFERED)
        if offered:
            self.d.answered(data.draw(st.sampled_from(offered)))

    @rule(data=st.data())
    def ring_no_answer(self, data: st.DataObject) -> None:
        offered = self.calls_in(C.OFFERED)
        if offered:
            uid = data.draw(st.sampled_from(offered))
            before = self.d.position(uid)
            self.d.ring_no_answer(uid)
            assert self.d.position(uid) == before

    @rule(data=st.data())
    def cancel_offer(self, data: st.DataObject) -> None:
        ringing = [
            u
            for u in self.calls_in(C.OFFERED, C.CALLBACK_DIALING)
            if self.d.agents[self.d.calls[u].offered_to or ""].state is A.RINGING
        ]
        if ringing:
            uid = data.draw(st.sampled_from(ringing))
            before = self.d.position(uid)
            self.d.cancel_offer(uid)
            assert self.d.position(uid) == before

    @rule(data=st.data(), by=st.sampled_from(["caller", "agent"]))
    def complete(self, data: st.DataObject, by: str) -> None:
        connected = self.calls_in(C.CONNECTED)
        if connected:
            self.d.call_completed(data.draw(st.sampled_from(connected)), by)

    @rule(data=st.data())
    def request_callback(self, data: st.DataObject) -> None:
        waiting = self.calls_in(C.WAITING)
        if waiting:
            uid = data.draw(st.sampled_from(waiting))
            before = self.d.position(uid)
            self.d.request_callback(uid)
            assert self.d.position(uid) == before

    @rule(data=st.data(), ok=st.booleans())
    def callback_outcome(self, data: st.DataObject, ok: bool) -> None:
        dialing = [
            u
            for u in self.calls_in(C.CALLBACK_DIALING)
            if self.d.calls[u].callback_mode == "caller_first"
            or self.d.agents[self.d.calls[u].offered_to or ""].state is A.ON_CALL
        ]
        if dialing:
            uid = data.draw(st.sampled_from(dialing))
            (self.d.callback_answered if ok else self.d.callback_failed)(uid)

    @rule(data=st.data())
    def login(self, data: st.DataObject) -> None:
        out = self.agents_in(A.LOGGED_OUT)
        if out:
            self.d.agent_login(data.draw(st.sampled_from(out)))

    @rule(data=st.data())
    def logout(self, data: st.DataObject) -> None:
        free = self.agents_in(A.AVAILABLE, A.WRAP_UP, A.PAUSED)
        if free:
            self.d.agent_logout(data.draw(st.sampled_from(free)))

    @rule(data=st.data(), reason=st.sampled_from(["break", "meal", "training", "back_office"]))
    def pause(self, data: st.DataObject, reason: str) -> None:
        ok = self.agents_in(A.AVAILABLE, A.WRAP_UP, A.PAUSED, A.ON_CALL)
        if ok:
            self.d.agent_pause(data.draw(st.sampled_from(ok)), reason)

    @rule(data=st.data())
    def unpause(self, data: st.DataObject) -> None:
        paused = self.agents_in(A.PAUSED)
        if paused:
            self.d.agent_unpause(data.draw(st.sampled_from(paused)))

    @rule(agent=st.sampled_from(["a1", "a2", "a3", "a4"]), in_use=st.sampled_from([0, 0, 1]))
    def device(self, agent: str, in_use: int) -> None:
        self.d.agent_device(agent, bool(in_use))

    @precondition(lambda self: bool(self.d.calls))
    @rule()
    def drain(self) -> None:
        self.d.drain_events()

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def one_call_one_agent(self) -> None:
        holders: dict[str, str] = {}
        for aid, a in self.d.agents.items():
            if a.state in (A.RINGING, A.ON_CALL):
                assert a.call_id is not None, aid
                c = self.d.calls[a.call_id]
                assert c.state in HOLDING and c.offered_to == aid
                assert a.call_id not in holders
                holders[a.call_id] = aid
            else:
                assert a.call_id is None
        for uid, c in self.d.calls.items():
            if c.state in HOLDING:
                assert holders.get(uid) == c.offered_to
            else:
                assert uid not in holders

    @invariant()
    def positions_dense_and_order_stable(self) -> None:
        lines = {q: [c.uniqueid for c in self.d.line(q)] for q in self.d.cfg.queues}
        for q, line in lines.items():
            members = {u for u, c in self.d.calls.items() if c.queue == q and c.in_line}
            assert set(line) == members and len(line) == len(members)
            assert [self.d.position(u) for u in line] == list(range(1, len(line) + 1))
            prev = self.prev_lines.get(q, [])
            both = set(prev) & set(line)
            assert [u for u in prev if u in both] == [u for u in line if u in both]
        self.prev_lines = lines

    @invariant()
    def capacity_holds(self) -> None:
        assert self.d.active_calls() <= MAX_CALLS

    @invariant()
    def a_rebuild_gives_the_same_view(self) -> None:
        fresh = Dispatcher(self.d.cfg, clock=self.clock)
        fresh.restore(
            [QueuedCall.from_dict(c.to_dict()) for c in self.d.calls.values()],
            {a: ag.snapshot() for a, ag in self.d.agents.items()},
            dict(self.d.rr),
        )
        for q in self.d.cfg.queues:
            assert [c.to_dict() for c in fresh.line(q)] == [c.to_dict() for c in self.d.line(q)]
        assert {a: x.snapshot() for a, x in fresh.agents.items()} == {
            a: x.snapshot() for a, x in self.d.agents.items()
        }


TestDispatcherProperties = DispatcherMachine.TestCase
TestDispatcherProperties.settings = settings(
    max_examples=150,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
