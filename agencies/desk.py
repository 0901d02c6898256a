"""The back office's workflow: forward a ticket to an agency, tell the agency, take its answer
(or its request for more time, or the ticket sent back), and give the answer to the citizen.

``ForwardDesk`` is what the console, the agency desk and the API call; it keeps the ticket in
step with its forward:

- ``forward``: due date on the office calendar (``agencies.calendar``), the ticket goes
  ``in_progress`` with that due date, the agency is mailed (``notify``).
- ``notify``: through the e-mail ``ChannelSender`` the conversations' ``Outbox`` holds for
  ``Channel.EMAIL`` (none configured: the notice stays ``pending`` and ``notify_pending``
  sends it once there is one; a platform refusal is ``failed``, shown on the forward).
- ``extend`` (once, with a reason), ``answer``, ``send_back``: the agency's three moves; each
  is checked against the agency the account belongs to (another agency's forward is "not
  found", never "forbidden": its existence is not told).
- ``resolve``: an answered forward's answer goes back on the ticket's channel
  (``Outbox.reply``: e-mail, chat, Zalo, Facebook); a call gets a callback task for an agent
  (``ForwardStore.callbacks``; the agent calls through the ACD's existing call-back). Then the
  ticket is resolved. An answer the agency marked public then enters the knowledge base
  (``tickets.kb``; one entry per ticket, republishing replaces it): the question is the
  centre's note on the forward, else the ticket's notes, else the citizen's first message; the
  answer is the text given back. A failure there is logged and never undoes the resolve.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from datetime import datetime

from agencies.calendar import WorkCalendar
from agencies.forwards import Forward, ForwardState, Notify, current
from agencies.model import Agency, AgencyBook
from agencies.store import ForwardStore
from conversations.model import (
    ChannelSender,
    Identity,
    IdentityKind,
    OutboundMessage,
    SendStatus,
)
from conversations.outbox import RECIPIENT_KIND, Outbox
from tickets.kb import MAX_QUESTION, KbDraft, KnowledgeBase
from tickets.messages import Author
from tickets.model import Channel, Status, Ticket
from tickets.store import TicketStore
from tongdai.clock import VN_TZ, utcnow
from tongdai.errors import StoreError, TongdaiError

log = logging.getLogger(__name__)

MAX_TEXT = 8000
MAX_REASON = 1000
CALLBACK = "callback"


class DeskError(TongdaiError):
    """A request the desk refuses; ``reason`` is a stable id for the web layer."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _text(value: str | None, what: str, limit: int) -> str:
    text = (value or "").strip()
    if not text:
        raise DeskError("invalid_input", f"{what}: required")
    if len(text) > limit:
        raise DeskError("invalid_input", f"{what}: at most {limit} characters")
    return text


class ForwardDesk:
    def __init__(
        self,
        tickets: TicketStore,
        forwards: ForwardStore,
        book: AgencyBook,
        calendar: WorkCalendar,
        outbox: Outbox,
        *,
        clock: Callable[[], datetime] = utcnow,
        kb: KnowledgeBase | None = None,
    ) -> None:
        self.tickets = tickets
        self.forwards = forwards
        self.book = book
        self.calendar = calendar
        self.outbox = outbox
        self.clock = clock
        #: where public answers are published when the ticket is resolved (None: nowhere)
        self.kb = kb

    @property
    def email(self) -> ChannelSender | None:
        """The e-mail sender the engine configured (``[channels.email]``), if any."""
        return self.outbox.senders.get(Channel.EMAIL)

    def agency(self, agency_id: str) -> Agency:
        found = self.book.get(agency_id)
        if found is None:
            raise DeskError("unknown_agency", f"no agency {agency_id!r} in the agencies file")
        return found

    async def ticket(self, code: str) -> Ticket:
        found = await self.tickets.get(code) if len(code) <= 32 else None
        if found is None:
            raise KeyError(code)
        return found

    # -- the centre ------------------------------------------------------------------------

    async def forward(
        self, code: str, agency_id: str, *, by: str, note: str | None = None
    ) -> Forward:
        agency = self.agency(agency_id)
        ticket = await self.ticket(code)
        if ticket.status in (Status.RESOLVED, Status.CLOSED):
            raise DeskError("ticket_done", f"{code} is {ticket.status.value}: reopen it first")
        if note is not None:
            note = note.strip()[:MAX_TEXT] or None
        now = self.clock()
        due = self.calendar.due(now, agency.deadline_days)
        try:
            fwd = await self.forwards.create(
                ticket_code=code, agency_id=agency.id, due_at=due, by=by, at=now, note=note
            )
        except ValueError as exc:
            raise DeskError("already_forwarded", str(exc)) from None
        await self.tickets.update(code, due_at=due)
        if ticket.status is Status.NEW:
            await self.tickets.set_status(
                code, Status.IN_PROGRESS, by=by, note=f"Chuyển {agency.name}"
            )
        log.info("ticket %s forwarded to %s, due %s", code, agency.id, due.isoformat())
        return await self.notify(fwd)

    def _notice(self, fwd: Forward, ticket: Ticket, agency: Agency) -> OutboundMessage:
        due = fwd.due_at.astimezone(VN_TZ)
        lines = [
            f"Kính gửi {agency.name},",
            "",
            f"Tổng đài 1022 chuyển đến Quý cơ quan phiếu {ticket.code} để xem xét, trả lời.",
            f"Hạn trả lời: {due:%H:%M ngày %d/%m/%Y} ({agency.deadline_days} ngày làm việc).",
        ]
        if ticket.subject:
            lines.append(f"Tiêu đề: {ticket.subject}")
        if fwd.note:
            lines += ["", "Nội dung cần xử lý:", fwd.note]
        lines += [
            "",
            "Vui lòng đăng nhập trang Cơ quan của tổng đài 1022 để trả lời, xin gia hạn "
            "(một lần, nêu lý do) hoặc trả lại phiếu.",
        ]
        return OutboundMessage(
            channel=Channel.EMAIL,
            ticket_code=ticket.code,
            recipient=Identity(IdentityKind.EMAIL, agency.email),
            text="\n".join(lines),
            subject=f"[{ticket.code}] Chuyển xử lý - hạn {due:%d/%m/%Y}",
            message_id=f"1022.fwd.{fwd.id}.{secrets.token_hex(6)}",
            automatic=True,
        )

    async def notify(self, fwd: Forward) -> Forward:
        """Mail the agency about ``fwd`` if an e-mail sender is configured."""
        sender = self.email
        if sender is None or fwd.notify is not Notify.PENDING:
            return fwd
        ticket = await self.ticket(fwd.ticket_code)
        result = await sender.send(self._notice(fwd, ticket, self.agency(fwd.agency_id)))
        now = self.clock()
        if result.status is SendStatus.SENT:
            await self.forwards.set_notify(fwd.id, Notify.SENT, at=now)
        elif result.status is SendStatus.RETRY:
            await self.forwards.set_notify(fwd.id, Notify.PENDING, at=now, error=result.error)
        else:
            await self.forwards.set_notify(fwd.id, Notify.FAILED, at=now, error=result.error)
        return await self._get(fwd.id)

    async def notify_pending(self) -> int:
        """Send the notices still pending (run now and then by the engine); how many sent."""
        if self.email is None:
            return 0
        sent = 0
        for fwd in await self.forwards.pending_notifications():
            sent += (await self.notify(fwd)).notify is Notify.SENT
        return sent

    async def run(self, interval_s: float = 60.0) -> None:
        """Send pending notices every ``interval_s`` until cancelled (the engine's task)."""
        while True:
            try:
                await self.notify_pending()
            except StoreError as exc:
                log.warning("agency notices: %s", exc)
            await asyncio.sleep(interval_s)

    async def _get(self, forward_id: int) -> Forward:
        found = await self.forwards.get(forward_id)
        if found is None:
            raise KeyError(forward_id)
        return found

    async def current(self, code: str) -> Forward | None:
        """The ticket's latest forward that was not sent back (None: with the centre)."""
        return current(await self.forwards.of_ticket(code))

    async def resolve(self, code: str, *, by: str, text: str | None = None) -> Forward:
        """Give the agency's answer (or ``text``, the centre's wording of it) back to the
        citizen on the ticket's channel, then resolve the ticket."""
        fwd = await self.current(code)
        if fwd is None or fwd.state is not ForwardState.ANSWERED:
            raise DeskError("not_answered", f"{code}: no answer from an agency yet")
        if fwd.replied_at is not None:
            raise DeskError("already_replied", f"{code}: the answer was already given back")
        ticket = await self.ticket(code)
        if ticket.status in (Status.RESOLVED, Status.CLOSED):
            raise DeskError("ticket_done", f"{code} is {ticket.status.value} already")
        answer = _text(text or fwd.answer, "answer", MAX_TEXT)
        channel = Channel(ticket.channel)
        if channel in RECIPIENT_KIND:
            agency = self.book.name(fwd.agency_id)
            await self.outbox.reply(code, f"{answer}\n\n({agency} trả lời)", author=Author.AGENT,
                                    author_id=by)  # fmt: skip
            via = channel.value
        else:
            via = CALLBACK
        fwd = await self.forwards.replied(fwd.id, via=via, at=self.clock())
        await self.tickets.set_status(code, Status.RESOLVED, by=by, note="Trả lời của cơ quan")
        if fwd.answer_public:
            await self._publish(ticket, fwd, answer, by)
        return fwd

    async def _publish(self, ticket: Ticket, fwd: Forward, answer: str, by: str) -> None:
        """Put a public answer in the knowledge base (see the module docstring)."""
        if self.kb is None:
            return
        try:
            question = fwd.note or ticket.notes or await self._first_question(ticket.code)
            if not question:
                log.warning("%s: public answer not published (no question text)", ticket.code)
                return
            draft = KbDraft(
                question=question[:MAX_QUESTION],
                answer=answer,
                category=ticket.category,
                ticket_code=ticket.code,
            )
            await self.kb.publish(draft, by=by)
        except (StoreError, ValueError) as exc:
            log.warning("%s: public answer not published: %s", ticket.code, exc)

    async def _first_question(self, code: str) -> str | None:
        for m in await self.outbox.conv.messages(code):
            if m.author is Author.CITIZEN and m.body.strip():
                return m.body
        return None

    async def callback_done(self, forward_id: int) -> Forward:
        fwd = await self._get(forward_id)
        if fwd.reply_via != CALLBACK:
            raise DeskError("no_callback", "this answer is not given back by telephone")
        return await self.forwards.callback_done(forward_id, at=self.clock())

    # -- the agency --------------------------------------------------------------------------

    async def of_agency(self, agency_id: str, forward_id: int) -> Forward:
        """The forward if it is ``agency_id``'s; KeyError otherwise (whose it is, is not said)."""
        fwd = await self.forwards.get(forward_id)
        if fwd is None or fwd.agency_id != agency_id:
            raise KeyError(forward_id)
        return fwd

    async def agency_ticket(self, agency_id: str, code: str) -> tuple[Ticket, list[Forward]]:
        """A ticket as its agency sees it, with that agency's forwards of it; KeyError if the
        ticket was never forwarded to ``agency_id``."""
        mine = [f for f in await self.forwards.of_ticket(code) if f.agency_id == agency_id]
        if not mine:
            raise KeyError(code)
        return await self.ticket(code), mine

    async def extend(self, agency_id: str, forward_id: int, *, reason: str | None) -> Forward:
        fwd = await self.of_agency(agency_id, forward_id)
        why = _text(reason, "reason", MAX_REASON)
        days = self.agency(agency_id).deadline_days
        due = self.calendar.close_of(
            self.calendar.add_working_days(self.calendar.local_day(fwd.due_at), days)
        )
        fwd = await self.forwards.extend(forward_id, reason=why, due_at=due, at=self.clock())
        await self.tickets.update(fwd.ticket_code, due_at=due)
        return fwd

    async def answer(
        self, agency_id: str, forward_id: int, *, text: str | None, public: bool, by: str
    ) -> Forward:
        await self.of_agency(agency_id, forward_id)
        body = _text(text, "answer", MAX_TEXT)
        return await self.forwards.answer(
            forward_id, text=body, public=public, by=by, at=self.clock()
        )

    async def send_back(
        self, agency_id: str, forward_id: int, *, reason: str | None, by: str
    ) -> Forward:
        await self.of_agency(agency_id, forward_id)
        why = _text(reason, "reason", MAX_REASON)
        fwd = await self.forwards.send_back(forward_id, reason=why, by=by, at=self.clock())
        ticket = await self.ticket(fwd.ticket_code)
        at = self.clock().astimezone(VN_TZ)
        line = f"[{at:%d/%m %H:%M} {by}] {self.book.name(agency_id)} trả lại: {why}"
        await self.tickets.update(
            ticket.code, notes=f"{ticket.notes}\n{line}" if ticket.notes else line
        )
        return fwd
