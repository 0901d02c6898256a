"""The daily digest: each morning of a working day, every agency with forwards past their
deadline or due within a day gets one e-mail listing them, and the supervisors
(``[back_office] digest_to``) get the list of every agency's.

Sent through the same e-mail sender as the forward notices (none configured: nothing is sent,
and the day is not marked done, so the digest goes once a sender exists). Sent at most once a
day: the day is claimed in a ``DigestLog`` before the first e-mail goes - the database's
``digest_days`` in the engine (``agencies.sql.SqlDigestLog``), so a restart after the hour,
or a second engine, does not send that day's again. A crash between the claim and the last
e-mail loses the rest of that day's digest rather than mailing anyone twice; the next working
day's lists every flagged forward again.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from datetime import date, datetime
from typing import Protocol

from agencies.desk import ForwardDesk
from agencies.forwards import OPEN_STATES, Forward
from conversations.model import Identity, IdentityKind, OutboundMessage, SendStatus
from tickets.model import Channel
from tongdai.clock import VN_TZ
from tongdai.errors import StoreError

log = logging.getLogger(__name__)


def _line(f: Forward, now: datetime) -> str:
    due = f.due_at.astimezone(VN_TZ)
    what = "QUÁ HẠN" if f.overdue(now) else "sắp đến hạn"
    return f"- {f.ticket_code}: hạn {due:%H:%M %d/%m/%Y} ({what})"


class DigestLog(Protocol):
    """The days whose digest went (or is going)."""

    async def claimed(self, day: date) -> bool: ...

    async def claim(self, day: date, at: datetime) -> bool:
        """Take ``day`` for this sender; False if it was taken already."""

    async def done(self, day: date, mails: int) -> None:
        """How many e-mails went for ``day`` (for the record)."""


class MemoryDigestLog:
    """``DigestLog`` in this process only (tests, tools)."""

    def __init__(self) -> None:
        self.days: dict[date, int | None] = {}

    async def claimed(self, day: date) -> bool:
        return day in self.days

    async def claim(self, day: date, at: datetime) -> bool:
        if day in self.days:
            return False
        self.days[day] = None
        return True

    async def done(self, day: date, mails: int) -> None:
        self.days[day] = mails


class Digest:
    def __init__(
        self,
        desk: ForwardDesk,
        *,
        supervisors: Sequence[str] = (),
        hour: int = 7,
        days: DigestLog | None = None,
    ) -> None:
        self.desk = desk
        self.supervisors = tuple(supervisors)
        self.hour = hour
        self.days: DigestLog = days if days is not None else MemoryDigestLog()
        #: the last day known to be done (saves asking the log every few minutes)
        self.last: date | None = None

    def _day(self, now: datetime) -> date:
        return now.astimezone(self.desk.calendar.schedule.tz).date()

    async def due(self, now: datetime) -> bool:
        """Is it time for today's digest (a working day, past the hour, not sent yet)?"""
        local = now.astimezone(self.desk.calendar.schedule.tz)
        day = local.date()
        if self.last == day or local.hour < self.hour:
            return False
        if not self.desk.calendar.is_working_day(day):
            return False
        if await self.days.claimed(day):
            self.last = day
            return False
        return True

    def _mail(self, to: str, subject: str, lines: list[str]) -> OutboundMessage:
        return OutboundMessage(
            channel=Channel.EMAIL,
            ticket_code="",
            recipient=Identity(IdentityKind.EMAIL, to),
            text="\n".join(lines),
            subject=subject,
            message_id=f"1022.digest.{secrets.token_hex(8)}",
            automatic=True,
        )

    async def send(self, now: datetime) -> int:
        """Send today's digest; how many e-mails went (0 without a sender: not marked done)."""
        sender = self.desk.email
        if sender is None:
            return 0
        today = self._day(now)
        if not await self.days.claim(today, now):
            self.last = today
            return 0  # sent already (an earlier run of the engine, or another engine)
        self.last = today
        flagged = [
            f
            for f in await self.desk.forwards.listing(states=OPEN_STATES, limit=5000)
            if f.flag(now) is not None
        ]
        by_agency: dict[str, list[Forward]] = {}
        for f in flagged:
            by_agency.setdefault(f.agency_id, []).append(f)
        day = now.astimezone(VN_TZ)
        mails: list[OutboundMessage] = []
        for agency_id, items in by_agency.items():
            agency = self.desk.book.get(agency_id)
            if agency is None:
                continue
            mails.append(
                self._mail(
                    agency.email,
                    f"[1022] {len(items)} phiếu quá hạn hoặc sắp đến hạn - {day:%d/%m/%Y}",
                    [f"Kính gửi {agency.name},", "", "Các phiếu cần trả lời:"]
                    + [_line(f, now) for f in items],
                )
            )
        if flagged:
            summary = [f"Tổng hợp ngày {day:%d/%m/%Y}: {len(flagged)} phiếu", ""]
            for agency_id, items in by_agency.items():
                summary.append(f"{self.desk.book.name(agency_id)}:")
                summary += [_line(f, now) for f in items]
            subject = f"[1022] Phiếu chuyển cơ quan quá hạn / sắp đến hạn - {day:%d/%m/%Y}"
            mails += [self._mail(to, subject, summary) for to in self.supervisors]
        sent = 0
        for mail in mails:
            result = await sender.send(mail)
            if result.status is SendStatus.SENT:
                sent += 1
            else:
                log.warning("digest to %s: %s", mail.recipient.value, result.error)
        await self.days.done(today, sent)
        return sent

    async def run(self, interval_s: float = 300.0) -> None:
        """Check every ``interval_s`` whether today's digest is due (the engine's task)."""
        while True:
            now = self.desk.clock()
            try:
                if await self.due(now):
                    await self.send(now)
            except StoreError as exc:
                log.warning("digest: %s", exc)
            await asyncio.sleep(interval_s)
