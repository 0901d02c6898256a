"""The AGI protocol on one channel: headers, commands with timeouts, hang-up handling.

``AgiChannel`` speaks AGI over any pair of asyncio streams (a FastAGI socket or a plain AGI's
stdin/stdout). It implements ``AgiSession``, the small interface the menu logic talks to;
``ivr.fake.FakeAgiSession`` implements the same for unit tests.

Asterisk quirks this handles:
- With ``AGISIGHUP`` (the default) Asterisk writes a bare ``HANGUP`` line when the caller hangs up,
  *at any moment*, including between a command and its ``200`` reply. Treating that line as the
  reply shifts every later reply by one (panoramisk's defect); here it only sets a flag.
- After a hang-up, commands answer ``511 Command Not Permitted on a dead channel``.
- A caller hanging up *during* a command (keying a code in ``GET DATA``, waiting for a key,
  a prompt playing) gets ``200 result=-1`` first and the ``HANGUP`` line only after it, and
  ``-1`` also means "failed" (a missing prompt): a NOOP, answered after that line, tells the
  two apart, so a hang-up is never taken for digits ``-1`` or for silence.
- Error replies can span lines (``520-Invalid command syntax...`` ... ``520 End of proper usage.``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from tongdai.errors import AgiHangup, TelephonyError

log = logging.getLogger(__name__)

MAX_HEADER_LINES = 200
_REPLY_RE = re.compile(r"^(\d{3})([ -])(.*)$")
_RESULT_RE = re.compile(r"result=(-?\d*)(?:\s*\((.*)\))?")
DIGITS = "0123456789*#"


#: called with (command line, seconds) after every AGI command (the engine's metrics)
COMMAND_OBSERVERS: list[Callable[[str, float], None]] = []


class AgiProtocolError(TelephonyError):
    """The peer does not speak AGI (garbage, oversized line, missing headers)."""


@dataclass(frozen=True)
class AgiReply:
    code: int
    result: str  # the text after ``result=`` (may be "-1", "0", a digit's code, digits)
    data: str  # the text in parentheses, e.g. ``(timeout)`` or a variable's value
    raw: str

    @property
    def int_result(self) -> int:
        try:
            return int(self.result)
        except ValueError:
            return 0


#: caller ids Asterisk gives for a hidden or missing number
NO_NUMBER = frozenset({"", "unknown", "anonymous"})


def caller_number(env: Mapping[str, str]) -> str | None:
    """The caller's number from the AGI environment, None when hidden or missing."""
    raw = env.get("agi_callerid", "")
    return None if raw in NO_NUMBER else raw


class AgiSession(Protocol):
    """What the menu logic may do with a call."""

    env: Mapping[str, str]

    async def stream_file(self, path: str, escape: str = DIGITS) -> str | None:
        """Play a prompt; return the key that interrupted it (barge-in) or None."""

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        """Wait for one key; None on timeout."""

    async def get_data(self, path: str, timeout_ms: int, max_digits: int) -> tuple[str, bool]:
        """Play a prompt and collect up to ``max_digits`` keys ended by ``#``;
        returns (digits, timed_out). A hang-up while keying raises AgiHangup (as every
        method does when the caller hangs up), never returns digits."""

    async def record_file(
        self, path: str, fmt: str, escape: str, timeout_ms: int, silence_s: int
    ) -> str | None:
        """Record until ``escape`` key, silence or timeout; returns the key pressed or None."""

    async def set_variable(self, name: str, value: str) -> None: ...

    async def get_variable(self, name: str) -> str | None: ...

    async def hangup(self) -> None: ...

    async def verbose(self, message: str) -> None: ...


async def read_headers(reader: asyncio.StreamReader, timeout: float) -> dict[str, str]:
    """Read the ``agi_*: value`` block up to the blank line, bounded in lines, bytes and time."""
    env: dict[str, str] = {}
    async with asyncio.timeout(timeout):
        for _ in range(MAX_HEADER_LINES):
            line = await _read_line(reader)
            if line == "":
                if not env:
                    raise AgiProtocolError("empty AGI header block")
                return env
            key, sep, value = line.partition(":")
            if not sep or not key.startswith("agi_"):
                raise AgiProtocolError(f"not an AGI header line: {line[:80]!r}")
            env[key.strip()] = value.strip()
    raise AgiProtocolError(f"more than {MAX_HEADER_LINES} AGI header lines")


async def _read_line(reader: asyncio.StreamReader) -> str:
    try:
        raw = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        raise AgiHangup("connection closed by Asterisk") from exc
    except asyncio.LimitOverrunError as exc:
        raise AgiProtocolError("line longer than the reader's limit") from exc
    except ValueError as exc:  # StreamReader raises ValueError when the limit is exceeded
        raise AgiProtocolError(f"unreadable line: {exc}") from exc
    return raw.decode("utf-8", errors="replace").rstrip("\r\n")


class AgiChannel:
    """One AGI conversation. Not safe for concurrent commands (AGI is strictly turn-based)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        env: Mapping[str, str],
        *,
        command_timeout: float = 60.0,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.env = env
        self.command_timeout = command_timeout
        self.hung_up = False

    async def command(self, line: str, *, timeout: float | None = None) -> AgiReply:
        """Send one command and return its reply; raises AgiHangup on a dead channel."""
        if "\n" in line or "\r" in line:
            raise ValueError("AGI command must be one line")
        self._writer.write(line.encode("utf-8") + b"\n")
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout or self.command_timeout):
                await self._writer.drain()
                reply = await self._read_reply()
        except (ConnectionError, BrokenPipeError) as exc:
            self.hung_up = True
            raise AgiHangup(f"connection lost during {line.split(' ', 1)[0]}") from exc
        except TimeoutError as exc:
            raise TelephonyError(f"AGI command timed out: {line[:60]!r}") from exc
        finally:
            for observe in COMMAND_OBSERVERS:
                observe(line, time.perf_counter() - started)
        if reply.code == 511:
            self.hung_up = True
            raise AgiHangup("channel is dead")
        if reply.code != 200:
            raise TelephonyError(f"AGI command {line[:60]!r} failed: {reply.raw}")
        if reply.result == "-1" and self.hung_up:
            # -1 is how Asterisk reports a failure or a hang-up during the command
            raise AgiHangup("caller hung up")
        return reply

    async def _read_reply(self) -> AgiReply:
        lines: list[str] = []
        while True:
            line = await _read_line(self._reader)
            if line.strip() == "HANGUP":
                self.hung_up = True
                continue
            m = _REPLY_RE.match(line)
            if m is None:
                if lines:  # continuation of a multi-line reply
                    lines.append(line)
                    continue
                raise AgiProtocolError(f"unexpected AGI line: {line[:80]!r}")
            code, sep, rest = int(m.group(1)), m.group(2), m.group(3)
            lines.append(line)
            if sep == "-":
                continue
            r = _RESULT_RE.search(rest)
            result = r.group(1) if r else ""
            data = (r.group(2) or "") if r else ""
            return AgiReply(code=code, result=result, data=data, raw="\n".join(lines))

    # --- AgiSession -------------------------------------------------------------------------

    async def _check_failure(self, reply: AgiReply, what: str) -> bool:
        """For a reply of ``result=-1``: raise AgiHangup if the caller hung up during the
        command, else return True (the command failed, e.g. a missing prompt: logged)."""
        if reply.result != "-1":
            return False
        if not self.hung_up:
            await self.command("NOOP")  # allowed on a dead channel; answered after HANGUP
        if self.hung_up:
            raise AgiHangup(f"caller hung up during {what}")
        log.warning("AGI %s failed on a live channel: %s", what, reply.raw)
        return True

    async def stream_file(self, path: str, escape: str = DIGITS) -> str | None:
        reply = await self.command(f'STREAM FILE {_arg(path)} "{escape}"')
        await self._check_failure(reply, "a prompt")
        return _digit(reply.int_result)

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        reply = await self.command(
            f"WAIT FOR DIGIT {int(timeout_ms)}", timeout=timeout_ms / 1000 + self.command_timeout
        )
        await self._check_failure(reply, "a wait for a key")
        return _digit(reply.int_result)

    async def get_data(self, path: str, timeout_ms: int, max_digits: int) -> tuple[str, bool]:
        reply = await self.command(f"GET DATA {_arg(path)} {int(timeout_ms)} {int(max_digits)}")
        if await self._check_failure(reply, "digit input"):
            return "", True  # nothing keyed (the prompt could not play): as silence
        return reply.result, reply.data == "timeout"

    async def record_file(
        self, path: str, fmt: str, escape: str, timeout_ms: int, silence_s: int
    ) -> str | None:
        reply = await self.command(
            f'RECORD FILE {_arg(path)} {fmt} "{escape}" {int(timeout_ms)} BEEP s={int(silence_s)}',
            timeout=timeout_ms / 1000 + self.command_timeout,
        )
        await self._check_failure(reply, "a recording")
        return _digit(reply.int_result)

    async def set_variable(self, name: str, value: str) -> None:
        await self.command(f'SET VARIABLE {name} "{_quote(value)}"')

    async def get_variable(self, name: str) -> str | None:
        reply = await self.command(f"GET VARIABLE {name}")
        return reply.data if reply.result == "1" else None

    async def hangup(self) -> None:
        if not self.hung_up:
            with contextlib.suppress(AgiHangup):
                await self.command("HANGUP")
            self.hung_up = True

    async def verbose(self, message: str) -> None:
        await self.command(f'VERBOSE "{_quote(message)}" 3')


def _digit(code: int) -> str | None:
    if code <= 0:
        return None
    ch = chr(code)
    return ch if ch in DIGITS else None


def _arg(value: str) -> str:
    if not value or any(c.isspace() or c == '"' for c in value):
        raise ValueError(f"unsafe AGI argument: {value!r}")
    return value


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ").replace("\r", " ")
