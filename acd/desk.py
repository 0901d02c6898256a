"""Conversations in line and the agents' conversation capacity: the messaging half of the core.

Pure and synchronous like ``acd.dispatch``, whose dispatcher owns one desk and shares with it
its agents, its clock and its outbox. The messaging adapter (``acd.messaging``) feeds it; the
dispatcher's round (``Dispatcher.assign_round``) matches the calls first, then calls
``assign`` here with the agents that are left. Every change is a ``ConversationTransition``.

- A conversation waits in its queue's line, with the queue's strategy, skills and overflow
  steps (``add_skills`` widen who may take it, ``queue`` moves it, keeping its place);
  ``max_wait_s`` does not apply: a message does not hang up.
- An agent may take one when logged in, not paused nor about to be, holding fewer than their
  ``capacity.conversations``, and, unless ``capacity.conversations_during_call``, not ringing,
  talking or wrapping up a call (nor with their phone in use). Among the agents able to take
  it, those with the fewest open conversations come first (the load spreads); the queue's
  strategy chooses among them (round-robin with a memory of its own, not stored).
- Nobody ever holds more than their capacity; a conversation has at most one agent.
- ``voice_ok``: with ``capacity.voice_with_conversations = false`` an agent holding
  conversations is offered no call (the dispatcher asks before every offer).
- ``release``: pause or logout hands the agent's conversations back to their line (same
  place), or to a named colleague as far as the colleague's capacity goes (the rest go back).
- Escalation: an assigned conversation whose citizen has waited the queue's
  ``escalate_after_s`` for the agent's reply is escalated (event ``escalate``, flagged) and, in
  the next rounds, given to another agent able to take it (``reassign``); until then the
  current agent keeps it.

``assign`` costs O(waiting x able agents) at worst and stops when no agent can take more.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping

from acd.agent import AcdError, Agent, AgentState, Clock, UnknownAgent
from acd.calls import Lines
from acd.config import AcdConfig
from acd.conversations import (
    Conversation,
    ConversationOffer,
    ConversationState,
    ConversationTransition,
    UnknownConversation,
    check_transfer,
)
from acd.strategies import Requirement, RoundRobinMemory, active_steps, pick, requirement
from tickets.model import Channel

_S = ConversationState
_AWAY = frozenset({AgentState.LOGGED_OUT, AgentState.PAUSED})
_ON_VOICE = frozenset({AgentState.RINGING, AgentState.ON_CALL, AgentState.WRAP_UP})


def _key(c: Conversation) -> tuple[int, float, int]:
    return c.order_key


class ConversationDesk:
    def __init__(
        self,
        cfg: AcdConfig,
        clock: Clock,
        agents: Mapping[str, Agent],
        emit: Callable[[ConversationTransition], None],
    ) -> None:
        self.cfg = cfg
        self.clock = clock
        self.agents = agents
        self._emit = emit
        self.items: dict[str, Conversation] = {}
        self.lines: Lines[Conversation] = Lines(cfg.queues)
        #: agent -> codes of the conversations they hold, in the order they got them
        self.held: dict[str, dict[str, None]] = {a: {} for a in agents}
        self.rr: RoundRobinMemory = {}
        self._seq = 0

    # -- views -------------------------------------------------------------------------------

    def get(self, code: str) -> Conversation:
        try:
            return self.items[code]
        except KeyError:
            raise UnknownConversation(f"no conversation {code!r} in the distribution") from None

    def open_of(self, agent_id: str) -> list[str]:
        """Codes of the conversations ``agent_id`` holds."""
        return list(self.held.get(agent_id, ()))

    def position(self, code: str) -> int | None:
        """1-based place in its queue's line (None while assigned)."""
        c = self.items.get(code)
        return self.lines.position(c) if c is not None and c.in_line else None

    def line(self, queue: str) -> list[Conversation]:
        return self.lines.line(queue)

    def voice_ok(self, agent: Agent) -> bool:
        """May this agent be offered a call, as far as their conversations go?"""
        return not self.held[agent.id] or self.cfg.capacity_of(agent.id).voice_with_conversations

    def can_take(self, agent: Agent) -> bool:
        """May this agent be given one more conversation now?"""
        cap = self.cfg.capacity_of(agent.id)
        if agent.state in _AWAY or agent.pending_pause is not None:
            return False
        if len(self.held[agent.id]) >= cap.conversations:
            return False
        return cap.conversations_during_call or not (
            agent.state in _ON_VOICE or agent.device_in_use
        )

    def served(self, queue: str) -> bool:
        """Is anyone logged in (paused counts) who could take this queue's conversations?"""
        q = self.cfg.queues[queue]
        need = requirement(q, len(q.overflow))
        return any(
            a.state is not AgentState.LOGGED_OUT
            and self.cfg.capacity_of(a.id).conversations > 0
            and need.matches(a)
            for a in self.agents.values()
        )

    # -- from the messaging adapter ----------------------------------------------------------

    def enqueue(self, code: str, queue: str, channel: Channel, *, agent: str | None = None) -> bool:
        """The conversation needs an agent: into ``queue``'s line (or straight to ``agent``
        when able). True if it is (already) in the distribution; False, and nothing changes,
        when nobody logged in could ever serve it."""
        if code in self.items:
            return True
        name = self.cfg.queue_or_general(queue)
        target = self.agents.get(agent or "")
        direct = target is not None and self.can_take(target)
        if not direct and not self.served(name):
            return False
        now = self.clock()
        c = Conversation(code, channel, name, self.cfg.queues[name].priority, now, self._seq)
        self._seq += 1
        self.items[code] = c
        self.lines.add(c)
        self._emit(c.note("enter", now, first_entry=True))
        if target is not None and direct:
            self._give(c, target, "assign", now)
        return True

    def citizen_wrote(self, code: str) -> None:
        """A citizen message: their wait for a reply starts (if it had not)."""
        c = self.items.get(code)
        if c is not None and c.awaiting_since is None:
            c.awaiting_since = self.clock()
            self._emit(c.note("citizen_wrote", c.awaiting_since))

    def agent_replied(self, code: str, agent: str) -> None:
        """An agent (or supervisor) replied: the wait, and any escalation, are over."""
        c = self.items.get(code)
        if c is not None and (c.awaiting_since is not None or c.escalated):
            c.awaiting_since, c.escalated, c.escalating = None, False, False
            self._emit(c.note("agent_replied", self.clock(), detail=agent))

    def transfer(self, code: str, *, queue: str | None = None, agent: str | None = None) -> None:
        """To another queue (back in line, its place kept) or to a colleague able to take it."""
        check_transfer(queue, agent)
        c, now = self.get(code), self.clock()
        if agent is not None:
            a = self.agents.get(agent)
            if a is None:
                raise UnknownAgent(f"unknown agent {agent!r}")
            if c.agent == a.id:
                return
            if not self.can_take(a):
                raise AcdError(f"agent {agent} cannot take another conversation now")
            self._give(c, a, "transfer", now, detail=agent)
            return
        assert queue is not None
        if queue not in self.cfg.queues:
            raise AcdError(f"unknown queue {queue!r}")
        if c.state is _S.ASSIGNED:
            self.held[c.agent or ""].pop(code, None)
            tr = c.hand_back(now, "transfer", queue)
        elif c.queue == queue:
            return
        else:
            self.lines.remove(c)
            tr = c.note("transfer", now, detail=queue)
        self._emit(tr)
        c.move(queue, now)
        self.lines.add(c)
        self._emit(c.note("enter", now))

    def finish(self, code: str) -> None:
        """Resolved or closed: out of the line, or off its agent (capacity freed)."""
        c = self.items.pop(code, None)
        if c is None:
            return
        if c.agent is not None:
            self.held[c.agent].pop(code, None)
        elif c.in_line:
            self.lines.remove(c)
        self._emit(c.finish(self.clock()))

    def restore(
        self,
        code: str,
        channel: Channel,
        queue: str,
        *,
        agent: str | None,
        entered_at: float,
        awaiting_since: float | None = None,
    ) -> None:
        """An open conversation read back from the tickets at start (call in arrival order):
        with its agent if they can take it, else in line (the ticket then loses the agent)."""
        if code in self.items:
            return
        name = self.cfg.queue_or_general(queue)
        c = Conversation(code, channel, name, self.cfg.queues[name].priority, entered_at, self._seq)
        self._seq += 1
        c.awaiting_since = awaiting_since
        self.items[code] = c
        now = self.clock()
        holder = self.agents.get(agent or "")
        if holder is not None and self.can_take(holder):
            self.held[holder.id][code] = None
            c.state, c.agent, c.assigned_at = _S.ASSIGNED, holder.id, now
            self._emit(c.note("restore", now))
            return
        self.lines.add(c)
        if agent:  # the ticket names an agent who cannot hold it now
            self._emit(
                ConversationTransition(
                    code, "hand_back", _S.ASSIGNED, _S.WAITING, now, name, channel,
                    prev_agent=agent, detail="restart",
                )
            )  # fmt: skip
        else:
            self._emit(c.note("restore", now))

    # -- from the dispatcher -----------------------------------------------------------------

    def check_hand_to(self, agent_id: str, hand_to: str | None) -> None:
        """Before a pause or logout: the named colleague exists, is someone else, and works."""
        if hand_to is None:
            return
        mate = self.agents.get(hand_to)
        if mate is None:
            raise UnknownAgent(f"unknown agent {hand_to!r}")
        if hand_to == agent_id:
            raise AcdError(f"agent {agent_id} cannot hand their conversations to themselves")
        if mate.state in _AWAY:
            raise AcdError(f"agent {hand_to} is {mate.state.value}: cannot take conversations")

    def release(self, agent_id: str, why: str, hand_to: str | None = None) -> None:
        """The agent pauses or logs out: their conversations go to ``hand_to`` (as far as
        their capacity goes) or back to their line, in order of place."""
        codes = self.held.get(agent_id)
        if not codes:
            return
        mate = self.agents.get(hand_to or "")
        now = self.clock()
        for c in sorted((self.items[x] for x in codes), key=_key):
            if mate is not None and self.can_take(mate):
                self._give(c, mate, "hand_over", now, detail=agent_id)
            else:
                self.held[agent_id].pop(c.code, None)
                self._emit(c.hand_back(now, "hand_back", why))
                self.lines.add(c)

    def tick(self, now: float) -> list[Conversation]:
        """Overflow moves of waiting conversations, escalations of assigned ones; returns the
        conversations looking for another agent."""
        looking: list[Conversation] = []
        for c in list(self.items.values()):
            q = self.cfg.queues[c.queue]
            if c.state is _S.WAITING:
                for step in q.overflow[: active_steps(q, now - c.queue_entered_at)]:
                    if step.queue is not None and step.queue not in c.visited:
                        self._emit(c.note("overflow", now, detail=step.queue))
                        self.lines.remove(c)
                        c.move(step.queue, now)
                        self.lines.add(c)
                        self._emit(c.note("enter", now))
                        break
                continue
            if not c.escalating and c.awaiting_since is not None and q.escalate_after_s > 0:
                since = max(c.awaiting_since, c.assigned_at or c.awaiting_since)
                if now - since >= q.escalate_after_s:
                    self._emit(c.escalate(now))
            if c.escalating:
                looking.append(c)
        return looking

    def assign(self, now: float) -> list[ConversationOffer]:
        """Give waiting (and escalated) conversations, in order of place, to able agents."""
        looking = self.tick(now)
        able = {a.id: a for a in self.agents.values() if self.can_take(a)}
        if not able:
            return []
        cands: dict[tuple[str, int], tuple[Requirement, list[Agent]]] = {}
        offers: list[ConversationOffer] = []
        # a list first: giving a conversation takes it out of the line being walked
        for c in list(heapq.merge(self.lines.merged(), sorted(looking, key=_key), key=_key)):
            q = self.cfg.queues[c.queue]
            steps = active_steps(q, now - c.queue_entered_at) if q.overflow else 0
            found = cands.get((q.name, steps))
            if found is None:
                need = requirement(q, steps)
                found = cands[(q.name, steps)] = (
                    need,
                    [a for a in able.values() if need.matches(a)],
                )
            need, matching = found
            pool = [a for a in matching if a.id in able and a.id != c.agent]
            if not pool:
                continue
            least = min(len(self.held[a.id]) for a in pool)
            pool = [a for a in pool if len(self.held[a.id]) == least]
            agent = pick(q.strategy, pool, c, now, self.rr, need)
            if agent is None:
                continue
            prev = c.agent
            self._give(c, agent, "reassign" if prev is not None else "assign", now)
            offers.append(ConversationOffer(c.code, c.channel, c.queue, agent.id, prev))
            if not self.can_take(agent):
                del able[agent.id]
                if not able:
                    break
        return offers

    def _give(self, c: Conversation, a: Agent, event: str, now: float, detail: str = "") -> None:
        if c.agent is not None:
            self.held[c.agent].pop(c.code, None)
        elif c.in_line:
            self.lines.remove(c)
        self.held[a.id][c.code] = None
        self._emit(c.assign(a.id, now, event, detail))
