"""The distribution's pure, synchronous core: calls in line, agents, and who rings whom.

The adapters (``acd.voice`` for Asterisk, ``acd.messaging`` for conversations) feed it events
and carry out what it decides; the router (``acd.router``) runs its rounds and drains its
outbox. Nothing here touches the network or reads the wall clock (``clock`` is injected).

- ``call_arrived`` puts a call in its queue's line (or ``REJECTED_BUSY`` past ``max_calls``).
- ``assign(now)`` matches waiting calls, in order (priority desc, then first come first served,
  across queues), to free agents that meet the call's skill requirement, with each queue's
  strategy, and returns the offers to ring. A call is never offered to two agents at once and an
  agent never holds two calls: both sides move together, or not at all.
- ``assign_round(now)``: voice first, then conversations (``conversations``, an
  ``acd.desk.ConversationDesk`` sharing these agents, this clock and this outbox) with the
  agents and capacity left.
- Ring-no-answer puts the call back at its own place; ``max_misses`` in a row auto-pause the agent.
- A callback keeps the caller's place while they hang up; its offer says which leg to dial first.
- An agent going on pause or logging out (however: asked, auto-paused, a pending pause taking
  effect) hands their open conversations back, or to a named colleague (``hand_to``).
- Every transition (agents', calls' and conversations') goes to an outbox (``drain_events``);
  what changed of the calls and agents since the last ``take_dirty`` goes to the state store
  (conversations are not stored there: they are rebuilt from the tickets).

``assign`` costs O(waiting + agents x queues): candidates are computed once per (queue,
escalation step) per round, and the scan stops as soon as no free agent is left.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from acd.agent import (
    AcdError,
    Agent,
    AgentSnapshot,
    AgentState,
    Clock,
    IllegalTransition,
    PauseReason,
    Transition,
    UnknownAgent,
)
from acd.calls import (
    HOLDING,
    IN_LINE,
    Admission,
    CallOutcome,
    CallState,
    CallTransition,
    Lines,
    Offer,
    QueuedCall,
    UnknownCall,
)
from acd.config import AcdConfig, QueueConfig
from acd.conversations import ConversationOffer, ConversationTransition
from acd.desk import ConversationDesk
from acd.estimate import WaitEstimator
from acd.store import Dirty
from acd.strategies import Requirement, RoundRobinMemory, active_steps, pick, requirement

log = logging.getLogger(__name__)

Event = Transition | CallTransition | ConversationTransition
_S = CallState
#: an agent entering one of these states hands their conversations back
_AWAY = (AgentState.PAUSED, AgentState.LOGGED_OUT)


@dataclass(frozen=True)
class Round:
    """What one matching round decided: calls to ring, conversations given."""

    voice: list[Offer] = field(default_factory=list)
    conversations: list[ConversationOffer] = field(default_factory=list)


class Dispatcher:
    def __init__(
        self, cfg: AcdConfig, *, clock: Clock, estimator: WaitEstimator | None = None
    ) -> None:
        self.cfg = cfg
        self.clock = clock
        self.agents = {a.id: Agent(a, clock, order=i) for i, a in enumerate(cfg.agents.values())}
        self.calls: dict[str, QueuedCall] = {}
        self.rr: RoundRobinMemory = {}
        self.estimator = estimator or WaitEstimator()
        self.lines: Lines[QueuedCall] = Lines(cfg.queues)
        self._events: list[Event] = []
        self.conversations = ConversationDesk(cfg, clock, self.agents, self._events.append)
        self._seq = 0
        self._dirty_calls: set[str] = set()
        self._ended: set[str] = set()
        self._dirty_agents: set[str] = set()
        self._rr_dirty = False

    # -- lookups -----------------------------------------------------------------------------

    def agent(self, agent_id: str) -> Agent:
        try:
            return self.agents[agent_id]
        except KeyError:
            raise UnknownAgent(f"unknown agent {agent_id!r}") from None

    def call(self, uniqueid: str) -> QueuedCall:
        try:
            return self.calls[uniqueid]
        except KeyError:
            raise UnknownCall(f"no call {uniqueid!r} in the distribution") from None

    def queue(self, name: str) -> QueueConfig:
        try:
            return self.cfg.queues[name]
        except KeyError:
            raise AcdError(f"unknown queue {name!r}") from None

    def position(self, uniqueid: str) -> int | None:
        """1-based place in its queue's line (None once connected or ended)."""
        c = self.calls.get(uniqueid)
        return self.lines.position(c) if c is not None and c.in_line else None

    def line(self, queue: str) -> list[QueuedCall]:
        """The calls holding a place in ``queue``, in order."""
        return self.lines.line(queue)

    def active_calls(self) -> int:
        """Calls counting against ``max_calls``: all but callbacks waiting for their turn."""
        return sum(1 for c in self.calls.values() if c.state is not _S.CALLBACK_WAITING)

    def serving_agents(self, queue: str) -> int:
        """Agents logged in, not paused, with the queue's skills (for the wait estimate)."""
        need = requirement(self.queue(queue), 0)
        busy = (AgentState.LOGGED_OUT, AgentState.PAUSED)
        return sum(1 for a in self.agents.values() if a.state not in busy and need.matches(a))

    def agent_queues(self, agent_id: str) -> list[str]:
        """Queues whose skills the agent has (for PAUSE/UNPAUSE lines per queue)."""
        a = self.agent(agent_id)
        return [q.name for q in self.cfg.queues.values() if requirement(q, 0).matches(a)]

    def may_offer_callback(self, uniqueid: str, now: float | None = None) -> bool:
        """Offer "press key to be called back" now? (waiting long enough, number known)."""
        cb = self.cfg.callback
        c = self.calls.get(uniqueid)
        t = self.clock() if now is None else now
        return (
            cb.enabled
            and c is not None
            and c.state is _S.WAITING
            and bool(c.caller)
            and t - c.entered_at >= cb.offer_after_s
        )

    # -- outbox and persistence --------------------------------------------------------------

    def drain_events(self) -> list[Event]:
        # emptied in place: the desk appends to this very list
        events = self._events.copy()
        self._events.clear()
        return events

    def take_dirty(self) -> Dirty:
        d = Dirty(
            calls=[self.calls[u] for u in sorted(self._dirty_calls) if u in self.calls],
            ended=sorted(self._ended),
            agents={a: self.agents[a].snapshot() for a in sorted(self._dirty_agents)},
            rr=dict(self.rr) if self._rr_dirty else None,
        )
        self._dirty_calls.clear()
        self._ended.clear()
        self._dirty_agents.clear()
        self._rr_dirty = False
        return d

    def restore(
        self,
        calls: Iterable[QueuedCall],
        agents: Mapping[str, AgentSnapshot],
        rr: Mapping[str, str],
    ) -> None:
        """Rebuild after a restart from the state store (then reconcile with AMI)."""
        for aid, snap in agents.items():
            if aid in self.agents:
                self.agents[aid].restore(snap)
            else:
                log.warning("stored agent %s is no longer configured: dropped", aid)
        fallback = self.cfg.queue_or_general("")
        for c in calls:
            if c.state is _S.ENDED or c.uniqueid in self.calls:
                continue
            if c.queue not in self.lines:
                log.warning("call %s: queue %s is gone, moved to %s", c.uniqueid, c.queue, fallback)
                c.queue = fallback
            self.calls[c.uniqueid] = c
            if c.in_line:
                self.lines.add(c)
            self._seq = max(self._seq, c.seq + 1)
        self.rr.update(rr)
        self._repair_pairs()

    def _repair_pairs(self) -> None:
        """The store is written in steps: after a crash between two, an agent and its call may
        disagree. Agents let go of calls that are not theirs; offers nobody holds go back in
        line (same place)."""
        for a in self.agents.values():
            c = self.calls.get(a.call_id or "")
            if a.call_id is None or (c and c.offered_to == a.id and c.state in HOLDING):
                if c and c.state is _S.CONNECTED and a.state is AgentState.RINGING:
                    self._emit_agent(a.answered())  # the answer was saved for the call only
                continue
            log.warning("agent %s held %s, which is not theirs: released", a.id, a.call_id)
            if a.state is AgentState.RINGING:
                self._emit_agent(a.offer_cancelled())
            elif a.state is AgentState.ON_CALL:
                self._emit_agent(a.call_ended(0, handled=False))
            else:
                a.call_id = None
        for c in list(self.calls.values()):
            holder = self.agents.get(c.offered_to or "")
            if c.state in (_S.OFFERED, _S.CALLBACK_DIALING) and (
                holder is None or holder.call_id != c.uniqueid
            ):
                self._emit_call(
                    c.back_in_line("offer_cancelled", self.clock(), self.position(c.uniqueid))
                )

    def touch(self, c: QueuedCall) -> None:
        """Mark a call changed outside a transition (e.g. announced), for ``take_dirty``."""
        self._dirty_calls.add(c.uniqueid)

    def new_day(self) -> None:
        for a in self.agents.values():
            a.reset_day()
            self._dirty_agents.add(a.id)

    # -- internals ---------------------------------------------------------------------------

    def _emit_agent(self, tr: Transition, hand_to: str | None = None) -> Transition:
        self._events.append(tr)
        self._dirty_agents.add(tr.agent)
        if tr.to_state in _AWAY or tr.event == "pause":
            self.conversations.release(tr.agent, tr.event, hand_to)
        return tr

    def _emit_call(self, tr: CallTransition) -> CallTransition:
        self._events.append(tr)
        if tr.from_state in IN_LINE and tr.to_state not in IN_LINE:
            self.lines.remove(self.calls[tr.call_id])
        if tr.to_state is _S.ENDED:
            del self.calls[tr.call_id]
            self._dirty_calls.discard(tr.call_id)
            self._ended.add(tr.call_id)
        else:
            self._dirty_calls.add(tr.call_id)
        return tr

    def _then_release(
        self, tr: CallTransition, holder: str | None, *, miss: bool
    ) -> CallTransition:
        """After the call's transition, its agent lets it go: rang out (a miss), withdrawn, or
        the callback failed. Call first, so queue_log reads RINGNOANSWER before PAUSE."""
        self._emit_call(tr)
        if holder is not None:
            a = self.agents[holder]
            if a.state is AgentState.RINGING:
                max_misses = self.queue(tr.queue).max_misses
                self._emit_agent(a.ring_no_answer(max_misses) if miss else a.offer_cancelled())
            else:  # agent-first callback: the agent was on the line while we dialled the citizen
                self._emit_agent(a.call_ended(0, handled=False))
        return tr

    # -- call events -------------------------------------------------------------------------

    def call_arrived(
        self,
        uniqueid: str,
        queue: str,
        *,
        caller: str | None = None,
        ticket: str | None = None,
        priority: int | None = None,
        in_ivr: bool = False,
        entered_at: float | None = None,
        seq: int | None = None,
    ) -> Admission:
        """A caller joins ``queue``'s line. ``in_ivr``: the IVR still speaks to them; they
        keep their place but are offered to no agent until ``ivr_done``. ``entered_at``: when
        the caller really arrived, if earlier (a caller the engine lost in a crash and takes
        back, or one another engine took in - failover, ``acd.arrivals`` - keeps their place
        among the others; their wait counts from then); ``seq``: that engine's global number."""
        q = self.queue(queue)
        if uniqueid in self.calls:
            raise AcdError(f"call {uniqueid!r} is already in the distribution")
        if self.active_calls() >= self.cfg.max_calls:
            return Admission.REJECTED_BUSY
        now = self.clock()
        entered = now if entered_at is None else min(entered_at, now)
        c = QueuedCall(
            uniqueid, queue, q.priority if priority is None else priority, entered,
            self._seq if seq is None else seq, caller, queue_entered_at=now,
        )  # fmt: skip
        c.ticket = ticket
        c.in_ivr = in_ivr
        self._seq = max(self._seq, c.seq) + 1
        self.calls[uniqueid] = c
        c.orig_position = self.lines.add(c)
        self._emit_call(c.note("enter", now, c.orig_position, detail=caller or ""))
        return Admission.QUEUED

    def ivr_done(self, uniqueid: str) -> None:
        """The IVR has finished with the caller: from now on they may be offered."""
        c = self.calls.get(uniqueid)
        if c is not None and c.in_ivr:
            c.in_ivr = False
            self.touch(c)

    def call_left(self, uniqueid: str) -> CallTransition:
        """The caller hung up while in line (abandon), or a waiting callback is cancelled."""
        c = self.call(uniqueid)
        if not c.in_line:
            raise IllegalTransition(f"call {uniqueid}", c.state.value, "leave the line")
        now, pos = self.clock(), self.position(uniqueid)
        holder = c.offered_to
        if c.state in (_S.WAITING, _S.OFFERED):
            tr = c.end("abandon", CallOutcome.ABANDONED_QUEUE, now, pos)
        else:
            tr = c.end("callback_cancelled", CallOutcome.CALLBACK_CANCELLED, now, pos)
        return self._then_release(tr, holder, miss=False)

    def request_callback(self, uniqueid: str, number: str | None = None) -> CallTransition:
        c = self.call(uniqueid)
        cb = self.cfg.callback
        if not cb.enabled:
            raise AcdError("callbacks are disabled (acd.callback.enabled)")
        num = number or c.caller
        if not num:
            raise AcdError(f"call {uniqueid}: no number to call back")
        tr = c.request_callback(num, cb.mode, cb.key, self.clock(), self.position(uniqueid))
        return self._emit_call(tr)

    def answered(self, uniqueid: str, peer: str = "") -> CallTransition:
        """The agent answered (``peer``: the agent channel's uniqueid, for CONNECT)."""
        c = self.call(uniqueid)
        a = self.agents[c.offered_to or ""] if c.offered_to else None
        if a is None or c.state is not _S.OFFERED:
            raise AcdError(f"call {uniqueid}: answered while {c.state.value}")
        tr = c.answered(self.clock(), peer)
        self._emit_agent(a.answered())
        return self._emit_call(tr)

    def ring_no_answer(self, uniqueid: str) -> CallTransition:
        c = self.call(uniqueid)
        if c.state is not _S.OFFERED:
            raise AcdError(f"call {uniqueid}: ring_no_answer while {c.state.value}")
        holder = c.offered_to
        tr = c.back_in_line("ring_no_answer", self.clock(), self.position(uniqueid))
        return self._then_release(tr, holder, miss=True)

    def cancel_offer(self, uniqueid: str) -> CallTransition:
        """Withdraw an offer without blaming the agent (claim lost, Originate failed)."""
        c = self.call(uniqueid)
        holder = self.agents.get(c.offered_to or "")
        if holder is None or holder.state is not AgentState.RINGING:
            raise AcdError(f"call {uniqueid}: no pending offer to cancel")
        tr = c.back_in_line("offer_cancelled", self.clock(), self.position(uniqueid))
        return self._then_release(tr, holder.id, miss=False)

    def callback_answered(self, uniqueid: str) -> CallTransition:
        return self._emit_call(self.call(uniqueid).callback_answered(self.clock()))

    def callback_failed(self, uniqueid: str) -> CallTransition:
        """The citizen did not answer: retry later at the same place, or end after max_attempts."""
        c = self.call(uniqueid)
        if c.state is not _S.CALLBACK_DIALING:
            raise AcdError(f"call {uniqueid}: callback_failed while {c.state.value}")
        cb = self.cfg.callback
        pos = self.position(uniqueid)
        holder = c.offered_to
        tr = c.callback_failed(self.clock(), cb.max_attempts, cb.retry_after_s, pos)
        return self._then_release(tr, holder, miss=False)

    def resume_connected(self, uniqueid: str, agent_id: str | None, peer: str = "") -> None:
        """Asterisk shows the caller already talking to an agent (answered while the engine was
        down, so the answer event went to a dead process): the call is connected, to
        ``agent_id`` when that agent is ours and free in our books (their phone is busy, which
        is why the device flag is set aside for the bookkeeping offer)."""
        c = self.call(uniqueid)
        if c.state is _S.CONNECTED:
            return
        if c.state is _S.OFFERED and c.offered_to is not None and c.offered_to != agent_id:
            self.cancel_offer(uniqueid)
        if c.state is _S.OFFERED:
            self.answered(uniqueid, peer)
            return
        if c.state is not _S.WAITING:  # a callback: its own legs tell how it went
            raise AcdError(f"call {uniqueid}: cannot resume as connected while {c.state.value}")
        now = self.clock()
        a = self.agents.get(agent_id or "")
        free = a is not None and a.state is AgentState.AVAILABLE
        self._emit_call(c.offer(agent_id or "", now))
        if a is not None and free:
            busy, a.device_in_use = a.device_in_use, False
            try:
                self._emit_agent(a.offer(uniqueid))
            finally:
                a.device_in_use = busy
            self._emit_agent(a.answered())
        self._emit_call(c.answered(now, peer))

    def call_completed(self, uniqueid: str, by: str) -> CallTransition:
        """The conversation ended; ``by`` = "caller" or "agent" (COMPLETECALLER/COMPLETEAGENT)."""
        c = self.call(uniqueid)
        agent = c.offered_to
        tr = c.complete(by, self.clock())
        q = self.queue(c.queue)
        holder = self.agents.get(agent or "")
        if holder is not None and holder.call_id == uniqueid:
            self._emit_agent(holder.call_ended(q.wrapup_s))
        self.estimator.record_handled(q.name, (tr.talk_s or 0.0) + q.wrapup_s, tr.at)
        return self._emit_call(tr)

    # -- agent events ------------------------------------------------------------------------

    def agent_login(self, agent_id: str) -> Transition:
        return self._emit_agent(self.agent(agent_id).login())

    def agent_logout(self, agent_id: str, hand_to: str | None = None) -> Transition:
        """Log out; open conversations go to ``hand_to`` (as far as they can take them) or
        back to their line."""
        a = self.agent(agent_id)
        self.conversations.check_hand_to(agent_id, hand_to)
        return self._emit_agent(a.logout(), hand_to)

    def agent_pause(
        self, agent_id: str, reason: PauseReason | str, hand_to: str | None = None
    ) -> Transition:
        """Pause (at once, or after the call in progress); open conversations are handed
        back at once, like at logout."""
        a = self.agent(agent_id)
        self.conversations.check_hand_to(agent_id, hand_to)
        return self._emit_agent(a.pause(reason), hand_to)

    def agent_unpause(self, agent_id: str) -> Transition:
        return self._emit_agent(self.agent(agent_id).unpause())

    def agent_device(self, agent_id: str, in_use: bool) -> Transition:
        """From AMI DeviceStateChange (see ``acd.agent.device_is_free``)."""
        a = self.agent(agent_id)
        return self._emit_agent(a.device_busy() if in_use else a.device_free())

    # -- time --------------------------------------------------------------------------------

    def tick(self, now: float | None = None) -> None:
        """Time-driven changes: wrap-ups ending, overflow moves, max-wait timeouts."""
        now = self.clock() if now is None else now
        for a in self.agents.values():
            if a.state is AgentState.WRAP_UP and (a.wrapup_until or 0.0) <= now:
                self._emit_agent(a.wrapup_done())
        for c in list(self.calls.values()):
            if c.state not in (_S.WAITING, _S.CALLBACK_WAITING):
                continue
            q = self.cfg.queues[c.queue]
            if c.state is _S.WAITING and now - c.entered_at >= q.max_wait_s:
                pos = self.position(c.uniqueid)
                self._emit_call(c.end("timeout", CallOutcome.TIMEOUT_QUEUE, now, pos))
                continue
            for step in q.overflow[: active_steps(q, now - c.queue_entered_at)]:
                if step.queue is not None and step.queue not in c.visited:
                    self._move(c, step.queue, now)
                    break

    def _move(self, c: QueuedCall, target: str, now: float) -> None:
        self._emit_call(c.note("overflow", now, self.position(c.uniqueid), detail=target))
        self.lines.remove(c)
        c.move(target, now)
        c.orig_position = self.lines.add(c)
        self._emit_call(c.note("enter", now, c.orig_position, detail=c.caller or ""))

    # -- matching ----------------------------------------------------------------------------

    def assign_round(self, now: float | None = None) -> Round:
        """One round: calls first, then conversations with the agents and capacity left."""
        now = self.clock() if now is None else now
        voice = self.assign(now)
        return Round(voice, self.conversations.assign(now))

    def assign(self, now: float | None = None) -> list[Offer]:
        """Offer waiting calls to free agents; the distributor rings each offer's agent."""
        now = self.clock() if now is None else now
        self.tick(now)
        voice_ok = self.conversations.voice_ok
        free = [a for a in self.agents.values() if a.eligible and voice_ok(a)]
        if not free:
            return []
        cands: dict[tuple[str, int], tuple[Requirement, list[Agent]]] = {}
        offers: list[Offer] = []
        for c in self.lines.merged():
            if c.state is _S.CALLBACK_WAITING:
                if c.not_before > now:
                    continue
            elif c.state is not _S.WAITING or c.in_ivr:
                continue
            q = self.cfg.queues[c.queue]
            steps = active_steps(q, now - c.queue_entered_at) if q.overflow else 0
            found = cands.get((q.name, steps))
            if found is None:
                need = requirement(q, steps)
                found = cands[(q.name, steps)] = (need, [a for a in free if need.matches(a)])
            need, pool = found
            if not pool:
                continue
            if c.missed_by is not None:  # someone else, if anyone else can
                pool = [a for a in pool if a.id != c.missed_by] or pool
            agent = pick(q.strategy, pool, c, now, self.rr, need)
            if agent is None:
                continue
            if q.strategy == "round_robin":
                self._rr_dirty = True
            callback = c.state is _S.CALLBACK_WAITING
            self._emit_call(c.offer(agent.id, now))
            self._emit_agent(agent.offer(c.uniqueid))
            offers.append(
                Offer(c, agent, q.ring_timeout_s, callback, c.callback_mode if callback else None)
            )
            free.remove(agent)
            for _, p in cands.values():
                if agent in p:
                    p.remove(agent)
            if not free:
                break
        return offers
