"""A message conversation that is a complaint about officials: the agent holding it reads the
messages but not who wrote them (contact, identities, other tickets, reach details); lists
never show who; supervisors see everything, and each of their views is audited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from bench.chat_rig import ChatRig, chat_rig
from conversations.model import Identity, IdentityKind, InboundMessage
from tickets.audit import SqlAuditLog
from tickets.model import Channel

VISITOR = "visitor-0000042"


@pytest.fixture
async def rig(db_url: str, tmp_path: Path) -> AsyncIterator[ChatRig]:
    async with chat_rig(db_url, tmp_path) as r:
        yield r


def api(rig: ChatRig, who: str) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {rig.web.tokens[who]}"}
    transport = httpx.ASGITransport(app=rig.app)
    return httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers)


async def test_a_confidential_conversation_hides_the_citizen_from_agents(rig: ChatRig) -> None:
    got = await rig.inbox.receive(
        InboundMessage(
            channel=Channel.WEBCHAT, external_id="c1",
            sender=Identity(IdentityKind.WEBCHAT, VISITOR), received_at=datetime.now(UTC),
            text="Gặp tổng đài viên",
        )
    )  # fmt: skip
    code = got.ticket_code
    assert code is not None and rig.routing.assigned_to(code) == "agent101"
    async with api(rig, "tdv101") as c:
        before = (await c.get(f"/api/conversations/{code}/messages")).json()
        assert before["contact"] is not None and VISITOR in str(before["contact"])
        r = await c.patch(f"/api/v1/tickets/{code}", json={"complaint_type": "can_bo"})
        assert r.status_code == 200, r.text
        after = (await c.get(f"/api/conversations/{code}/messages")).json()
        assert after["contact"] is None and after["tickets"] == []
        assert VISITOR not in str(after)
        assert after["messages"][0]["text"] == "Gặp tổng đài viên"  # still readable
        listed = (await c.get("/api/conversations")).json()["mine"]
        assert [(x["code"], x["caller"], x["contact_id"]) for x in listed] == [(code, None, None)]
        page = (await c.get(f"/console/conversations/{code}")).text
        assert VISITOR not in page
    async with api(rig, "giamsat") as c:
        seen = (await c.get(f"/api/conversations/{code}/messages")).json()
        assert VISITOR in str(seen["contact"]) and seen["ticket"]["contact_id"] is not None
    entries = await SqlAuditLog(rig.web.deps.engine).entries(ticket_code=code)
    assert [(e.actor, e.action.value, e.detail) for e in reversed(entries)] == [
        ("tdv101", "set_confidential", "on"),
        ("giamsat", "view_ticket", "conversation"),
    ]
