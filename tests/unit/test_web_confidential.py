"""Complaints about officials are confidential: their caller, number and recording are for
supervisors and admins only (API, pages, lists, recordings), every view of them is in the
audit log, which only admins read; lifting confidentiality is for supervisors."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from bench.web_rig import WebRig, login, web_rig
from tickets.audit import SqlAuditLog

NUMBER = "0905999111"


@dataclass
class World:
    rig: WebRig
    messages: Path
    code: str

    def api(self, who: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.rig.app)
        headers = {"Authorization": f"Bearer {self.rig.tokens[who]}"}
        return httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers)

    @contextlib.asynccontextmanager
    async def browser(self, who: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
        transport = httpx.ASGITransport(app=self.rig.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            yield c, await login(c, who, self.rig.accounts[who].password)

    async def audit(self) -> list[tuple[str, str, str | None]]:
        found = await SqlAuditLog(self.rig.deps.engine).entries()
        return [(e.actor, e.action.value, e.ticket_code) for e in reversed(found)]


@pytest.fixture
async def world(db_url: str, tmp_path: Path) -> AsyncIterator[World]:
    messages = tmp_path / "messages"
    messages.mkdir()
    async with web_rig(db_url, messages_dir=messages, lifespan=False) as rig:
        t = await rig.deps.tickets.open(
            channel="voice", caller=NUMBER, uniqueid="u1", started_at=datetime.now(UTC)
        )
        wav = messages / f"{t.code}.wav"
        wav.write_bytes(b"RIFF....WAVEfmt ")
        await rig.deps.tickets.update(
            t.code, recording=str(wav), outcome="message_left", category="phan_anh"
        )
        yield World(rig, messages, t.code)


async def _make_confidential(w: World, who: str = "tdv101") -> None:
    async with w.api(who) as c:
        r = await c.patch(f"/api/v1/tickets/{w.code}", json={"complaint_type": "can_bo"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["complaint_type"], body["confidential"]) == ("can_bo", True)


async def test_an_agent_classifies_a_complaint_about_officials_and_then_sees_no_identity(
    world: World,
) -> None:
    async with world.api("tdv101") as c:
        before = (await c.get(f"/api/v1/tickets/{world.code}")).json()
        assert before["caller"] == NUMBER and before["confidential"] is False
    await _make_confidential(world)
    for who in ("tdv101", "tdv102", "quanly"):
        async with world.api(who) as c:
            t = (await c.get(f"/api/v1/tickets/{world.code}")).json()
            assert (t["caller"], t["recording_url"], t["identity_hidden"]) == (None, None, True)
            listed = (await c.get("/api/v1/tickets")).json()["tickets"]
            assert [(x["caller"], x["confidential"]) for x in listed] == [(None, True)]
            # a search by the number does not reveal that it complained about an official
            by_number = (await c.get("/api/v1/tickets", params={"caller": NUMBER})).json()
            assert by_number["tickets"] == []
    assert NUMBER not in str(await world.audit())
    assert await world.audit() == [("tdv101", "set_confidential", world.code)]


async def test_supervisors_and_admins_see_the_caller_and_each_view_is_audited(
    world: World,
) -> None:
    await _make_confidential(world)
    for who in ("giamsat", "quantri", "giamsat"):
        async with world.api(who) as c:
            t = (await c.get(f"/api/v1/tickets/{world.code}")).json()
            assert t["caller"] == NUMBER and t["recording_url"] == f"/recordings/{world.code}.wav"
            assert t["identity_hidden"] is False
            # lists withhold it from everyone: only the audited view shows it
            listed = (await c.get("/api/v1/tickets")).json()["tickets"]
            assert listed[0]["caller"] is None
    views = [(a, act) for a, act, code in await world.audit() if code == world.code]
    assert views == [
        ("tdv101", "set_confidential"),
        ("giamsat", "view_ticket"),
        ("quantri", "view_ticket"),
        ("giamsat", "view_ticket"),
    ]


async def test_the_ticket_page_hides_the_number_from_agents_and_audits_supervisors(
    world: World,
) -> None:
    await _make_confidential(world)
    async with world.browser("tdv101") as (c, _):
        html = (await c.get(f"/tickets/{world.code}")).text
        assert NUMBER not in html and "Bảo mật (phản ánh về cán bộ)" in html
        assert "<audio" not in html
    async with world.browser("giamsat") as (c, _):
        html = (await c.get(f"/tickets/{world.code}")).text
        assert NUMBER in html and "<audio" in html
    assert ("giamsat", "view_ticket", world.code) in await world.audit()
    assert not [x for x in await world.audit() if x[0] == "tdv101" and x[1] == "view_ticket"]


async def test_the_recording_of_a_confidential_complaint_is_for_supervisors_only(
    world: World,
) -> None:
    async with world.browser("tdv102") as (c, _):  # before: any logged-in reader, audited
        assert (await c.get(f"/recordings/{world.code}.wav")).status_code == 200
    await _make_confidential(world)
    async with world.browser("tdv102") as (c, _):
        r = await c.get(f"/recordings/{world.code}.wav")
        assert r.status_code == 404 and b"RIFF" not in r.content
    async with world.browser("giamsat") as (c, _):
        r = await c.get(f"/recordings/{world.code}.wav")
        assert r.status_code == 200 and r.content.startswith(b"RIFF")
    plays = [(a, code) for a, act, code in await world.audit() if act == "play_recording"]
    assert plays == [("tdv102", world.code), ("giamsat", world.code)]


async def test_only_supervisors_lift_confidentiality_and_that_is_audited(world: World) -> None:
    await _make_confidential(world)
    async with world.api("tdv101") as c:
        r = await c.patch(f"/api/v1/tickets/{world.code}", json={"complaint_type": "thu_tuc"})
        assert r.status_code == 403
        r = await c.patch(f"/api/v1/tickets/{world.code}", json={"complaint_type": "x"})
        assert r.status_code == 422
    async with world.api("giamsat") as c:
        r = await c.patch(f"/api/v1/tickets/{world.code}", json={"complaint_type": "kien_nghi"})
        assert r.status_code == 200 and r.json()["confidential"] is False
    async with world.api("tdv101") as c:
        assert (await c.get(f"/api/v1/tickets/{world.code}")).json()["caller"] == NUMBER
    acts = [(a, act) for a, act, _ in await world.audit() if act == "set_confidential"]
    assert acts == [("tdv101", "set_confidential"), ("giamsat", "set_confidential")]


async def test_a_sub_type_makes_the_ticket_a_complaint_with_a_due_date(world: World) -> None:
    t = await world.rig.deps.tickets.open(
        channel="email", caller="a@b.vn", uniqueid=None, started_at=datetime.now(UTC)
    )
    async with world.api("tdv101") as c:
        r = await c.patch(f"/api/v1/tickets/{t.code}", json={"complaint_type": "kien_nghi"})
        body = r.json()
        assert (body["category"], body["complaint_type"]) == ("phan_anh", "kien_nghi")
        assert body["due_at"] is not None and body["confidential"] is False


async def test_only_admins_read_the_audit_log_with_filters(world: World) -> None:
    await _make_confidential(world)
    async with world.api("giamsat") as c:
        await c.get(f"/api/v1/tickets/{world.code}")
        assert (await c.get("/api/v1/audit")).status_code == 403
    for who in ("tdv101", "quanly"):
        async with world.api(who) as c:
            assert (await c.get("/api/v1/audit")).status_code == 403
    async with world.api("quantri") as c:
        r = await c.get("/api/v1/audit", params={"ticket": world.code, "actor": "giamsat"})
        assert r.status_code == 200
        (entry,) = r.json()["entries"]
        assert (entry["actor"], entry["role"], entry["action"], entry["ticket"]) == (
            "giamsat", "supervisor", "view_ticket", world.code,
        )  # fmt: skip
        everything = (await c.get("/api/v1/audit")).json()["entries"]
        assert [e["action"] for e in everything] == ["view_ticket", "set_confidential"]
        assert (await c.get("/api/v1/audit", params={"since": "nope"})).status_code == 422
        assert (await c.get("/api/v1/audit", params={"limit": "0"})).status_code == 422
