"""``tongdai lab simulate``: simulated citizens call 1022 while simulated agents answer.

Real SIP calls from SIPp (RFC 4733 keys, SIP INFO for dossier codes) against the lab's Asterisk;
a SIPp UAS answers as every agent's phone. Callers follow a mix of realistic paths; those who
reach an agent keep pressing a score (2-5, never the callback key 1) until Asterisk hangs up,
so the satisfaction survey after the agent hangs up hears one. The summary counts the tickets
the calls left, by outcome and by category, and the scores.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from lab import asterisk, kamailio, nodes
from lab.instance import LabInstance
from lab.sipp_run import (
    AgentPhones,
    ExpectHangup,
    HangUp,
    Key,
    Keys,
    SippResult,
    SipTarget,
    Speak,
    Step,
    Wait,
    build_caller_scenario,
    run_callers,
)
from tickets.model import Ticket
from tickets.sql import open_store
from tongdai.settings import Settings

GAP = 1500


@dataclass(frozen=True)
class Behaviour:
    name: str
    share: float
    steps: list[Step]


BEHAVIOURS = [
    Behaviour(
        "dossier look-up (found)",
        0.30,
        [Wait(GAP), Key("2"), Wait(2500), Keys("123456#"), Wait(9000), HangUp()],
    ),
    Behaviour(
        "dossier not found, then an agent",
        0.10,
        [
            Wait(GAP),
            Key("2"),
            Wait(2500),
            Keys("999999#"),
            Wait(3000),
            Key("0"),
            ExpectHangup(120_000, pressing="3"),
        ],
    ),
    Behaviour(
        "procedures: documents",
        0.15,
        [Wait(GAP), Key("1"), Wait(GAP), Key("2"), ExpectHangup(120_000, pressing="4")],
    ),
    Behaviour("investment", 0.10, [Wait(GAP), Key("4"), ExpectHangup(120_000, pressing="5")]),
    Behaviour("tourism", 0.05, [Wait(GAP), Key("5"), ExpectHangup(120_000, pressing="5")]),
    Behaviour("postal delivery", 0.05, [Wait(GAP), Key("6"), ExpectHangup(120_000, pressing="4")]),
    Behaviour("operator", 0.05, [Wait(GAP), Key("0"), ExpectHangup(120_000, pressing="2")]),
    Behaviour("hangs up in the menu", 0.10, [Wait(GAP), Key("1"), Wait(3000), HangUp()]),
    Behaviour(
        "leaves a complaint message",
        0.10,
        [
            Wait(GAP),
            Key("3"),
            Wait(GAP),
            Key("2"),
            Wait(7500),
            Speak(),
            Key("#"),
            ExpectHangup(90_000),
        ],
    ),
]


def split(calls: int) -> list[tuple[Behaviour, int]]:
    """How many of ``calls`` follow each behaviour (largest remainders; every call assigned)."""
    raw = [(b, calls * b.share) for b in BEHAVIOURS]
    counts = [(b, int(x)) for b, x in raw]
    left = calls - sum(n for _, n in counts)
    order = sorted(range(len(raw)), key=lambda i: raw[i][1] - int(raw[i][1]), reverse=True)
    for i in order[:left]:
        counts[i] = (counts[i][0], counts[i][1] + 1)
    return [(b, n) for b, n in counts if n > 0]


async def simulate(
    settings: Settings, *, calls: int, rate: float, agents_port: int | None = None
) -> tuple[list[tuple[str, SippResult]], list[Ticket]]:
    target = SipTarget("127.0.0.1", settings.lab.sip_port, "1022")
    if agents_port is None:
        agents_port = LabInstance.of(settings).agents_port
    started = datetime.now(UTC)
    plan = split(calls)
    results: list[tuple[str, SippResult]] = []
    with AgentPhones(port=agents_port, answer_after_ms=500, talk_ms=6000):
        if settings.lab.nodes > 1:  # the phones register with Kamailio (lab.nodes)
            for phone in phones_of(settings):
                await asyncio.to_thread(kamailio.register, settings, phone, agents_port)

        async def one(b: Behaviour, n: int) -> None:
            await asyncio.sleep(random.uniform(0, 2))
            r = await run_callers(
                build_caller_scenario(b.steps, name=b.name),
                target=target,
                calls=n,
                rate=max(1, round(rate * b.share)),
                timeout_s=600,
            )
            results.append((b.name, r))

        async with asyncio.TaskGroup() as tg:
            for b, n in plan:
                tg.create_task(one(b, n))
    store = await open_store(settings.database.resolved_url())
    try:
        callers = {c for _, r in results for c in r.callers}
        async with asyncio.timeout(60):
            while True:
                tickets = [t for t in await store.list(since=started) if t.caller in callers]
                if len(tickets) >= len(callers) and all(t.ended_at for t in tickets):
                    break
                await asyncio.sleep(0.5)
    except TimeoutError:
        pass  # report what is there; the summary shows what is missing
    finally:
        await store.close()
    return results, tickets


_PHONE_SECTION = re.compile(r"^\[([A-Za-z0-9_.-]+)\]\(agent-endpoint\)", re.MULTILINE)


def phones_of(settings: Settings) -> list[str]:
    """The agents' and supervisors' phones node 1 of a two-node lab rings (its deployed
    ``pjsip_agents.conf``): the names they register with Kamailio."""
    deployed = asterisk.LabPaths.of(nodes.node_settings(settings, 1)).conf_dir
    text = (deployed / "pjsip_agents.conf").read_text(encoding="utf-8")
    return _PHONE_SECTION.findall(text)


def summary(results: list[tuple[str, SippResult]], tickets: list[Ticket]) -> list[str]:
    lines = ["SIP results (SIPp):"]
    for name, r in sorted(results):
        lines.append(f"  {name:<36} {r.successful:>4} ok {r.failed:>4} failed")
    placed = sum(r.calls for _, r in results)
    lines.append(f"tickets: {len(tickets)} for {placed} calls placed")
    for label, counter in (
        ("by outcome", Counter(str(t.outcome) for t in tickets)),
        ("by category", Counter(str(t.category) for t in tickets)),
    ):
        lines.append(f"  {label}: " + ", ".join(f"{k} {v}" for k, v in counter.most_common()))
    scores = [t.satisfaction for t in tickets if t.satisfaction is not None]
    mean = f", mean {sum(scores) / len(scores):.2f}" if scores else ""
    lines.append(f"  satisfaction scores: {len(scores)}{mean}")
    return lines
