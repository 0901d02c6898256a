"""What people do to tickets from the web: classify, write notes, resolve, escalate, assign,
take a call-back. One place for the rules, used by the pages and the API alike.

Who may change a ticket: supervisors and admins any; an agent a ticket that is theirs or nobody's
(acting on it makes it theirs); managers none. Status moves follow ``tickets.model.TRANSITIONS``
and each lands in the ticket's history (``TicketStore.set_status``) with who and why.
Escalating hands the ticket back (no agent) in progress; assigning gives it to an agent. Both are
also stamped into the notes, so the trail survives when the status does not change. Classifying
a ticket as a complaint (``phan_anh``) gives it a due date if it has none. A complaint's
sub-type (``complaint_type``) may be set by whoever may change the ticket (it makes the ticket a
complaint); making a complaint one about officials (confidential) or lifting that is written to
the audit log, and only supervisors and admins may lift it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from accounts.model import Perm, User
from agencies.forwards import Forward, ForwardState
from tickets.audit import AuditAction, SqlAuditLog
from tickets.model import TRANSITIONS, ComplaintType, Status, Ticket
from tickets.store import TicketStore
from tongdai.clock import VN_TZ
from web.errors import ApiError
from web.live import LiveHub

COMPLAINT = "phan_anh"
#: the categories of the 1022 menu (ivr/menu_1022.toml), with their Vietnamese labels
CATEGORIES: dict[str, str] = {
    "thu_tuc": "Thủ tục hành chính",
    "tra_cuu_ho_so": "Tra cứu hồ sơ",
    "phan_anh": "Phản ánh, kiến nghị",
    "tra_cuu_phan_anh": "Tra cứu kết quả phản ánh, kiến nghị",
    "dau_tu": "Đầu tư",
    "du_lich": "Du lịch",
    "buu_chinh": "Bưu chính công ích",
    "su_co": "Sự cố hạ tầng, kinh tế - xã hội",
    "chung": "Thông tin chung",
}
#: complaint sub-types a person may pick, with their labels; "none" clears the sub-type
COMPLAINT_TYPES: dict[str, str] = {
    ComplaintType.PROCEDURES.value: "Về thủ tục hành chính",
    ComplaintType.OFFICIALS.value: "Về cán bộ, công chức (bảo mật)",
    ComplaintType.PROPOSALS.value: "Sáng kiến, kiến nghị",
    "none": "(không phân loại)",
}
ACTIONS = ("save", "resolve", "escalate", "assign", "close", "reopen")
MAX_NOTES = 4000


@dataclass(frozen=True)
class Change:
    """One request to change a ticket; ``None`` fields are left alone."""

    action: str = "save"
    notes: str | None = None
    category: str | None = None
    status: str | None = None
    #: the history note of a status change
    note: str | None = None
    #: assign: the agent id to give the ticket to
    agent: str | None = None
    #: a key of ``COMPLAINT_TYPES`` ("none" clears it)
    complaint_type: str | None = None


def may_write(user: User, ticket: Ticket) -> bool:
    if user.can(Perm.TICKETS_WRITE_ALL):
        return True
    return (
        user.can(Perm.TICKETS_WRITE_OWN)
        and user.agent_id is not None
        and ticket.agent in (None, user.agent_id)
    )


@dataclass
class TicketActions:
    tickets: TicketStore
    hub: LiveHub
    categories: dict[str, str] = field(default_factory=lambda: dict(CATEGORIES))
    agent_ids: Callable[[], set[str]] = set
    clock: Callable[[], datetime] = lambda: datetime.now(VN_TZ)
    complaint_days: int = 10
    #: told of a ticket that became resolved or closed (the ACD frees its conversation)
    ended: Callable[[str], None] | None = None
    #: where making a complaint confidential (or lifting it) is written
    audit: SqlAuditLog | None = None
    #: the ticket's current forward to an agency (``ForwardDesk.current``) and the agency's name
    forward_of: Callable[[str], Awaitable[Forward | None]] | None = None
    agency_name: Callable[[str], str] = str

    async def get(self, code: str) -> Ticket:
        ticket = await self.tickets.get(code) if len(code) <= 32 else None
        if ticket is None:
            raise ApiError(404, "not_found", f"no ticket {code!r}", {"code": code})
        return ticket

    def stamp(self, user: User, text: str, notes: str | None) -> str:
        at = self.clock().astimezone(VN_TZ)
        line = f"[{at:%d/%m %H:%M} {user.name}] {text}"
        return f"{notes}\n{line}" if notes else line

    async def apply(self, user: User, code: str, change: Change) -> Ticket:
        """Apply ``change`` for ``user``; ApiError 403/404/409/422 when it may not be done."""
        ticket = await self.get(code)
        if not may_write(user, ticket):
            raise ApiError(403, "forbidden", "this ticket is not yours to change", {"code": code})
        if change.action not in ACTIONS:
            raise ApiError(422, "invalid_input", f"action: one of {', '.join(ACTIONS)}")
        fields: dict[str, object] = {}
        notes = change.notes if change.notes is not None else ticket.notes
        if change.notes is not None and change.notes != ticket.notes:
            fields["notes"] = change.notes
        if change.category is not None and change.category != ticket.category:
            if change.category not in self.categories:
                raise ApiError(422, "invalid_input", "category: unknown", {"field": "category"})
            fields["category"] = change.category
            if change.category == COMPLAINT and ticket.due_at is None:
                fields["due_at"] = ticket.started_at + timedelta(days=self.complaint_days)
        secrecy = self._complaint_type(user, ticket, change, fields)
        if ticket.agent is None and not user.can(Perm.TICKETS_WRITE_ALL) and user.agent_id:
            fields["agent"] = user.agent_id  # an agent acting on nobody's ticket takes it
        status = change.status
        if change.action == "resolve":
            status = Status.RESOLVED
        elif change.action == "close":
            status = Status.CLOSED
        elif change.action == "reopen":
            status = Status.IN_PROGRESS
        elif change.action == "escalate":
            fields["agent"] = None
            why = f"Chuyển cấp trên. {change.note or ''}".strip()
            fields["notes"] = notes = self.stamp(user, why, notes)
            if ticket.status is not Status.IN_PROGRESS:
                status = Status.IN_PROGRESS
        elif change.action == "assign":
            target = change.agent
            if not target or target not in self.agent_ids():
                raise ApiError(422, "invalid_input", "agent: unknown agent", {"field": "agent"})
            fields["agent"] = target
            fields["notes"] = notes = self.stamp(user, f"Giao cho {target}.", notes)
            if ticket.status is Status.NEW:
                status = Status.IN_PROGRESS
        new_status = None
        if status is not None and Status(status) is not ticket.status:
            new_status = Status(status)
            if new_status not in TRANSITIONS[ticket.status]:
                raise ApiError(
                    409,
                    "illegal_status",
                    f"cannot go from {ticket.status.value} to {new_status.value}",
                    {"from": ticket.status.value, "to": new_status.value},
                )
            if new_status in (Status.RESOLVED, Status.CLOSED):
                await self._not_forwarded(code)
        if len(str(fields.get("notes") or "")) > MAX_NOTES * 2:
            raise ApiError(422, "invalid_input", "notes: too long", {"field": "notes"})
        if secrecy is not None and self.audit is not None:
            await self.audit.record(
                actor=user.name, role=user.role.value, action=AuditAction.SET_CONFIDENTIAL,
                ticket_code=code, detail=secrecy,
            )  # fmt: skip
        if fields:
            await self.tickets.update(code, **fields)
        if new_status is not None:
            try:
                await self.tickets.set_status(code, new_status, by=user.name, note=change.note)
            except ValueError as exc:  # someone moved it meanwhile
                raise ApiError(409, "illegal_status", str(exc)) from None
            if self.ended is not None and new_status in (Status.RESOLVED, Status.CLOSED):
                self.ended(code)
        updated = await self.get(code)
        self.hub.ticket_changed(code, updated.status.value, updated.agent, updated.category)
        return updated

    async def _not_forwarded(self, code: str) -> None:
        """409 ``held_by_agency`` if an agency still holds the ticket or its answer is not
        given back yet (see the module docstring)."""
        fwd = await self.forward_of(code) if self.forward_of is not None else None
        if fwd is None or fwd.replied_at is not None:
            return
        agency = self.agency_name(fwd.agency_id)
        if fwd.state is ForwardState.ANSWERED:
            message = (
                f'Phiếu đã được {agency} trả lời: hãy dùng "Gửi trả lời và giải quyết" để câu '
                "trả lời đến người dân."
            )
        else:
            due = fwd.due_at.astimezone(VN_TZ)
            message = (
                f"Phiếu đang chờ {agency} trả lời (hạn {due:%H:%M %d/%m/%Y}); không thể hoàn "
                "tất khi cơ quan chưa trả lời hoặc chưa trả lại phiếu."
            )
        raise ApiError(
            409,
            "held_by_agency",
            message,
            {"code": code, "agency": fwd.agency_id, "forward_state": fwd.state.value},
        )

    def _complaint_type(
        self, user: User, ticket: Ticket, change: Change, fields: dict[str, object]
    ) -> str | None:
        """Put the sub-type change in ``fields``; "on"/"off" when confidentiality changes."""
        if change.complaint_type is None:
            return None
        if change.complaint_type not in COMPLAINT_TYPES:
            raise ApiError(
                422, "invalid_input", "complaint_type: unknown", {"field": "complaint_type"}
            )
        new = None if change.complaint_type == "none" else change.complaint_type
        if new == ticket.complaint_type:
            return None
        fields["complaint_type"] = new
        if new is not None and fields.get("category", ticket.category) != COMPLAINT:
            fields["category"] = COMPLAINT
            if ticket.due_at is None:
                fields["due_at"] = ticket.started_at + timedelta(days=self.complaint_days)
        after = replace(ticket, complaint_type=new).confidential
        if after == ticket.confidential:
            return None
        if not after and not user.can(Perm.CONFIDENTIAL):
            raise ApiError(
                403,
                "forbidden",
                "only a supervisor or an admin may lift the confidentiality of a complaint",
                {"code": ticket.code},
            )
        return "on" if after else "off"
