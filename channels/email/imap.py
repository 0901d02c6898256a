"""A small typed IMAP session over aioimaplib: just what the mailbox reader needs.

aioimaplib is untyped and low level (responses are lists of byte lines, the literal of a
FETCH arrives as a ``bytearray`` between two lines); this module turns it into five calls:
``connect`` (TCP/TLS + greeting + LOGIN), ``select`` (UIDVALIDITY), ``uids_after``,
``fetch`` (``BODY.PEEK[]``: the ``\\Seen`` flag is never set) and ``idle`` (wait for the
server to announce a change, or for the renewal time). Every call is bounded by the
session's timeout; a ``NO``/``BAD`` answer, a timeout or a lost connection raise
``ImapError`` and the session is closed: the reader reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aioimaplib

from channels.email.settings import Endpoint
from tongdai.errors import TongdaiError

log = logging.getLogger(__name__)

_UIDVALIDITY_RE = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_EXISTS_RE = re.compile(rb"^(\d+) EXISTS")
_FETCH_RE = re.compile(rb"^\d+ FETCH \(")
_UID_RE = re.compile(rb"UID (\d+)")
_SIZE_RE = re.compile(rb"RFC822\.SIZE (\d+)")
_LOST = b"tongdai: connection lost"


class ImapError(TongdaiError):
    """The IMAP server refused a command, did not answer in time, or went away."""


@dataclass(frozen=True)
class Selected:
    uidvalidity: int
    exists: int


def quote(name: str) -> str:
    """An IMAP quoted string (mailbox names are checked ASCII by the settings)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def uid_set(uids: Sequence[int]) -> str:
    """``1:3,7,9:10`` for [1, 2, 3, 7, 9, 10] (sorted input)."""
    ranges: list[str] = []
    start = prev = uids[0]
    for uid in uids[1:]:
        if uid == prev + 1:
            prev = uid
            continue
        ranges.append(f"{start}:{prev}" if prev != start else str(start))
        start = prev = uid
    ranges.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(ranges)


class ImapSession:
    """One logged-in connection. Use ``await ImapSession.connect(...)``, then ``close()``."""

    def __init__(self, client: Any, timeout: float) -> None:
        self._client = client
        self.timeout = timeout
        self.lost = False

    @classmethod
    async def connect(
        cls, endpoint: Endpoint, username: str, password: str, timeout: float
    ) -> ImapSession:
        session: ImapSession | None = None

        def on_lost(_exc: Exception | None) -> None:
            if session is not None:
                session._on_lost()

        client = aioimaplib.IMAP4(
            host=endpoint.host,
            port=endpoint.port,
            timeout=timeout,
            conn_lost_cb=on_lost,
            ssl_context=endpoint.ssl_context(),
        )
        session = cls(client, timeout)
        try:
            await client.wait_hello_from_server()
            response = await client.login(username, password)
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            session.close()
            raise ImapError(f"cannot connect to {endpoint.host}:{endpoint.port}: {exc}") from exc
        if response.result != "OK":
            session.close()
            raise ImapError(f"login as {username} refused: {_text(response.lines)}")
        return session

    def _on_lost(self) -> None:
        self.lost = True
        # wake an IDLE wait at once rather than at its timeout
        self._client.protocol.idle_queue.put_nowait([_LOST])

    @property
    def can_idle(self) -> bool:
        return bool(self._client.has_capability("IDLE"))

    async def _run(self, what: str, call: Any) -> Any:
        if self.lost:
            raise ImapError(f"{what}: connection lost")
        try:
            response = await call
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            self.close()
            raise ImapError(f"{what}: {type(exc).__name__} {exc}") from exc
        if response.result != "OK":
            self.close()
            raise ImapError(f"{what}: {response.result} {_text(response.lines)}")
        return response

    async def select(self, mailbox: str) -> Selected:
        response = await self._run(f"SELECT {mailbox}", self._client.select(quote(mailbox)))
        uidvalidity = exists = None
        for line in response.lines:
            if isinstance(line, bytes):
                if found := _UIDVALIDITY_RE.search(line):
                    uidvalidity = int(found.group(1))
                if found := _EXISTS_RE.match(line):
                    exists = int(found.group(1))
        if uidvalidity is None:
            self.close()
            raise ImapError(f"SELECT {mailbox}: the server sent no UIDVALIDITY")
        return Selected(uidvalidity, exists or 0)

    async def uids_after(self, last_uid: int) -> list[int]:
        """UIDs greater than ``last_uid``, ascending."""
        response = await self._run(
            "UID SEARCH",
            asyncio.wait_for(
                self._client.protocol.search("UID", f"{last_uid + 1}:*", by_uid=True, charset=None),
                self.timeout,
            ),
        )
        uids: set[int] = set()
        for line in response.lines[:-1]:
            if isinstance(line, bytes):
                words = line.split()
                if words[:1] == [b"SEARCH"]:
                    words = words[1:]
                uids.update(int(w) for w in words if w.isdigit())
        # "n:*" always matches the highest UID, even below n: keep only the new ones
        return sorted(uid for uid in uids if uid > last_uid)

    async def sizes(self, uids: Sequence[int]) -> dict[int, int]:
        """``RFC822.SIZE`` of each of ``uids`` still in the folder."""
        response = await self._run(
            "UID FETCH SIZE", self._client.uid("fetch", uid_set(uids), "(UID RFC822.SIZE)")
        )
        sizes: dict[int, int] = {}
        for line in response.lines:
            if isinstance(line, bytes) and _FETCH_RE.match(line):
                uid, size = _UID_RE.search(line), _SIZE_RE.search(line)
                if uid and size:
                    sizes[int(uid.group(1))] = int(size.group(1))
        return sizes

    async def fetch(self, uids: Sequence[int]) -> dict[int, bytes]:
        """The raw bytes of each of ``uids`` still in the folder (expunged ones are absent)."""
        response = await self._run(
            "UID FETCH", self._client.uid("fetch", uid_set(uids), "(UID BODY.PEEK[])")
        )
        mails: dict[int, bytes] = {}
        lines = response.lines
        i = 0
        while i < len(lines):
            line = lines[i]
            if isinstance(line, bytes) and _FETCH_RE.match(line):
                literal = lines[i + 1] if i + 1 < len(lines) else None
                trailer = lines[i + 2] if i + 2 < len(lines) else b""
                if isinstance(literal, bytearray):
                    found = _UID_RE.search(line) or (
                        _UID_RE.search(trailer) if isinstance(trailer, bytes) else None
                    )
                    if found:
                        mails[int(found.group(1))] = bytes(literal)
                    i += 2
                    continue
            i += 1
        return mails

    async def idle(self, renew_s: float) -> bool:
        """Wait in IDLE until the server reports a change (True) or ``renew_s`` passes (False)."""
        queue = self._client.protocol.idle_queue
        while not queue.empty():  # leftovers of an earlier IDLE
            queue.get_nowait()
        try:
            idle_task = await asyncio.wait_for(
                self._client.idle_start(timeout=renew_s), self.timeout
            )
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            self.close()
            raise ImapError(f"IDLE refused: {exc}") from exc
        changed = False
        try:
            push: list[bytes] = await self._client.wait_server_push(timeout=renew_s + self.timeout)
            changed = bool(push != aioimaplib.STOP_WAIT_SERVER_PUSH)
            if self.lost or _LOST in push:
                raise ImapError("connection lost during IDLE")
        except TimeoutError as exc:
            self.close()
            raise ImapError("IDLE: no answer from the server") from exc
        finally:
            if not self.lost and self._client.has_pending_idle():
                self._client.idle_done()
        await self._run("IDLE DONE", asyncio.wait_for(idle_task, self.timeout))
        return changed

    async def logout(self) -> None:
        """Say goodbye politely (bounded), then close."""
        if not self.lost:
            with contextlib.suppress(OSError, TimeoutError, aioimaplib.AioImapException):
                await asyncio.wait_for(self._client.logout(), self.timeout)
        self.close()

    def close(self) -> None:
        """Drop the connection and aioimaplib's own background tasks (an IDLE left waiting
        for a server that went away would otherwise stay pending forever)."""
        waiter = getattr(self._client, "_idle_waiter", None)
        if waiter is not None:
            waiter.cancel()
        for task in (*self._client.tasks, *self._client.protocol.tasks):
            task.cancel()
        transport = self._client.protocol.transport
        if transport is not None and not transport.is_closing():
            transport.close()


def _text(lines: Sequence[Any]) -> str:
    parts = [bytes(line).decode("utf-8", "replace") for line in lines if isinstance(line, bytes)]
    return " ".join(parts)[:200]
