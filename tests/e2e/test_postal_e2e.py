"""A real SIP call asks for postal delivery: SIPp keys 2, a dossier code (SIP INFO) and, after
hearing its status, 3; the lab's Asterisk 22 and the engine (its own process, PostgreSQL)
leave a postal request on the call's ticket with the caller's number, and the ticket's path
shows it. Then, on the running engine's API, the request is listed, an agent completes it
with the address taken by phone, and it is on the day's list for the post office."""

from __future__ import annotations

import asyncio
import csv
import io

import httpx
import pytest
from conftest import Stack, call, ticket_of, tongdai

from lab.sipp_run import HangUp, Key, Keys, Wait
from postal.model import PostalState, Registration
from postal.sql import SqlPostalStore
from tickets.model import Outcome
from tickets.sql import SqlTicketStore

pytestmark = pytest.mark.e2e

GAP = 1500


async def _registrations(
    postal: SqlPostalStore, code: str, timeout_s: float = 20
) -> list[Registration]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        found = await postal.of_ticket(code)
        if found or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.2)


async def test_key_3_after_a_dossier_look_up_leaves_a_postal_request_on_the_ticket(
    stack: Stack, tickets: SqlTicketStore
) -> None:
    steps = [
        Wait(GAP), Key("2"), Wait(2500), Keys("123456#"), Wait(4000), Key("3"), Wait(9000),
        HangUp(),
    ]  # fmt: skip
    (caller,) = await call(stack, steps)
    t = await ticket_of(tickets, caller)
    assert (t.outcome, t.dossier_code, t.category) == (
        Outcome.SELF_SERVICE, "123456", "tra_cuu_ho_so",
    )  # fmt: skip
    (reg,) = await _registrations(SqlPostalStore(tickets.engine), t.code)
    assert (reg.state, reg.dossier_code, reg.phone, reg.created_by) == (
        PostalState.REQUESTED, "123456", caller, "ivr",
    )  # fmt: skip
    assert ("tra_cuu", "3") in [(s.node, s.key) for s in t.ivr_path]
    assert f"postal:requested:{reg.id}" in [s.detail for s in t.ivr_path]

    tongdai(stack, "users", "add", "giamsat", "--role", "supervisor", "--password-stdin",
            stdin="mật-khẩu-dài-1022\n")  # fmt: skip
    token = tongdai(stack, "users", "token", "giamsat").strip().splitlines()[-1]
    url = f"http://127.0.0.1:{stack.settings.web.port}"
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as web:
        listed = (await web.get("/api/v1/postal", params={"state": "requested"})).json()
        assert [r["ticket"] for r in listed["registrations"]] == [t.code]
        address = {"recipient": "Nguyễn Văn An", "phone": caller if len(caller) >= 10 else
                   "0905111222", "district": "hoi_an", "ward": "Phường Minh An",
                   "street": "45 Nguyễn Thái Học"}  # fmt: skip
        done = await web.post(f"/api/v1/postal/{reg.id}/complete", json=address)
        assert done.status_code == 200 and done.json()["state"] == "registered", done.text
        export = await web.get("/api/v1/postal/export", params={"format": "csv"})
        assert export.status_code == 200
        rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
        assert [(r[1], r[2], r[3]) for r in rows[1:]] == [("123456", t.code, "Nguyễn Văn An")]
