"""Asyncio client for the Asterisk Manager Interface (AMI), written for this project.

Why not panoramisk 1.4 (see docs/style.md): it has no per-action timeout, replays actions queued
while disconnected after a reconnect (a stale Originate could ring someone minutes later), runs
event callbacks as unreferenced tasks (order not guaranteed) and decodes TCP chunks separately
with errors ignored (a Vietnamese caller name split mid-character is silently corrupted).

Shape of this module::

    AmiClient         one owned supervisor task per client: reads the socket, matches responses
                      to pending actions by ActionID, fans events out in arrival order, and after
                      a drop reconnects with exponential backoff and logs in again
    AmiSubscription   a bounded queue per subscriber (async iterator); when a slow subscriber's
                      queue is full, further events are dropped for it alone (it then gets an
                      ``__overflow__`` event saying how many): it never reorders or blocks others
    AmiEvent          an ``Event:`` message; synthetic ones: ``__connected__``,
                      ``__disconnected__`` (header ``Reason``), ``__overflow__`` (``Dropped``)
    AmiResponse       a ``Response:`` message; a list action's (``EventList: start``) events,
                      through the closing ``...Complete`` one, are in ``events`` and are not
                      delivered to subscribers

Errors: see :mod:`pbx.ami_messages` (all are :class:`tongdai.errors.AmiError`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType

from pbx.ami_messages import (
    CONNECTED,
    DISCONNECTED,
    OVERFLOW,
    SEPARATOR,
    AmiActionFailed,
    AmiDisconnected,
    AmiEvent,
    AmiLoginRefused,
    AmiResponse,
    AmiSubscription,
    AmiTimeout,
    Headers,
    HeaderValue,
    encode_action,
    parse_message,
    synthetic_event,
)
from tongdai.errors import AmiError

__all__ = [
    "CONNECTED",
    "DISCONNECTED",
    "OVERFLOW",
    "AmiActionFailed",
    "AmiClient",
    "AmiDisconnected",
    "AmiError",
    "AmiEvent",
    "AmiLoginRefused",
    "AmiResponse",
    "AmiSubscription",
    "AmiTimeout",
    "parse_message",
]

log = logging.getLogger(__name__)

_MAX_MESSAGE = 1 << 20  # one AMI message never legitimately reaches 1 MiB


@dataclass
class _Pending:
    action: str
    future: asyncio.Future[AmiResponse]
    response: AmiResponse | None = None  # set once a list action's "EventList: start" arrived
    events: list[AmiEvent] = field(default_factory=list)


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


class AmiClient:
    """One logged-in AMI connection that survives Asterisk restarts. See the module docstring."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        connect_timeout: float = 5.0,
        action_timeout: float = 5.0,
        reconnect_backoff: tuple[float, float] = (0.5, 30.0),
        ping_interval: float | None = 20.0,
        events: str = "on",
        server_filter: bool = False,
    ) -> None:
        self.host, self.port, self.username = host, port, username
        self._secret = secret
        self._connect_timeout = connect_timeout
        self._action_timeout = action_timeout
        self._backoff = reconnect_backoff
        self._ping_interval = ping_interval
        self._events = events
        #: ask Asterisk (AMI ``Filter``) to send only the events some subscription names, so
        #: the busy call events nobody reads (Newstate, RTCP, QueueMemberStatus...) are never
        #: parsed; applied at each login and when a later subscription names new events
        self._server_filter = server_filter
        self._filtered: set[str] = set()  # event names the server filter lets through
        self._filter_all = False  # a subscription wants every event: no filter
        self._filter_tasks: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)
        self._id_prefix = secrets.token_hex(4)
        self._conn: _Connection | None = None
        self._pending: dict[str, _Pending] = {}
        self._subscriptions: set[AmiSubscription] = set()
        self._write_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.banner = ""

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._closing

    def subscribe(
        self, names: Sequence[str] | None = None, maxsize: int = 10_000
    ) -> AmiSubscription:
        """Start receiving events now (only ``names`` if given, case-insensitive)."""
        wanted = frozenset(n.lower() for n in names) if names is not None else None
        sub = AmiSubscription(wanted, maxsize, self._subscriptions.discard)
        if self._closing:
            sub.end()
        else:
            self._subscriptions.add(sub)
            if names is None:
                self._filter_all = True
            else:
                new = {n for n in names if not n.startswith("__")} - self._filtered
                if new and self._server_filter and self._conn is not None and self._filtered:
                    task = asyncio.create_task(self._add_filters(sorted(new)))
                    self._filter_tasks.add(task)
                    task.add_done_callback(self._filter_tasks.discard)
                self._filtered |= new
        return sub

    def _filter_names(self) -> list[str]:
        """The events to ask for at login; empty = no filter (every event comes)."""
        if not self._server_filter or self._filter_all:
            return []
        return sorted(self._filtered)

    async def _add_filters(self, names: list[str]) -> None:
        for name in names:
            try:
                await self.action("Filter", Operation="Add", Filter=f"Event: {name}")
            except AmiError as exc:
                log.error("AMI filter for %s not added (%s): its events may be missed", name, exc)

    async def start(self) -> None:
        """Connect, read the banner and log in; AmiError (AmiLoginRefused) if that fails."""
        if self._task is not None or self._closing:
            raise RuntimeError("AmiClient.start() called twice")
        conn, early = await self._open()
        self._attach(conn, early)
        self._task = asyncio.create_task(self._supervise(), name=f"ami {self.host}:{self.port}")
        self._task.add_done_callback(self._supervisor_done)

    def _supervisor_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("AMI supervisor task died; the client is unusable", exc_info=task.exception())

    async def action(
        self, name: str, /, *, action_timeout: float | None = None, **headers: HeaderValue
    ) -> AmiResponse:
        """Send one action and wait for its whole response (list actions: through Complete).

        Fails at once with AmiDisconnected while the connection is down: nothing is queued for
        later. A value that is a list/tuple sends the header once per item (e.g. ``Variable``).
        """
        conn = self._conn
        if conn is None or self._closing or self._task is None or self._task.done():
            raise AmiDisconnected(f"AMI {name}: not connected to {self.host}:{self.port}")
        return await self._request(conn, name, action_timeout, headers)

    async def _request(
        self,
        conn: _Connection,
        name: str,
        action_timeout: float | None,
        headers: Mapping[str, HeaderValue],
    ) -> AmiResponse:
        action_id = f"{self._id_prefix}-{next(self._ids)}"
        data = encode_action(name, action_id, headers)
        pending = _Pending(name, asyncio.get_running_loop().create_future())
        self._pending[action_id] = pending
        timeout = self._action_timeout if action_timeout is None else action_timeout
        try:
            async with asyncio.timeout(timeout):
                async with self._write_lock:
                    conn.writer.write(data)
                    await conn.writer.drain()
                response = await pending.future
        except TimeoutError:
            raise AmiTimeout(f"AMI {name}: no complete response within {timeout:g} s") from None
        except OSError as exc:
            raise AmiDisconnected(f"AMI {name}: connection lost: {exc}") from exc
        finally:
            self._pending.pop(action_id, None)
        if not response.ok:
            raise AmiActionFailed(response)
        return response

    async def close(self) -> None:
        """Log off, stop the supervisor task, fail pending actions, end subscriptions."""
        if self._closing:
            return
        self._closing = True  # from here the supervisor takes a dropped connection as final
        conn, task = self._conn, self._task
        if conn is not None and task is not None and not task.done():
            with contextlib.suppress(AmiError):
                await self._request(conn, "Logoff", 1.0, {})
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])  # raises CancelledError if close() itself is cancelled
        for t in list(self._filter_tasks):
            t.cancel()
        if self._filter_tasks:
            await asyncio.wait(list(self._filter_tasks))
        await self._detach("client closed", emit=False)
        for sub in list(self._subscriptions):
            sub.end()
        self._subscriptions.clear()

    async def __aenter__(self) -> AmiClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- connection lifecycle (runs in the one supervisor task) -------------------------------

    async def _open(self) -> tuple[_Connection, list[AmiEvent]]:
        """Connect, check the banner and log in, all within ``connect_timeout``."""
        where = f"{self.host}:{self.port}"
        try:
            async with asyncio.timeout(self._connect_timeout):
                reader, writer = await asyncio.open_connection(
                    self.host, self.port, limit=_MAX_MESSAGE
                )
                done = False
                try:
                    result = await self._login(reader, writer)
                    done = True
                    return result
                finally:
                    if not done:
                        writer.close()
        except TimeoutError:
            raise AmiError(f"AMI {where}: no login within {self._connect_timeout:g} s") from None
        except asyncio.IncompleteReadError:
            raise AmiDisconnected(f"AMI {where}: connection closed during login") from None
        except (asyncio.LimitOverrunError, ValueError) as exc:  # ValueError: readline() overrun
            raise AmiError(f"AMI {where}: malformed greeting or login answer: {exc}") from exc
        except OSError as exc:
            raise AmiDisconnected(f"AMI {where}: cannot connect: {exc}") from exc

    async def _login(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[_Connection, list[AmiEvent]]:
        banner = (await reader.readline()).decode("utf-8", errors="replace").strip()
        if not banner.startswith("Asterisk Call Manager"):
            raise AmiError(f"AMI {self.host}:{self.port}: not an AMI server (banner {banner!r})")
        self.banner = banner
        action_id = f"{self._id_prefix}-{next(self._ids)}"
        fields = {"Username": self.username, "Secret": self._secret, "Events": self._events}
        writer.write(encode_action("Login", action_id, fields))
        await writer.drain()
        early: list[AmiEvent] = []
        while True:
            headers = parse_message((await reader.readuntil(SEPARATOR))[: -len(SEPARATOR)])
            if not headers:
                continue
            if headers[0][0].lower() == "event":
                early.append(AmiEvent(headers))
                continue
            response = AmiResponse(headers, action="Login")
            if response.action_id != action_id:
                continue
            if not response.ok:
                raise AmiLoginRefused(
                    f"AMI {self.host}:{self.port}: login refused for user {self.username!r}: "
                    f"{response.message or response.name}"
                )
            await self._send_filters(reader, writer, early)
            return _Connection(reader, writer), early

    async def _send_filters(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, early: list[AmiEvent]
    ) -> None:
        """Right after login: one ``Filter`` per event name subscribed; wait for the answers
        (events arriving meanwhile are kept in ``early``)."""
        asked: dict[str, str] = {}
        for name in self._filter_names():
            action_id = f"{self._id_prefix}-{next(self._ids)}"
            asked[action_id] = name
            fields = {"Operation": "Add", "Filter": f"Event: {name}"}
            writer.write(encode_action("Filter", action_id, fields))
        if not asked:
            return
        await writer.drain()
        while asked:
            headers = parse_message((await reader.readuntil(SEPARATOR))[: -len(SEPARATOR)])
            if not headers:
                continue
            if headers[0][0].lower() == "event":
                early.append(AmiEvent(headers))
                continue
            response = AmiResponse(headers, action="Filter")
            name = asked.pop(response.action_id or "", "")
            if name and not response.ok:
                log.error(
                    "AMI filter for %s refused (%s): its events may be missed",
                    name,
                    response.message or response.name,
                )

    def _attach(self, conn: _Connection, early: list[AmiEvent]) -> None:
        self._conn = conn
        log.info("AMI connected to %s:%s (%s)", self.host, self.port, self.banner)
        self._dispatch(synthetic_event(CONNECTED))
        for event in early:
            self._dispatch(event)

    async def _detach(self, reason: str, *, emit: bool = True) -> None:
        conn, self._conn = self._conn, None
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(
                    AmiDisconnected(f"AMI {pending.action}: connection lost ({reason})")
                )
        if conn is not None:
            conn.writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await conn.writer.wait_closed()
            if emit:
                log.warning("AMI %s:%s disconnected: %s", self.host, self.port, reason)
                self._dispatch(synthetic_event(DISCONNECTED, Reason=reason))

    async def _supervise(self) -> None:
        low, high = self._backoff
        while True:
            conn = self._conn
            if conn is not None:
                reason = await self._read_loop(conn)
                if self._closing:
                    return
                await self._detach(reason)
            delay = low
            while self._conn is None:
                await asyncio.sleep(delay)
                try:
                    conn, early = await self._open()
                except AmiError as exc:
                    log.warning("AMI reconnect failed (next try in %g s): %s", delay, exc)
                    delay = min(delay * 2, high)
                    continue
                self._attach(conn, early)

    async def _read_loop(self, conn: _Connection) -> str:
        """Read and route messages until the connection ends; return why it ended."""
        ping_sent = False
        while True:
            try:
                async with asyncio.timeout(self._ping_interval):
                    frame = await conn.reader.readuntil(SEPARATOR)
            except TimeoutError:
                if ping_sent:
                    return f"no answer to a keep-alive Ping within {self._ping_interval:g} s"
                ping_sent = True
                with contextlib.suppress(OSError):
                    conn.writer.write(encode_action("Ping", f"{self._id_prefix}-keepalive", {}))
                continue
            except asyncio.IncompleteReadError:
                return "connection closed by Asterisk"
            except asyncio.LimitOverrunError:
                return f"a message exceeded {_MAX_MESSAGE} bytes"
            except OSError as exc:
                return f"read error: {exc}"
            ping_sent = False
            try:
                self._route(parse_message(frame[: -len(SEPARATOR)]))
            except Exception:  # a bug handling one message must not kill the connection
                log.exception("AMI: failed to handle message %r", frame[:200])

    def _route(self, headers: Headers) -> None:
        if not headers:
            return
        kind = headers[0][0].lower()
        if kind == "response":
            response = AmiResponse(headers)
            pending = self._pending.get(response.action_id)
            if pending is None or pending.future.done():
                return  # keep-alive Ping answer, or the caller already timed out
            response = replace(response, action=pending.action)
            if response.ok and (response.get("EventList") or "").lower() == "start":
                pending.response = response
            else:
                pending.future.set_result(response)
        elif kind == "event":
            event = AmiEvent(headers)
            pending = self._pending.get(event.get("ActionID") or "")
            if pending is not None and pending.response is not None:
                pending.events.append(event)
                complete = (event.get("EventList") or "").lower() == "complete"
                if complete and not pending.future.done():
                    pending.future.set_result(replace(pending.response, events=pending.events))
                return
            self._dispatch(event)
        else:
            log.debug("AMI: ignoring a message that is neither Response nor Event: %r", headers)

    def _dispatch(self, event: AmiEvent) -> None:
        for sub in list(self._subscriptions):
            sub.offer(event)
