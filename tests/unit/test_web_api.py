"""The REST API's behaviour against the engine's real ACD on a fake AMI: what a supervisor and an
agent see and do, the ticket workflow, and 4xx JSON (never a 500) on bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from bench.web_rig import SimAcd, WebRig, web_rig
from dossiers.model import Dossier, DossierStatus
from dossiers.sql import upsert_dossiers
from hotline.metrics import Metrics
from tickets.model import Channel, IvrStep, Outcome


@dataclass
class World:
    sim: SimAcd
    rig: WebRig

    def api(self, who: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.rig.app)
        headers = {"Authorization": f"Bearer {self.rig.tokens[who]}"}
        return httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers)


@pytest.fixture
async def world(db_url: str) -> AsyncIterator[World]:
    sim = SimAcd()
    await sim.start(login=["agent101", "agent102"])
    async with web_rig(db_url, sim.control, metrics=Metrics()) as rig:
        sim.use_tickets(rig.deps.tickets)  # the ACD writes queue, agent, answer to tickets
        sim.listen(rig.deps.hub.on_acd_event)
        try:
            yield World(sim, rig)
        finally:
            await sim.stop()


async def _ticket(w: World, caller: str = "0905111222", **changes: object) -> str:
    t = await w.rig.deps.tickets.open(
        channel="voice", caller=caller, uniqueid=None, started_at=datetime.now(UTC)
    )
    if changes:
        await w.rig.deps.tickets.update(t.code, **changes)
    return t.code


async def test_given_a_caller_in_line_when_an_agent_answers_then_calls_and_agents_show_it(
    world: World,
) -> None:
    code = await _ticket(world)
    world.sim.arrive("c1", "thu_tuc", "0905111222", code)
    async with world.api("giamsat") as c:
        calls = (await c.get("/api/v1/calls")).json()["calls"]
        assert [(x["id"], x["caller"], x["queue"]) for x in calls] == [
            ("c1", "0905111222", "thu_tuc")
        ]
        await world.sim.answer("c1")
        await _until(lambda: world.sim.control.state().agent("agent101").call_id == "c1")  # type: ignore[union-attr]
        agents = {a["id"]: a for a in (await c.get("/api/v1/agents")).json()["agents"]}
        assert agents["agent101"]["state"] == "on_call"
        assert agents["agent101"]["caller"] == "0905111222"
        assert agents["agent101"]["ticket"] == code
        queues = {q["name"]: q for q in (await c.get("/api/v1/queues")).json()["queues"]}
        assert queues["thu_tuc"]["waiting"] == 0


async def test_given_an_agent_when_it_pauses_itself_then_the_state_and_reason_change(
    world: World,
) -> None:
    async with world.api("tdv101") as c:
        r = await c.post("/api/v1/agents/agent101/state", json={"op": "pause", "reason": "meal"})
        assert r.status_code == 200
        assert (r.json()["state"], r.json()["pause_reason"]) == ("paused", "meal")
        r = await c.post("/api/v1/agents/agent101/state", json={"op": "login"})
        assert r.status_code == 409 and r.json()["error"]["id"] == "illegal_transition"
        r = await c.post("/api/v1/agents/agent101/state", json={"op": "pause", "reason": "nap"})
        assert r.status_code == 422
        r = await c.post("/api/v1/agents/agent101/state", json={"op": "dance"})
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "op"
    async with world.api("giamsat") as c:
        r = await c.post("/api/v1/agents/agent999/state", json={"op": "pause"})
        assert r.status_code == 404 and r.json()["error"]["id"] == "unknown_agent"
        r = await c.post("/api/v1/agents/agent101/state", json={"op": "unpause"})
        assert r.json()["state"] == "available"


async def test_given_open_conversations_when_an_agent_pauses_handing_to_a_colleague_then_moved(
    world: World,
) -> None:
    codes = []
    for i in range(2):
        t = await world.rig.deps.tickets.open(
            channel="zalo", caller=f"u-{i}", uniqueid=None, started_at=datetime.now(UTC)
        )
        assert world.sim.messaging.enqueue(t.code, "chung", Channel.ZALO, agent="agent101")
        codes.append(t.code)
    async with world.api("tdv101") as c:
        body = {"op": "pause", "reason": "meal", "hand_to": "agent999"}
        r = await c.post("/api/v1/agents/agent101/state", json=body)
        assert r.status_code == 404 and r.json()["error"]["id"] == "unknown_agent"
        r = await c.post("/api/v1/agents/agent101/state", json=body | {"hand_to": "agent101"})
        assert r.status_code == 409 and r.json()["error"]["id"] == "acd_refused"
        r = await c.post("/api/v1/agents/agent101/state", json=body | {"hand_to": "agent102"})
        assert r.status_code == 200 and r.json()["conversations_open"] == 0
    assert world.sim.router.open_conversations("agent102") == codes
    me = world.sim.control.state().agent("agent102")
    assert me is not None and me.conversations == tuple(codes)


class _Conversations:
    """The conversation deps as far as the ticket actions use them (the ACD's routing)."""

    def __init__(self, routing: object) -> None:
        self.routing = routing


async def test_given_a_conversation_ticket_resolved_then_the_acd_frees_the_agents_capacity(
    world: World,
) -> None:
    world.rig.deps.conversations = _Conversations(world.sim.messaging)  # type: ignore[assignment]
    t = await world.rig.deps.tickets.open(
        channel="webchat", caller="v-1", uniqueid=None, started_at=datetime.now(UTC)
    )
    assert world.sim.messaging.enqueue(t.code, "chung", Channel.WEBCHAT, agent="agent101")
    async with world.api("giamsat") as c:
        r = await c.patch(f"/api/v1/tickets/{t.code}", json={"action": "resolve"})
        assert r.status_code == 200 and r.json()["status"] == "resolved"
    assert world.sim.messaging.assigned_to(t.code) is None
    assert world.sim.router.open_conversations("agent101") == []


async def test_given_an_agent_on_a_call_when_a_supervisor_whispers_then_chanspy_rings_them(
    world: World,
) -> None:
    world.sim.arrive("c1", "thu_tuc", "0905111222")
    await world.sim.answer("c1")
    await _until(lambda: world.sim.control.state().agent("agent101").state == "on_call")  # type: ignore[union-attr]
    async with world.api("giamsat") as c:
        r = await c.post("/api/v1/agents/agent101/spy", json={"mode": "whisper"})
        assert r.status_code == 202, r.text
        spy = world.sim.ami.originates()[-1]
        assert spy["Channel"] == "PJSIP/sup201"
        assert (spy["Application"], spy["Data"]) == ("ChanSpy", "PJSIP/agent101-,qwE")
        world.sim.ami.fail = True
        r = await c.post("/api/v1/agents/agent101/spy", json={"mode": "barge"})
        assert r.status_code == 503 and r.json()["error"]["id"] == "telephony_unavailable"


async def test_given_an_abandoned_call_when_the_agent_calls_back_then_its_phone_rings_first(
    world: World,
) -> None:
    code = await _ticket(world, outcome=Outcome.ABANDONED_QUEUE, queue="thu_tuc")
    async with world.api("tdv101") as c:
        todo = (await c.get("/api/v1/callbacks")).json()["tickets"]
        assert [t["code"] for t in todo] == [code]
        r = await c.post("/api/v1/agents/agent101/call", json={"ticket": code})
        assert r.status_code == 202, r.text
        o = world.sim.ami.originates()[-1]
        assert (o["Channel"], o["Context"], o["Exten"]) == (
            "PJSIP/agent101",
            "tongdai-callout",
            "0905111222",
        )
        t = (await c.get(f"/api/v1/tickets/{code}")).json()
        assert (t["status"], t["agent"]) == ("in_progress", "agent101")
        assert t["history"][-1]["by"] == "tdv101"
        assert (await c.get("/api/v1/callbacks")).json()["tickets"] == []
        r = await c.post("/api/v1/agents/agent101/call", json={"number": "09; DROP"})
        assert r.status_code == 422


async def test_given_tickets_when_searching_then_filters_apply_and_overdue_complaints_lead(
    world: World,
) -> None:
    now = datetime.now(UTC)
    late = await _ticket(world, "0901", category="phan_anh", due_at=now - timedelta(days=1))
    soon = await _ticket(world, "0902", category="phan_anh", due_at=now + timedelta(days=3))
    other = await _ticket(
        world, "0903", category="thu_tuc", outcome=Outcome.ANSWERED, agent="agent102"
    )
    async with world.api("quanly") as c:
        found = (await c.get("/api/v1/tickets")).json()
        assert [t["code"] for t in found["tickets"]] == [late, soon, other]
        assert found["tickets"][0]["overdue"] is True and found["tickets"][1]["overdue"] is False
        for query, expected in (
            ("category=thu_tuc", [other]),
            ("outcome=answered", [other]),
            ("agent=agent102", [other]),
            ("caller=0902", [soon]),
            ("caller=02", [soon]),
            ("caller=%25", []),
            ("status=resolved", []),
            (f"since={date.today().isoformat()}&limit=1", [late]),
            ("until=2020-01-01", []),
        ):
            r = await c.get(f"/api/v1/tickets?{query}")
            assert [t["code"] for t in r.json()["tickets"]] == expected, query


async def test_given_a_ticket_when_patched_then_the_workflow_and_history_are_kept(
    world: World,
) -> None:
    code = await _ticket(world)
    async with world.api("tdv101") as c:
        r = await c.patch(
            f"/api/v1/tickets/{code}", json={"category": "phan_anh", "notes": "Đường hỏng"}
        )
        t = r.json()
        assert r.status_code == 200 and t["agent"] == "agent101"  # acting on it took it
        due = datetime.fromisoformat(t["due_at"]) - datetime.fromisoformat(t["started_at"])
        assert due == timedelta(days=10)
        r = await c.patch(
            f"/api/v1/tickets/{code}", json={"action": "escalate", "note": "cần sở GTVT"}
        )
        t = r.json()
        assert (t["status"], t["agent"]) == ("in_progress", None)
        assert "Chuyển cấp trên. cần sở GTVT" in t["notes"] and "Đường hỏng" in t["notes"]
    async with world.api("giamsat") as c:
        r = await c.patch(f"/api/v1/tickets/{code}", json={"action": "assign", "agent": "agent999"})
        assert r.status_code == 422
        r = await c.patch(f"/api/v1/tickets/{code}", json={"action": "resolve", "note": "đã sửa"})
        assert r.json()["status"] == "resolved"
        r = await c.patch(f"/api/v1/tickets/{code}", json={"action": "close"})
        r = await c.patch(f"/api/v1/tickets/{code}", json={"action": "reopen"})
        assert r.status_code == 409 and r.json()["error"]["details"] == {
            "from": "closed",
            "to": "in_progress",
        }
        history = (await c.get(f"/api/v1/tickets/{code}")).json()["history"]
        assert [(h["to"], h["by"]) for h in history] == [
            ("new", "system"),
            ("in_progress", "tdv101"),
            ("resolved", "giamsat"),
            ("closed", "giamsat"),
        ]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error_id"),
    [
        ("PATCH", "/api/v1/tickets/{T}", b"{not json", 400, "invalid_json"),
        ("PATCH", "/api/v1/tickets/{T}", b"[1, 2]", 422, "invalid_input"),
        ("PATCH", "/api/v1/tickets/{T}", b'{"color": "red"}', 422, "invalid_input"),
        ("PATCH", "/api/v1/tickets/{T}", b'{"notes": "a\\u0000b"}', 422, "invalid_input"),
        ("PATCH", "/api/v1/tickets/{T}", b'{"notes": "\\ud800"}', 422, "invalid_input"),
        ("PATCH", "/api/v1/tickets/{T}", b'{"notes": 5}', 422, "invalid_input"),
        ("PATCH", "/api/v1/tickets/{T}", b'{"status": "done"}', 422, "invalid_input"),
        ("PATCH", "/api/v1/tickets/1022-nope", b'{"notes": "x"}', 404, "not_found"),
        ("PATCH", "/api/v1/tickets/{T}", b"[" * 5_000, 400, "invalid_json"),
        ("GET", "/api/v1/tickets?limit=0", None, 422, "invalid_input"),
        ("GET", "/api/v1/tickets?since=yesterday", None, 422, "invalid_input"),
        ("GET", "/api/v1/tickets?since=2026-01-01T00:00", None, 422, "invalid_input"),
        ("GET", "/api/v1/tickets?caller=%00", None, 422, "invalid_input"),
        ("GET", "/api/v1/tickets/%00", None, 422, "invalid_input"),
        ("GET", "/api/v1/dossiers/abc", None, 422, "invalid_input"),
        ("GET", "/api/v1/nothing", None, 404, "not_found"),
        ("DELETE", "/api/v1/tickets", None, 405, "method_not_allowed"),
        (
            "PUT",
            "/api/v1/announcement",
            b'{"text": "x", "until": "2001-01-01"}',
            422,
            "invalid_input",
        ),
    ],
)
async def test_given_bad_input_then_a_4xx_json_error_and_never_a_500(
    world: World, method: str, path: str, body: bytes | None, status: int, error_id: str
) -> None:
    code = await _ticket(world)
    async with world.api("quantri") as c:
        r = await c.request(method, path.replace("{T}", code), content=body)
        assert r.status_code == status, r.text
        assert r.json()["error"]["id"] == error_id
        assert isinstance(r.json()["error"]["message"], str)


async def test_given_an_agent_with_a_call_when_asking_the_console_then_everything_is_there(
    world: World,
) -> None:
    engine = world.rig.deps.engine
    d = Dossier(
        "12345678",
        "Cấp phép xây dựng",
        "Sở Xây dựng",
        DossierStatus.IN_PROGRESS,
        date(2026, 1, 5),
        None,
    )
    await upsert_dossiers(engine, [d])
    earlier = await _ticket(world, category="thu_tuc")
    code = await _ticket(world, category="tra_cuu_ho_so", dossier_code="12345678")
    step = IvrStep(datetime.now(UTC), "tra_cuu", "2")
    await world.rig.deps.tickets.append_steps(code, [step])
    world.sim.arrive("c7", "thu_tuc", "0905111222", code)
    await world.sim.answer("c7")
    await _until(lambda: world.sim.control.state().agent("agent101").call_id == "c7")  # type: ignore[union-attr]
    async with world.api("tdv101") as c:
        call = (await c.get("/api/v1/console")).json()["call"]
        assert call["caller"] == "0905111222" and call["ticket"]["code"] == code
        assert call["ticket"]["ivr_path"][0]["node"] == "tra_cuu"
        assert call["dossier"]["agency"] == "Sở Xây dựng"
        assert [e["code"] for e in call["earlier"]] == [earlier]
        r = await c.get("/api/v1/dossiers/12345678")
        assert r.json()["status"] == "in_progress"


async def test_given_calls_when_scraping_metrics_then_the_series_follow_the_acd(
    world: World,
) -> None:
    world.sim.arrive("c1", "thu_tuc", "0905")
    await world.sim.answer("c1")
    world.sim.arrive("c2", "thu_tuc", "0906")
    await world.sim.answer("c2")
    await world.sim.hangup("c1")
    await _until(lambda: world.sim.router.call("c1") is None)
    async with world.api("quanly") as c:
        text = (await c.get("/metrics")).text
    assert 'tongdai_queue_wait_seconds_count{queue="thu_tuc"} 2.0' in text
    assert 'tongdai_calls_total{outcome="answered"} 1.0' in text
    assert 'tongdai_handle_seconds_count{queue="thu_tuc"} 1.0' in text
    assert 'tongdai_agents{state="on_call"} 1.0' in text
    assert 'tongdai_agents{state="logged_out"} 8.0' in text
    assert 'tongdai_queue_waiting{queue="thu_tuc"} 0.0' in text
    assert "tongdai_ami_reconnects_total 0.0" in text


async def _until(cond: object, timeout: float = 3.0) -> None:
    import asyncio

    async with asyncio.timeout(timeout):
        while not cond():  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def test_given_the_ivr_store_wrapped_when_outcomes_are_written_then_ivr_ones_count() -> None:
    from hotline.metrics import CountingTicketStore
    from tickets.memory import MemoryTicketStore

    metrics = Metrics()
    store = CountingTicketStore(MemoryTicketStore(), metrics)
    t = await store.open(channel="voice", caller="0905", uniqueid="u", started_at=datetime.now(UTC))
    await store.update(t.code, outcome=Outcome.SELF_SERVICE)
    await store.update(t.code, outcome="answered")  # the ACD's: counted from its events
    await store.update(t.code, notes="x")
    text = metrics.render().decode()
    assert 'tongdai_calls_total{outcome="self_service"} 1.0' in text
    assert 'outcome="answered"' not in text
    found = await store.get(t.code)
    assert found is not None and found.notes == "x"
