"""Past one Asterisk: Kamailio in front of two Asterisk nodes (``[lab] nodes = 2``).

The real stack: Debian's Kamailio on the instance's SIP port (dispatcher over the two nodes,
OPTIONS health checks, registrar), two Asterisk 22 from the same chroot on 127.0.0.11 and
127.0.0.12, one engine serving FastAGI for both and following both nodes' AMI, tickets in
PostgreSQL. Which node took a call is read from its ticket's uniqueid (node k's start with
``tongdai-nk-``, the node's systemname).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pg_admin import pg_admin

from lab import asterisk, engine, kamailio, lock, nodes
from lab.chroot import ensure_chroot
from lab.instance import LabInstance
from lab.sipp_run import (
    AgentPhones,
    HangUp,
    Key,
    SipTarget,
    Wait,
    build_caller_scenario,
    run_callers,
    sipp_available,
)
from pbx.ami import AmiClient
from pbx.ami_messages import AmiActionFailed
from tickets.model import Ticket
from tickets.sql import SqlTicketStore, open_store
from tongdai.settings import Settings, load_settings

pytestmark = pytest.mark.e2e

#: how long the stack waits for its lab instance while another process holds it
LOCK_WAIT_S = 900.0


@dataclass
class NodesStack:
    settings: Settings
    config: Path
    db_url: str
    target: SipTarget

    def node(self, k: int) -> Settings:
        return nodes.node_settings(self.settings, k)


@pytest.fixture(scope="module")
def two_nodes(
    tmp_path_factory: pytest.TempPathFactory, lab_settings: Settings
) -> Iterator[NodesStack]:
    """Kamailio + two Asterisk nodes + the engine on this process's lab instance."""
    if os.geteuid() != 0:
        pytest.fail("the end-to-end tests need root (chroot, bind mount)")
    if (why := sipp_available()) is not None:
        pytest.fail(f"{why}: run scripts/install.sh")
    if not Path(kamailio.KAMAILIO_BIN).exists():
        pytest.fail("kamailio is not installed: run scripts/install.sh")
    tmp = tmp_path_factory.mktemp("nodes")
    name = f"tongdai_e2e_{secrets.token_hex(4)}"
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    config = tmp / "tongdai.toml"
    config.write_text(
        f'[database]\nurl = "{url}"\nstate_dir = "{tmp}/state"\n'
        f'[lab]\nvar_dir = "{tmp}/var"\ninstance = {lab_settings.lab.instance}\nnodes = 2\n'
        f'[ami]\nsecret_file = "{tmp}/var/ami.secret"\n',
        encoding="utf-8",
    )
    settings = load_settings(config)
    command = f"pytest {__name__} (two-node stack, pid {os.getpid()})"
    with lock.hold(settings, command=command, timeout_s=LOCK_WAIT_S):
        ensure_chroot(settings.lab.chroot)
        engine.build_prompts(settings)
        pg_admin(f'CREATE DATABASE "{name}"')
        try:
            engine.seed_dossiers(settings)
            nodes.start(settings)
            engine.start_engine(settings, str(config))
            yield NodesStack(
                settings, config, url, SipTarget("127.0.0.1", settings.lab.sip_port, "1022")
            )
        finally:
            engine.stop_engine(settings)
            nodes.stop(settings)
            pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def tickets(two_nodes: NodesStack) -> AsyncIterator[SqlTicketStore]:
    store = await open_store(two_nodes.db_url)
    try:
        yield store
    finally:
        await store.close()


def node_of(ticket: Ticket) -> int:
    """The node that took the call, from the uniqueid's systemname prefix (``tongdai-n2-...``)."""
    uid = ticket.uniqueid or ""
    assert uid.startswith(("tongdai-n1-", "tongdai-n2-")), f"{ticket.code}: uniqueid {uid!r}"
    return int(uid[len("tongdai-n")])


async def tickets_of(
    store: SqlTicketStore, callers: list[str], *, ended: bool, timeout_s: float = 30
) -> list[Ticket]:
    """The tickets of ``callers`` once each has one (and, with ``ended``, once all ended)."""
    wanted = set(callers)
    found: list[Ticket] = []
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                found = [t for t in await store.list() if t.caller in wanted]
                if len(found) >= len(wanted) and (
                    not ended or all(t.ended_at is not None for t in found)
                ):
                    return found
                await asyncio.sleep(0.2)
    except TimeoutError:
        pytest.fail(
            f"tickets of {len(wanted)} callers: {[(t.code, t.uniqueid, t.ended_at) for t in found]}"
        )


async def wait_node_state(settings: Settings, uri: str, active: bool, timeout_s: float) -> float:
    """Seconds until Kamailio's dispatcher shows ``uri`` (in)active; fails after ``timeout_s``."""
    started = time.monotonic()
    states: list[kamailio.NodeState] = []
    while time.monotonic() - started < timeout_s:
        states = await asyncio.to_thread(kamailio.node_states, settings)
        if any(s.uri == uri and s.active == active for s in states):
            return time.monotonic() - started
        await asyncio.sleep(0.2)
    pytest.fail(f"{uri} never became {'active' if active else 'inactive'}: {states}")


async def test_calls_are_spread_over_both_nodes(
    two_nodes: NodesStack, tickets: SqlTicketStore
) -> None:
    """Both nodes answer Kamailio's OPTIONS; 8 calls alternate over them (round robin), every
    one walks the menu (key 1) and ends with a ticket."""
    for uri in kamailio.nodes_of(two_nodes.settings):
        await wait_node_state(two_nodes.settings, uri, active=True, timeout_s=10)
    result = await run_callers(
        build_caller_scenario([Wait(1500), Key("1"), Wait(2000), HangUp()]),
        target=two_nodes.target,
        calls=8,
        rate=4,
        caller_prefix="0901",
        timeout_s=120,
    )
    assert result.ok, result.describe()
    found = await tickets_of(tickets, result.callers, ended=True)
    per_node = [sum(1 for t in found if node_of(t) == k) for k in (1, 2)]
    # round robin (Kamailio's children share one counter, so an exact 4/4 is not promised)
    assert min(per_node) >= 3, per_node
    assert all(t.outcome is not None for t in found)
    # the menu ran on both nodes: the key reached the engine from each
    for k in (1, 2):
        assert any(s.key == "1" for t in found if node_of(t) == k for s in t.ivr_path)


async def test_an_agent_registered_once_is_reached_from_both_nodes(two_nodes: NodesStack) -> None:
    """agent101's phone registers once, with Kamailio; each node rings PJSIP/agent101 (its
    contact is Kamailio) and the phone answers both. An agent that never registered is not
    reached (404 from Kamailio: the Originate fails)."""
    settings = two_nodes.settings
    port = LabInstance.of(settings).agents_port
    with AgentPhones(port, answer_after_ms=200, talk_ms=1000) as phones:
        with pytest.raises(AmiActionFailed):
            await originate(two_nodes.node(1), "agent102")
        await asyncio.to_thread(kamailio.register, settings, "agent101", port)
        assert await asyncio.to_thread(kamailio.registered, settings, "agent101")
        for k in (1, 2):
            await originate(two_nodes.node(k), "agent101")
            counts = await phones.wait_answered(k, timeout_s=15)
        assert counts.answered_uris == ["sip:agent101", "sip:agent101"]
        assert phones.counts.answered == 2


async def originate(node: Settings, endpoint: str) -> None:
    """Ring ``PJSIP/<endpoint>`` from ``node`` (AMI Originate, synchronous: fails unless the
    phone answers)."""
    secret = asterisk.ami_secret(node)
    async with AmiClient(node.ami.host, node.ami.port, node.ami.username, secret) as ami:
        await ami.action(
            "Originate",
            Channel=f"PJSIP/{endpoint}",
            Application="Wait",
            Data="1",
            Timeout="10000",
            action_timeout=15,
        )


async def test_a_node_killed_mid_load(two_nodes: NodesStack, tickets: SqlTicketStore) -> None:
    """10 callers wait in the menu; node 1 is killed (SIGKILL) mid-call. Its calls' tickets
    end (the engine's FastAGI session dropped: abandoned in the IVR); node 2's calls go on and
    end normally; Kamailio marks node 1 inactive within seconds, and 6 new calls all go to node
    2 and succeed. Runs last in this module: node 1 stays dead."""
    settings = two_nodes.settings
    scenario = build_caller_scenario([Wait(14000), HangUp()])
    first = asyncio.create_task(
        run_callers(
            scenario,
            target=two_nodes.target,
            calls=10,
            rate=10,
            caller_prefix="0902",
            timeout_s=120,
        )
    )
    try:
        # every call is in the menu (a ticket each, none ended), then node 1 dies
        deadline = time.monotonic() + 30
        while True:
            live = [t for t in await tickets.list() if (t.caller or "").startswith("0902")]
            if len(live) == 10:
                break
            assert time.monotonic() < deadline, f"only {len(live)} of 10 calls reached the IVR"
            await asyncio.sleep(0.2)
        assert all(t.ended_at is None for t in live)
        pid = asterisk.running_pid(two_nodes.node(1))
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        # new calls at once, before the health check has noticed: none may be lost; meanwhile
        # the dispatcher must mark node 1 inactive within 10 s of the kill
        node1 = f"sip:127.0.0.11:{settings.lab.sip_port}"
        marked_s, second = await asyncio.gather(
            wait_node_state(settings, node1, active=False, timeout_s=10),
            run_callers(
                build_caller_scenario([Wait(1500), Key("1"), Wait(1500), HangUp()]),
                target=two_nodes.target,
                calls=6,
                rate=3,
                caller_prefix="0903",
                timeout_s=120,
            ),
        )
        first_result = await first
    finally:
        if not first.done():
            first.cancel()
    assert marked_s < 10
    assert second.ok, second.describe()
    later = await tickets_of(tickets, second.callers, ended=True)
    assert [node_of(t) for t in later] == [2] * 6
    earlier = await tickets_of(tickets, first_result.callers, ended=True)
    on_1 = [t for t in earlier if node_of(t) == 1]
    on_2 = [t for t in earlier if node_of(t) == 2]
    assert len(on_1) >= 3 and len(on_2) >= 3, [t.uniqueid for t in earlier]
    # node 1's calls ended when its FastAGI sessions dropped (long before their callers' 14 s
    # were up); their callers' BYE then found no node
    assert all(t.outcome is not None and t.ended_at is not None for t in on_1)
    # ... before their callers' planned 14 s were up: the kill ended them, not the callers
    assert all(
        t.ended_at is not None and (t.ended_at - t.started_at).total_seconds() < 14 for t in on_1
    ), [(t.started_at, t.ended_at) for t in on_1]
    # node 2's callers were not disturbed: they hung up as planned, each call successful
    assert first_result.successful == len(on_2), first_result.describe()
    assert first_result.failed == len(on_1), first_result.describe()
