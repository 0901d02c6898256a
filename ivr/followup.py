"""Follow-up by ticket code (main-menu key 7, "tra cứu kết quả phản ánh, kiến nghị"): the pure part.

The caller keys the 14 digits of a code ``1022-YYYYMMDD-NNNNNN`` (the day and the sequence) and
``#``; ``code_of_keys`` turns them into the stored code. ``words`` is what the caller hears, as
word prompts: the caller whose number opened the ticket (or whose number is unknown) hears the
status, the agency handling it (``agency_prompt``: its name, when the ticket was forwarded)
and the dates (received, due, answered); anybody else hears the status only, and an
unknown code hears "not found" - never the name, number, category or content of a ticket.

``ivr.runner.CallFlow.followup_node`` does the I/O around these.
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum

from ivr import say
from tickets.codes import PREFIX
from tickets.model import Status, Ticket
from tongdai.clock import VN_TZ

#: what the caller keys: YYYYMMDD + the six-digit sequence (seven for the codes
#: ``tickets.spool`` gives while the database is away), optionally after the 1022 prefix
KEYED_RE = re.compile(r"^(?:1022)?([0-9]{8})([0-9]{6,7})$")
MAX_KEYED = 19

#: every prompt ``words`` can return besides the spoken numbers (``ivr.say.WORD_PROMPTS``)
PROMPTS: frozenset[str] = frozenset(
    {
        "phieu_ma",
        "phieu_khong_tim_thay",
        "ma_phieu_khong_hop_le",
        "ngay_tiep_nhan",
        "han_tra_loi",
        "ngay_tra_loi",
        "phieu_qua_han",
        "co_quan_xu_ly",
        *(f"phieu_trang_thai_{s.value}" for s in Status),
    }
)


class Disclosure(StrEnum):
    """How much the caller is told (also the IVR step's detail)."""

    FOUND = "found"  # the ticket's own caller, or a caller whose number is unknown
    OTHER_CALLER = "other_caller"  # status only
    NOT_FOUND = "not_found"


def code_of_keys(keys: str) -> str | None:
    """``20261128000123`` (or ``102220261128000123``) -> ``1022-20261128-000123``; None if
    the keys are not a code (wrong length, not digits, not a real day)."""
    m = KEYED_RE.match(keys)
    if m is None:
        return None
    day, seq = m.groups()
    try:
        date(int(day[:4]), int(day[4:6]), int(day[6:]))
    except ValueError:
        return None
    return f"{PREFIX}-{day}-{seq}"


def phone_key(number: str | None) -> str | None:
    """A phone number reduced for comparison: digits only, ``+84``/``84`` as the national 0;
    None for an empty, anonymous or digit-less number."""
    if not number:
        return None
    digits = "".join(c for c in number if c.isdigit())
    if not digits:
        return None
    if digits.startswith("84") and len(digits) >= 11:
        digits = "0" + digits[2:]
    return digits


def disclosure(ticket: Ticket | None, caller: str | None) -> Disclosure:
    if ticket is None:
        return Disclosure.NOT_FOUND
    mine = phone_key(caller)
    if mine is None or phone_key(ticket.caller) == mine:
        return Disclosure.FOUND
    return Disclosure.OTHER_CALLER


def words(
    code: str,
    ticket: Ticket | None,
    shown: Disclosure,
    today: date,
    agency_prompt: str | None = None,
) -> list[str]:
    """The word prompts telling the caller about ticket ``code``; ``agency_prompt`` says the
    name of the agency handling it (only its own caller hears it)."""
    if ticket is None or shown is Disclosure.NOT_FOUND:
        return ["phieu_khong_tim_thay"]
    spoken = code.removeprefix(f"{PREFIX}-").replace("-", "")
    out = ["phieu_ma", *say.digits(spoken), f"phieu_trang_thai_{ticket.status.value}"]
    if shown is not Disclosure.FOUND:
        return out
    if agency_prompt is not None:
        out += ["co_quan_xu_ly", agency_prompt]
    out += ["ngay_tiep_nhan", *say.date_vi(ticket.started_at.astimezone(VN_TZ).date())]
    open_ = ticket.status in (Status.NEW, Status.IN_PROGRESS)
    if ticket.resolved_at is not None and not open_:
        out += ["ngay_tra_loi", *say.date_vi(ticket.resolved_at.astimezone(VN_TZ).date())]
    if ticket.due_at is not None and open_:
        due = ticket.due_at.astimezone(VN_TZ).date()
        out += ["han_tra_loi", *say.date_vi(due)]
        if due < today:
            out.append("phieu_qua_han")
    return out
