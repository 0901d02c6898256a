"""AMI messages: the wire format (parse/encode), message and error types, subscriber queues.

Kept apart from the connection logic in :mod:`pbx.ami` so it can be tested and reused without a
socket. Errors, all subclasses of :class:`tongdai.errors.AmiError`::

    AmiError
    ├── AmiLoginRefused     bad username/secret
    ├── AmiDisconnected     not connected, connection lost while waiting, client closed
    ├── AmiTimeout          no (complete) response within the action timeout
    └── AmiActionFailed     Asterisk answered ``Response: Error`` (``.response`` has details)
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType

from tongdai.errors import AmiError

log = logging.getLogger(__name__)

CONNECTED = "__connected__"
DISCONNECTED = "__disconnected__"
OVERFLOW = "__overflow__"
SYNTHETIC = frozenset({CONNECTED, DISCONNECTED, OVERFLOW})
SEPARATOR = b"\r\n\r\n"
_HEADER_KEY = re.compile(r"^[A-Za-z0-9_()\-./]+$")

Headers = tuple[tuple[str, str], ...]
HeaderValue = str | int | float | Sequence[str | int | float]


class AmiLoginRefused(AmiError):
    """Asterisk refused the username/secret."""


class AmiDisconnected(AmiError):
    """The AMI connection is down (or was lost while waiting, or the client was closed)."""


class AmiTimeout(AmiError):
    """No complete response arrived within the action timeout."""


class AmiActionFailed(AmiError):
    """Asterisk answered ``Response: Error``; ``response`` holds its headers."""

    def __init__(self, response: AmiResponse) -> None:
        self.response = response
        super().__init__(f"AMI {response.action} failed: {response.message or response.name}")


@dataclass(frozen=True, slots=True)
class AmiMessage:
    """Headers of one AMI message, in wire order; repeated keys (ChanVariable, Output) kept."""

    headers: Headers

    def get(self, key: str, default: str | None = None) -> str | None:
        """First value of ``key`` (case-insensitive), or ``default``."""
        wanted = key.lower()
        for name, value in self.headers:
            if name.lower() == wanted:
                return value
        return default

    def get_all(self, key: str) -> list[str]:
        """Every value of ``key`` in wire order (e.g. each ``ChanVariable`` line)."""
        wanted = key.lower()
        return [value for name, value in self.headers if name.lower() == wanted]

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None


@dataclass(frozen=True, slots=True)
class AmiEvent(AmiMessage):
    """An ``Event:`` message (or a synthetic connection-state event)."""

    @property
    def name(self) -> str:
        return self.get("Event") or ""


@dataclass(frozen=True, slots=True)
class AmiResponse(AmiMessage):
    """A ``Response:`` message, with the action that caused it and a list action's events."""

    action: str = ""
    events: list[AmiEvent] = field(default_factory=list)

    @property
    def name(self) -> str:
        """``Success``, ``Error``, ``Follows`` or ``Goodbye``."""
        return self.get("Response") or ""

    @property
    def ok(self) -> bool:
        return self.name.lower() in {"success", "follows", "goodbye"}

    @property
    def message(self) -> str:
        return self.get("Message") or ""

    @property
    def action_id(self) -> str:
        return self.get("ActionID") or ""

    @property
    def output(self) -> list[str]:
        """Lines of a ``Command`` action's output."""
        return self.get_all("Output")


def parse_message(raw: bytes) -> Headers:
    """Parse one whole AMI message (bytes between ``\\r\\n\\r\\n`` separators).

    Decoding happens on the whole message, never on a TCP chunk, so a multi-byte UTF-8 character
    split across reads survives. Invalid UTF-8 is replaced (and logged), never dropped. A line that
    is not ``Key: value`` is kept as an ``Output`` header (old-style Command output, garbage).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        log.warning("AMI message is not valid UTF-8 (%s); bad bytes replaced", exc)
        text = raw.decode("utf-8", errors="replace")
    headers: list[tuple[str, str]] = []
    for line in re.split(r"\r?\n", text):
        if not line:
            continue
        key, sep, value = line.partition(":")
        if sep and _HEADER_KEY.match(key):
            headers.append((key, value[1:] if value.startswith(" ") else value))
        elif line != "--END COMMAND--":
            headers.append(("Output", line))
    return tuple(headers)


def encode_action(name: str, action_id: str, headers: Mapping[str, HeaderValue]) -> bytes:
    lines = [f"Action: {name}", f"ActionID: {action_id}"]
    for key, value in headers.items():
        if key.lower() == "actionid":
            raise ValueError("ActionID is set by AmiClient; do not pass it")
        values = value if isinstance(value, list | tuple) else [value]
        for item in values:
            text = str(item)
            if not _HEADER_KEY.match(key) or "\r" in text or "\n" in text:
                raise ValueError(f"AMI header {key!r} is not a single line 'Key: value'")
            lines.append(f"{key}: {text}")
    if "\r" in name or "\n" in name:
        raise ValueError("AMI action name contains a line break")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def synthetic_event(name: str, **headers: str) -> AmiEvent:
    return AmiEvent((("Event", name), *headers.items()))


class AmiSubscription:
    """Events for one consumer, in arrival order, through a bounded queue.

    Use ``async for event in sub`` (ends when the client closes or :meth:`close` is called), or
    :meth:`get` / :meth:`wait_for` with a timeout. Synthetic events pass any name filter.
    """

    def __init__(
        self,
        names: frozenset[str] | None,
        maxsize: int,
        on_close: Callable[[AmiSubscription], None],
    ) -> None:
        self._on_close = on_close
        self._names = names
        self._maxsize = maxsize
        self._queue: asyncio.Queue[AmiEvent | None] = asyncio.Queue(maxsize)
        self._ended = False
        self._unreported = 0
        self.dropped = 0

    def offer(self, event: AmiEvent) -> None:
        """Queue ``event`` if it passes the filter (called by the client, in arrival order)."""
        if self._ended:
            return
        named = self._names is None or event.name in SYNTHETIC
        if not named and event.name.lower() not in (self._names or ()):
            return
        if self._unreported and self._maxsize - self._queue.qsize() >= 2:
            self._queue.put_nowait(synthetic_event(OVERFLOW, Dropped=str(self._unreported)))
            self._unreported = 0
        if self._queue.full():
            if not self.dropped:
                log.warning("AMI subscriber too slow: queue of %d full, dropping", self._maxsize)
            self.dropped += 1
            self._unreported += 1
            return
        self._queue.put_nowait(event)

    def end(self) -> None:
        """No more events will come (the client closed)."""
        if not self._ended:
            self._ended = True
            if not self._queue.full():
                self._queue.put_nowait(None)

    def close(self) -> None:
        """Stop receiving; iteration ends after the events already queued."""
        self._on_close(self)
        self.end()

    def __aiter__(self) -> AmiSubscription:
        return self

    async def __anext__(self) -> AmiEvent:
        if self._ended and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is None:
            raise StopAsyncIteration
        return item

    async def get(self, timeout_s: float) -> AmiEvent:
        """Next event; TimeoutError after ``timeout_s``, AmiDisconnected once ended."""
        async with asyncio.timeout(timeout_s):
            try:
                return await self.__anext__()
            except StopAsyncIteration:
                raise AmiDisconnected("AMI subscription ended") from None

    async def wait_for(self, predicate: Callable[[AmiEvent], bool], timeout_s: float) -> AmiEvent:
        """Consume events until one satisfies ``predicate``; TimeoutError after ``timeout_s``."""
        async with asyncio.timeout(timeout_s):
            async for event in self:
                if predicate(event):
                    return event
        raise AmiDisconnected("AMI subscription ended before the awaited event")

    async def __aenter__(self) -> AmiSubscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
