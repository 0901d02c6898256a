"""A real SIP call asks for postal delivery: SIPp keys 2, a dossier code (SIP INFO) and, after
hearing its status, 3; the lab's Asterisk 22 and the engine (its own process, PostgreSQL)
leave a postal request on the call's ticket with the caller's number, and the ticket's path
shows it."""

from __future__ import annotations

import asyncio

import pytest
from conftest import Stack, call, ticket_of

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
