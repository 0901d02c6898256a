"""The back office, assembled: the forward desk on the engine's database, with the agencies
file of ``[back_office]``, the office calendar of ``[ivr] schedule`` and the message channels'
``Outbox`` (its e-mail sender mails the agencies; its replies carry answers to citizens)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from agencies.calendar import WorkCalendar
from agencies.desk import ForwardDesk
from agencies.digest import Digest
from agencies.model import load_agencies
from agencies.sql import SqlDigestLog, SqlForwardStore
from conversations.outbox import Outbox
from tickets.sql_kb import SqlKnowledgeBase
from tongdai.settings import Settings, home_path


def build_desk(settings: Settings, engine: AsyncEngine, outbox: Outbox) -> ForwardDesk:
    """Raises ``ConfigError`` (file and field) for a broken agencies or schedule file."""
    return ForwardDesk(
        outbox.tickets,
        SqlForwardStore(engine),
        load_agencies(home_path(settings.back_office.agencies)),
        WorkCalendar.from_file(home_path(settings.ivr.schedule)),
        outbox,
        kb=SqlKnowledgeBase(engine),
    )


def build_digest(settings: Settings, desk: ForwardDesk, engine: AsyncEngine) -> Digest:
    """The daily digest; the days it went are kept in the database (``digest_days``)."""
    bo = settings.back_office
    to = tuple(a.strip() for a in bo.digest_to.split(",") if a.strip())
    return Digest(
        desk,
        supervisors=to,
        hour=min(bo.digest_hour, 23),
        days=SqlDigestLog(engine),
    )
