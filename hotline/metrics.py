"""Prometheus metrics (``/metrics``, behind a login or a token like everything else).

    tongdai_calls_in_ivr                      gauge     calls in the voice menu now
    tongdai_queue_waiting{queue}              gauge     callers waiting in line now
    tongdai_agents{state}                     gauge     agents per state now
    tongdai_sse_clients                       gauge     live-update clients connected
    tongdai_calls_total{outcome}              counter   calls ended, by ticket outcome
    tongdai_queue_wait_seconds{queue}         histogram wait in line of answered calls
    tongdai_handle_seconds{queue}             histogram talk + after-call work of handled calls
    tongdai_fastagi_command_seconds{command}  histogram one AGI command's round trip
    tongdai_ami_reconnects_total              counter   AMI sessions re-established
    tongdai_dependency_up{name}               gauge     1 when a dependency is reachable, 0 down

Gauges are read from the distribution at scrape time (no bookkeeping to drift). Counters and
histograms are fed by the ACD listener (``observe``) and by hooks the engine calls:
``count_outcome`` (``CountingTicketStore`` calls it as outcomes are written), ``fastagi_command``
and ``watch_ami``.

Calls by outcome, by who decides it (each call once):

- the IVR (``IVR_OUTCOMES``): the IVR's ``CountingTicketStore(tickets, metrics)``;
- our ACD (``distribution = "engine"``): its own events, through ``observe``;
- app_queue (``distribution = "asterisk"``, and the calls the dialplan's fallback sends to it
  in engine mode): ``answered`` / ``abandoned_queue``, written by
  ``appqueue.tracker.QueueTracker`` (and by the queue_log reconciliation through the
  tracker's store): give the tracker
  ``CountingTicketStore(tickets, metrics, QUEUE_OUTCOMES)``.

A ticket whose outcome was counted once is not counted again (the tracker and the queue_log
reconciliation may both write the same call's outcome).
Each ``Metrics`` has its own registry, so tests and several apps never share series.
"""

from __future__ import annotations

import builtins
from collections import OrderedDict
from collections.abc import AsyncIterable, Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from acd.agent import AgentState, Transition
from acd.calls import CallTransition
from acd.dispatch import Event
from tickets.model import IvrStep, Outcome, Status, Ticket
from tickets.store import TicketStore
from tongdai.health import Health
from web.control import AcdControl

__all__ = [
    "CONTENT_TYPE_LATEST",
    "IVR_OUTCOMES",
    "QUEUE_OUTCOMES",
    "CountingTicketStore",
    "Metrics",
]

WAIT_BUCKETS = (5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0)
HANDLE_BUCKETS = (30.0, 60.0, 120.0, 180.0, 300.0, 450.0, 600.0, 900.0, 1800.0, 3600.0)
#: the outcomes a ticket can have: the only values of the ``outcome`` label
OUTCOMES = frozenset(o.value for o in Outcome)
#: how many counted tickets ``Metrics`` remembers (a day of a busy hotline, and more)
MAX_REMEMBERED = 100_000
AGI_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _LiveCollector(Collector):
    def __init__(self) -> None:
        self.control: AcdControl | None = None
        self.calls_in_ivr: Callable[[], int] | None = None
        self.sse_clients: Callable[[], int] | None = None
        self.health: Health | None = None

    def collect(self) -> Iterator[Metric]:
        ivr = GaugeMetricFamily("tongdai_calls_in_ivr", "Calls in the voice menu now.")
        ivr.add_metric([], float(self.calls_in_ivr() if self.calls_in_ivr else 0))
        yield ivr
        sse = GaugeMetricFamily("tongdai_sse_clients", "Live-update (SSE) clients connected.")
        sse.add_metric([], float(self.sse_clients() if self.sse_clients else 0))
        yield sse
        waiting = GaugeMetricFamily(
            "tongdai_queue_waiting", "Callers waiting in line now.", labels=["queue"]
        )
        agents = GaugeMetricFamily("tongdai_agents", "Agents per state now.", labels=["state"])
        if self.control is not None:
            state = self.control.state()
            for q in state.queues:
                waiting.add_metric([q.name], float(q.waiting))
            counts = dict.fromkeys((s.value for s in AgentState), 0)
            for a in state.agents:
                counts[a.state] = counts.get(a.state, 0) + 1
            for name, n in counts.items():
                agents.add_metric([name], float(n))
        yield waiting
        yield agents
        deps = GaugeMetricFamily(
            "tongdai_dependency_up",
            "1 when a dependency is reachable, 0 when down.",
            labels=["name"],
        )
        if self.health is not None:
            for name, dep in self.health.snapshot().items():
                deps.add_metric([name], 1.0 if dep.up else 0.0)
        yield deps


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.calls = Counter("tongdai_calls", "Calls ended, by outcome.", ["outcome"], registry=r)
        self.queue_wait = Histogram(
            "tongdai_queue_wait_seconds",
            "Wait in line of answered calls.",
            ["queue"],
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.handle = Histogram(
            "tongdai_handle_seconds",
            "Handle time (talk + after-call work) of calls handled by agents.",
            ["queue"],
            buckets=HANDLE_BUCKETS,
            registry=r,
        )
        self.fastagi = Histogram(
            "tongdai_fastagi_command_seconds",
            "Round trip of one FastAGI command.",
            ["command"],
            buckets=AGI_BUCKETS,
            registry=r,
        )
        self.ami_reconnects = Counter(
            "tongdai_ami_reconnects", "AMI sessions re-established after a drop.", registry=r
        )
        self.acd_leader = Gauge(
            "tongdai_acd_leader",
            "1 when this engine distributes calls (ACD leader), 0 on a standby (failover).",
            registry=r,
        )
        self.acd_epoch = Gauge(
            "tongdai_acd_epoch", "The ACD leader lease's term this engine last saw.", registry=r
        )
        self._live = _LiveCollector()
        r.register(self._live)
        self._wrapup: dict[str, float] = {}
        #: tickets whose outcome is counted (most recent last), so none is counted twice
        self._counted: OrderedDict[str, None] = OrderedDict()

    def bind(
        self,
        control: AcdControl,
        *,
        calls_in_ivr: Callable[[], int] | None = None,
        sse_clients: Callable[[], int] | None = None,
    ) -> None:
        """Where the gauges read from (called by ``web.app.create_app``)."""
        self._live.control = control
        self._live.sse_clients = sse_clients
        if calls_in_ivr is not None:
            self._live.calls_in_ivr = calls_in_ivr
        self._wrapup = {q.name: q.wrapup_s for q in control.state().queues}

    def watch_health(self, health: Health) -> None:
        """``tongdai_dependency_up`` reads ``health`` at every scrape."""
        self._live.health = health

    def acd_role(self, leading: bool, epoch: int) -> None:
        """Failover: this engine became the ACD leader, or stands by (``hotline.failover``)."""
        self.acd_leader.set(1 if leading else 0)
        self.acd_epoch.set(epoch)

    def set_calls_in_ivr(self, source: Callable[[], int]) -> None:
        self._live.calls_in_ivr = source

    # -- feeds -------------------------------------------------------------------------------

    def observe(self, event: Event) -> None:
        """An ACD transition (``acd.router.Router.listeners``); calls only: conversations do
        not change the voice metrics."""
        if isinstance(event, Transition) or not isinstance(event, CallTransition):
            return
        if event.event == "connect":
            self.queue_wait.labels(event.queue).observe(event.wait_s)
        elif event.event == "complete":
            talk = event.talk_s or 0.0
            self.handle.labels(event.queue).observe(talk + self._wrapup.get(event.queue, 0.0))
        if event.outcome is not None:
            self.calls.labels(event.outcome.value).inc()

    def count_outcome(self, outcome: str, ticket: str | None = None) -> bool:
        """A call ended with ``outcome`` (a ``tickets.model.Outcome`` value; others are ignored,
        which bounds the labels). With ``ticket``, a ticket already counted is not counted
        again. True if counted."""
        if outcome not in OUTCOMES:
            return False
        if ticket is not None:
            if ticket in self._counted:
                return False
            self._counted[ticket] = None
            while len(self._counted) > MAX_REMEMBERED:
                self._counted.popitem(last=False)
        self.calls.labels(outcome).inc()
        return True

    def call_ended(self, outcome: str) -> None:
        """A call the IVR finished (self_service, message_left, abandoned_ivr, ...)."""
        self.count_outcome(outcome)

    def fastagi_command(self, command: str, seconds: float) -> None:
        """One AGI command (``STREAM``, ``GET``...: the first word only, to bound the labels)."""
        self.fastagi.labels(command.split(" ", 1)[0].upper()[:20]).observe(seconds)

    async def watch_ami(self, events: AsyncIterable[Any]) -> None:
        """Count reconnections from an AMI subscription to ``__connected__``."""
        first = True
        async for ev in events:
            if getattr(ev, "name", None) == "__connected__":
                if not first:
                    self.ami_reconnects.inc()
                first = False

    def render(self) -> bytes:
        return generate_latest(self.registry)


#: outcomes the IVR decides (the ACD's own come from its events: no call is counted twice)
IVR_OUTCOMES = frozenset(
    {"self_service", "abandoned_ivr", "message_left", "closed_hours", "rejected_busy", "error"}
)
#: outcomes app_queue decides, as ``appqueue.tracker`` (and ``appqueue.reconcile``) write them
QUEUE_OUTCOMES = frozenset({"answered", "abandoned_queue"})


class CountingTicketStore:
    """A ``TicketStore`` that counts ``outcomes`` in ``tongdai_calls_total`` as they are written
    (each ticket once); everything else passes through unchanged. The IVR's context gets one
    with ``IVR_OUTCOMES`` (the default), app_queue's tracker one with ``QUEUE_OUTCOMES``."""

    def __init__(
        self, inner: TicketStore, metrics: Metrics, outcomes: frozenset[str] = IVR_OUTCOMES
    ) -> None:
        self.inner = inner
        self.metrics = metrics
        self.outcomes = outcomes

    async def open(
        self, *, channel: str, caller: str | None, uniqueid: str | None, started_at: datetime
    ) -> Ticket:
        return await self.inner.open(
            channel=channel, caller=caller, uniqueid=uniqueid, started_at=started_at
        )

    async def update(self, code: str, **changes: Any) -> None:
        await self.inner.update(code, **changes)
        outcome = changes.get("outcome")
        if outcome is not None and str(outcome) in self.outcomes:
            self.metrics.count_outcome(str(outcome), ticket=code)

    async def append_steps(self, code: str, steps: Sequence[IvrStep]) -> None:
        await self.inner.append_steps(code, steps)

    async def get(self, code: str) -> Ticket | None:
        return await self.inner.get(code)

    async def find_by_uniqueid(self, uniqueid: str) -> Ticket | None:
        return await self.inner.find_by_uniqueid(uniqueid)

    async def list(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> builtins.list[Ticket]:
        return await self.inner.list(since=since, until=until, limit=limit)

    async def set_status(
        self, code: str, status: Status, *, by: str, note: str | None = None
    ) -> Ticket:
        return await self.inner.set_status(code, status, by=by, note=note)

    async def close(self) -> None:
        await self.inner.close()
