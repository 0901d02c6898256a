"""The mailbox reader: every mail of the province's folder handed to the core once, in order.

Shape: ``run()`` is one supervisor loop (the caller's TaskGroup owns it; cancel to stop):
connect + LOGIN, then rounds of SELECT -> catch up -> wait (IDLE when the server has it,
renewed every ``idle_renew_s``; else sleep ``poll_s``). Any outage (refused connection,
timeout, server restart, a sink that raised ``StoreError``, a password file gone) closes
the session and reconnects after a backoff that doubles up to ``MAX_BACKOFF_S``; the
reason is logged and kept in ``stats.last_error``.

Exactly once: the checkpoint holds ``(UIDVALIDITY, last UID)`` per mailbox. A round asks the
server for the UIDs above the last one, fetches them in batches with ``BODY.PEEK[]`` (the
``\\Seen`` flag is neither set nor read: a person may read the mailbox too), parses each and
awaits ``sink.receive`` IN UID ORDER; only then is the checkpoint advanced to that UID. A
crash between the two hands that one mail again on restart, and the sink de-duplicates it by
``(channel, external_id)`` = its Message-ID. When UIDVALIDITY changes (the folder was
rebuilt or restored) the old UIDs mean nothing: the whole folder is read again from the
start and the sink's Message-ID de-duplication keeps every mail stored once.

A mail the parser cannot read still reaches the core (``parse.unreadable_mail``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from channels.email.checkpoint import MailCheckpoint, Position
from channels.email.imap import ImapError, ImapSession
from channels.email.parse import parse_mail
from channels.email.settings import EmailChannelSettings
from conversations.model import InboundMessage, InboundSink
from tongdai.errors import ConfigError, StoreError

log = logging.getLogger(__name__)

MIN_BACKOFF_S = 1.0
MAX_BACKOFF_S = 60.0
#: a FETCH asks for at most this many bytes of mail (by RFC822.SIZE); a bigger mail comes alone
MAX_FETCH_BYTES = 16 * 1024 * 1024
#: mails above this size are parsed in a worker thread, not on the event loop
THREAD_PARSE_BYTES = 256 * 1024


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class ReaderStats:
    handed: int = 0  # mails given to the sink (and acknowledged by it) since start
    connects: int = 0
    failures: int = 0
    last_error: str | None = None
    connected: bool = False


def size_batches(uids: Sequence[int], sizes: dict[int, int], limit: int) -> list[list[int]]:
    """``uids`` (in order) cut into runs whose sizes add up to at most ``limit`` bytes."""
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid, 0)
        if current and total + size > limit:
            batches.append(current)
            current, total = [], 0
        current.append(uid)
        total += size
    if current:
        batches.append(current)
    return batches


class MailReader:
    def __init__(
        self,
        settings: EmailChannelSettings,
        sink: InboundSink,
        checkpoint: MailCheckpoint,
        *,
        password: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        min_backoff_s: float = MIN_BACKOFF_S,
        max_backoff_s: float = MAX_BACKOFF_S,
    ) -> None:
        self.settings = settings
        self.sink = sink
        self.checkpoint = checkpoint
        self._password = password
        self._clock = clock
        self._min_backoff = min_backoff_s
        self._max_backoff = max_backoff_s
        self.stats = ReaderStats()
        self.key = f"{settings.username}/{settings.mailbox}"

    async def _connect(self) -> ImapSession:
        password = self._password if self._password is not None else self.settings.imap_password()
        return await ImapSession.connect(
            self.settings.imap, self.settings.username, password, self.settings.timeout_s
        )

    async def run(self) -> None:
        """Read the mailbox until cancelled, reconnecting after any outage."""
        delay = self._min_backoff
        while True:
            session: ImapSession | None = None
            try:
                session = await self._connect()
                self.stats.connects += 1
                log.info("reading %s as %s", self.settings.mailbox, self.settings.username)
                while True:
                    await self._round(session)
                    self.stats.connected = True
                    delay = self._min_backoff
                    await self._wait(session)
            except (ImapError, StoreError, ConfigError) as exc:
                self.stats.failures += 1
                self.stats.last_error = str(exc)
                log.warning("mail reader: %s; reconnecting in %.1f s", exc, delay)
            finally:
                self.stats.connected = False
                if session is not None:
                    session.close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_backoff)

    async def sync_once(self) -> int:
        """Connect, hand every new mail to the sink, log out; the number handed."""
        session = await self._connect()
        before = self.stats.handed
        try:
            await self._round(session)
            await session.logout()
        finally:
            session.close()
        return self.stats.handed - before

    async def _wait(self, session: ImapSession) -> None:
        if self.settings.idle and session.can_idle:
            await session.idle(self.settings.idle_renew_s)
        else:
            await asyncio.sleep(self.settings.poll_s)

    async def _round(self, session: ImapSession) -> None:
        """SELECT, then hand every mail above the checkpoint to the sink, in UID order."""
        selected = await session.select(self.settings.mailbox)
        position = await self.checkpoint.load(self.key)
        if position is None or position.uidvalidity != selected.uidvalidity:
            if position is not None:
                log.warning(
                    "%s: UIDVALIDITY changed from %d to %d: reading the folder again from the "
                    "start (the core stores each Message-ID once)",
                    self.key,
                    position.uidvalidity,
                    selected.uidvalidity,
                )
            position = Position(selected.uidvalidity, 0)
            await self.checkpoint.save(self.key, position)
        uids = await session.uids_after(position.last_uid)
        if uids:
            log.info("%s: %d new mail(s) after UID %d", self.key, len(uids), position.last_uid)
        step = self.settings.batch
        for start in range(0, len(uids), step):
            chunk = uids[start : start + step]
            sizes = await session.sizes(chunk)
            for batch in size_batches(chunk, sizes, MAX_FETCH_BYTES):
                mails = await session.fetch(batch)
                for uid in batch:  # ascending: the checkpoint never skips a mail
                    raw = mails.get(uid)
                    if raw is not None:  # None: expunged since the search
                        await self.sink.receive(await self._parse(raw, uid, selected.uidvalidity))
                        self.stats.handed += 1
                    position = Position(selected.uidvalidity, uid)
                    await self.checkpoint.save(self.key, position)

    async def _parse(self, raw: bytes, uid: int, uidvalidity: int) -> InboundMessage:
        now = self._clock()
        if len(raw) > THREAD_PARSE_BYTES:
            message = await asyncio.to_thread(parse_mail, raw, now)
        else:
            message = parse_mail(raw, now)
        meta = {
            **message.meta,
            "imap_mailbox": self.settings.mailbox,
            "imap_uid": str(uid),
            "imap_uidvalidity": str(uidvalidity),
        }
        return replace(message, meta=meta)
