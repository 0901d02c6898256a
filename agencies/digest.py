"""The daily digest: each morning of a working day, every agency with forwards past their
deadline or due within a day gets one e-mail listing them, and the supervisors
(``[back_office] digest_to``) get the list of every agency's.

Sent through the same e-mail sender as the forward notices (none configured: nothing is sent,
and the day is not marked done, so the digest goes once a sender exists). Sent at most once a
day per process (a restart after the hour sends that day's again).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from datetime import date, datetime

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


class Digest:
    def __init__(
        self, desk: ForwardDesk, *, supervisors: Sequence[str] = (), hour: int = 7
    ) -> None:
        self.desk = desk
        self.supervisors = tuple(supervisors)
        self.hour = hour
        self.last: date | None = None

    def due(self, now: datetime) -> bool:
        """Is it time for today's digest (a working day, past the hour, not sent yet)?"""
        local = now.astimezone(self.desk.calendar.schedule.tz)
        return (
            self.last != local.date()
            and local.hour >= self.hour
            and self.desk.calendar.is_working_day(local.date())
        )

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
        self.last = now.astimezone(self.desk.calendar.schedule.tz).date()
        return sent

    async def run(self, interval_s: float = 300.0) -> None:
        """Check every ``interval_s`` whether today's digest is due (the engine's task)."""
        while True:
            now = self.desk.clock()
            if self.due(now):
                try:
                    await self.send(now)
                except StoreError as exc:
                    log.warning("digest: %s", exc)
            await asyncio.sleep(interval_s)
