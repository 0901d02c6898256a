"""Key 3 after a dossier's status: "to have the result delivered by post" (dịch vụ bưu chính
công ích). What the telephone can do, and what it cannot:

An address cannot be keyed on a telephone keypad, and the dossier record (``dossiers``) holds
no delivery address. So the IVR does not register a delivery by itself: it records the
caller's **request** on the call's ticket (``postal.PostalState.REQUESTED``: dossier, ticket,
the caller's number) and

- when the caller's number is known, tells them the request is recorded and that an agent will
  call that number back to take the address, then says the ticket code (the request is on the
  console's postal list, "Chờ lấy địa chỉ", for the agent to complete);
- when the number is hidden (no one could call back), hands the call to an agent of the dossier
  queue now, who takes the address on the console form of the same ticket.

A dossier already registered (or requested) is told so; nothing new is recorded. Only dossiers
whose result is still to come or waiting to be collected are offered the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from dossiers.model import Dossier, DossierStatus
from postal.model import PostalError
from postal.store import PostalStore
from tongdai.errors import StoreError

KEY = "3"
#: said before the after-menu when the key is offered
OFFER_PROMPT = "buu_chinh_bam_3"
DELIVERABLE = (DossierStatus.RECEIVED, DossierStatus.IN_PROGRESS, DossierStatus.RESULT_READY)
#: a number an agent can call back (Asterisk's CALLERID(num): digits, maybe a leading +)
CALLBACK_RE = re.compile(r"^\+?[0-9]{3,15}$")
BY = "ivr"


class Result(StrEnum):
    REQUESTED = "requested"  # recorded; an agent calls back
    TO_AGENT = "to_agent"  # recorded; no number to call back: an agent takes it now
    ALREADY = "already"  # the dossier has an active registration
    FAILED = "failed"  # the store is down: an agent takes it now


#: what the caller hears for each result (the ticket code follows ``REQUESTED``)
PROMPTS = {
    Result.REQUESTED: ("buu_chinh_da_ghi_nhan",),
    Result.TO_AGENT: ("buu_chinh_chuyen_tdv",),
    Result.ALREADY: ("buu_chinh_da_dang_ky",),
    Result.FAILED: (),
}


@dataclass(frozen=True)
class Outcome:
    result: Result
    registration_id: int | None = None

    @property
    def to_agent(self) -> bool:
        return self.result in (Result.TO_AGENT, Result.FAILED)


def offered(store: PostalStore | None, dossier: Dossier | None) -> bool:
    return store is not None and dossier is not None and dossier.status in DELIVERABLE


def callback_number(caller: str | None) -> str | None:
    return caller if caller and CALLBACK_RE.match(caller) else None


async def request(
    store: PostalStore, *, ticket_code: str, dossier_code: str, caller: str | None, at: datetime
) -> Outcome:
    """Record the caller's request on their ticket (see the module's docstring)."""
    number = callback_number(caller)
    try:
        reg = await store.request(
            ticket_code=ticket_code, dossier_code=dossier_code, phone=number, by=BY, at=at
        )
    except PostalError as exc:
        already = exc.reason == "already_registered"
        return Outcome(Result.ALREADY if already else Result.FAILED)
    except (StoreError, KeyError):
        return Outcome(Result.FAILED)
    return Outcome(Result.REQUESTED if number else Result.TO_AGENT, reg.id)
