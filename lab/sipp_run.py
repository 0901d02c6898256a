"""SIPp harness for the lab's simulated callers and the end-to-end tests: real SIP calls
with real DTMF, and a room of agent phones.

Callers (UAC)::

    xml = build_caller_scenario([Wait(500), Key("5"), Keys("11220#"), ExpectHangup(10_000)])
    result = await run_callers(xml, target=SipTarget("127.0.0.1", 5070, "100"), calls=5)
    assert result.ok, result.describe()
    result.callers          # the From numbers used, one per call, in call order

Keys: ``Key`` replays one RFC 4733 pcap (what carriers send; repeated digits over replayed pcaps are
lost because every replay carries the same RTP timestamps); ``Keys`` sends one SIP INFO
(application/dtmf-relay) per digit, which Asterisk accepts on an rfc4733 endpoint, repeats and all.

Agents (UAS)::

    with AgentPhones(port=5081, answer_after_ms=300, talk_ms=2000) as phones:
        ...
        await phones.wait_answered(1, timeout_s=10)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from lab.keepalive_pcap import bye_wait_xml
from lab.sipp_scenario import (
    ExpectHangup,
    HangUp,
    Hold,
    Key,
    Keys,
    Speak,
    Step,
    Vanish,
    Wait,
    build_caller_scenario,
)

__all__ = [
    "AgentPhones",
    "ExpectHangup",
    "HangUp",
    "Hold",
    "Key",
    "Keys",
    "RtpPacket",
    "SipTarget",
    "SippResult",
    "Speak",
    "Step",
    "Vanish",
    "Wait",
    "build_caller_scenario",
    "run_callers",
    "sipp_available",
    "write_rtp_pcap",
]

SIPP = shutil.which("sipp") or "/usr/bin/sipp"
UAS_TEMPLATE = Path(__file__).resolve().parent / "sipp" / "agent_phones_uas.xml"
#: the same phones, plus slow answerers and an SDP port of our choosing (AgentPhones options)
FAULTS_UAS_TEMPLATE = Path(__file__).resolve().parent / "sipp" / "agent_phones_faults_uas.xml"
_reserved: set[int] = set()  # ports handed out by this process (several sipp runs at once)


def sipp_available() -> str | None:
    """None if SIPp is installed, else why not (for pytest.skip)."""
    return None if Path(SIPP).exists() else "sipp is not installed (apt-get install sip-tester)"


@dataclass(frozen=True)
class SipTarget:
    """Where callers dial: ``sip:<extension>@<host>:<port>`` over UDP."""

    host: str
    port: int
    extension: str


@dataclass
class SippResult:
    """Outcome of one SIPp caller run."""

    calls: int
    successful: int
    failed: int
    returncode: int
    callers: list[str]
    workdir: Path
    stderr_tail: str = ""
    errors_tail: str = ""
    timed_out: bool = False
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.timed_out and self.failed == 0 and self.successful == self.calls

    def describe(self) -> str:
        return (
            f"sipp: {self.successful}/{self.calls} successful, {self.failed} failed, "
            f"rc={self.returncode}, timed_out={self.timed_out}, {self.elapsed_s:.1f} s "
            f"(TONGDAI_KEEP_SIPP=1 keeps {self.workdir})\n"
            f"--- stdout tail\n{self.stderr_tail}\n--- unexpected messages\n{self.errors_tail}"
        )


def free_udp_port(span: int = 1, low: int = 40000, high: int = 59000) -> int:
    """An even port p with p..p+span-1 free on 127.0.0.1 for UDP (and not handed out before)."""
    for _ in range(500):
        port = random.randrange(low, high, 2)
        ports = range(port, port + span)
        if any(p in _reserved for p in ports):
            continue
        socks = []
        try:
            for p in ports:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
        _reserved.update(ports)
        return port
    raise RuntimeError("no free UDP port range found")


def release_udp_ports(port: int, span: int = 1) -> None:
    """Give back ports from :func:`free_udp_port` once their SIPp process has exited."""
    _reserved.difference_update(range(port, port + span))


def _tail(path: Path, lines: int = 25) -> str:
    if not path.exists():
        return ""
    text = path.read_text(encoding="utf-8", errors="replace")
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)  # SIPp's screen uses ANSI escapes
    return "\n".join(line for line in text.splitlines() if line.strip())[-4000:]


def _parse_stats(path: Path) -> tuple[int, int]:
    """(successful, failed) from the last row of a SIPp -trace_stat CSV."""
    if not path.exists():
        return 0, 0
    rows = [r for r in path.read_text(errors="replace").splitlines() if r.strip()]
    if len(rows) < 2:
        return 0, 0
    header, last = rows[0].split(";"), rows[-1].split(";")
    values = dict(zip(header, last, strict=False))
    return int(values.get("SuccessfulCall(C)", 0)), int(values.get("FailedCall(C)", 0))


def _caller_numbers(calls: int, prefix: str) -> list[str]:
    """Unique per run: prefix + 4 random digits + 4-digit call index (10 digits with "09")."""
    run = f"{secrets.randbelow(10_000):04d}"
    return [f"{prefix}{run}{i:04d}" for i in range(calls)]


def _injection_file(path: Path, callers: Sequence[str], names: Sequence[str] | None) -> None:
    lines = ["SEQUENTIAL"]
    for i, number in enumerate(callers):
        name = names[i] if names is not None else number
        if any(c in number + name for c in ';"\r\n') or not number:
            raise ValueError(f'caller {number!r}/{name!r}: no ; " or line breaks allowed')
        lines.append(f"{number};{name}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


async def run_callers(
    scenario_xml: str,
    *,
    target: SipTarget,
    calls: int = 1,
    rate: float = 10,
    concurrent: int | None = None,
    caller_prefix: str = "09",
    callers: Sequence[str] | None = None,
    caller_names: Sequence[str] | None = None,
    local_port: int | None = None,
    timeout_s: float = 120,
) -> SippResult:
    """Run ``calls`` SIPp callers (``rate`` new calls/s, at most ``concurrent`` at once).

    Each call's From number is ``callers[i]`` (default: unique numbers from ``caller_prefix``) and
    its display name ``caller_names[i]`` (default: the number). The run is killed after
    ``timeout_s``. Logs are summarised in the result; the work folder is removed afterwards
    unless the environment variable TONGDAI_KEEP_SIPP is set.
    """
    numbers = list(callers) if callers is not None else _caller_numbers(calls, caller_prefix)
    if len(numbers) != calls or (caller_names is not None and len(caller_names) != calls):
        raise ValueError("callers/caller_names must have one entry per call")
    workdir = Path(tempfile.mkdtemp(prefix="sipp-callers-"))
    scenario = workdir / "caller.xml"
    scenario.write_text(scenario_xml, encoding="utf-8")
    _injection_file(workdir / "callers.csv", numbers, caller_names)
    media_port = free_udp_port(span=4)
    control_port = free_udp_port(span=1)
    args = [
        SIPP, f"{target.host}:{target.port}", "-sf", str(scenario), "-s", target.extension,
        "-inf", str(workdir / "callers.csv"), "-i", "127.0.0.1", "-mi", "127.0.0.1",
        "-mp", str(media_port), "-cp", str(control_port), "-m", str(calls), "-r", str(rate),
        "-rp", "1000", "-nostdin", "-timeout", f"{max(1, int(timeout_s))}s", "-timeout_error",
        "-trace_stat", "-stf", str(workdir / "stat.csv"), "-fd", "1",
        "-trace_err", "-error_file", str(workdir / "errors.log"),
        "-trace_screen", "-screen_file", str(workdir / "screen.log"),
    ]  # fmt: skip
    # never SIPp's default 5060: it would take instance 0's SIP port from its Asterisk while
    # that lab starts (another lab's callers running meanwhile)
    args += ["-p", str(local_port if local_port is not None else free_udp_port(span=1))]
    if concurrent is not None:
        args += ["-l", str(concurrent)]
    started = time.monotonic()
    timed_out = False
    with (workdir / "stdout.log").open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=workdir
        )
        try:
            async with asyncio.timeout(timeout_s + 15):
                returncode = await process.wait()
        except TimeoutError:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGKILL)
            returncode = await process.wait()
        finally:
            if process.returncode is None:  # we were cancelled: never leave sipp behind
                process.send_signal(signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    await asyncio.shield(process.wait())
    release_udp_ports(media_port, 4)
    release_udp_ports(control_port)
    successful, failed = _parse_stats(workdir / "stat.csv")
    result = SippResult(
        calls=calls,
        successful=successful,
        failed=failed,
        returncode=returncode,
        callers=numbers,
        workdir=workdir,
        stderr_tail=_tail(workdir / "stdout.log") or _tail(workdir / "screen.log"),
        errors_tail=_tail(workdir / "errors.log"),
        timed_out=timed_out,
        elapsed_s=time.monotonic() - started,
    )
    if not os.environ.get("TONGDAI_KEEP_SIPP"):  # set it to keep SIPp's files for a post-mortem
        shutil.rmtree(workdir, ignore_errors=True)
    return result


@dataclass
class AgentCounts:
    """What the agent phones saw, from SIPp's <log> lines."""

    ringing: int = 0
    answered: int = 0
    agent_hung_up: int = 0
    caller_hung_up: int = 0
    cancelled: int = 0
    answered_uris: list[str] = field(default_factory=list)  # "sip:agent101" per answered call
    ringing_uris: list[str] = field(default_factory=list)  # per INVITE received, in order
    cancelled_uris: list[str] = field(default_factory=list)  # per CANCEL while ringing


@dataclass(frozen=True)
class RtpPacket:
    """One RTP packet the agent phones' sink received (``AgentPhones(rtp_sink=True)``)."""

    source: tuple[str, int]
    payload_type: int
    seq: int
    ssrc: int
    payload: bytes


def write_rtp_pcap(
    path: Path,
    payloads: Sequence[bytes],
    *,
    payload_type: int = 0,
    ptime_ms: int = 20,
    ssrc: int = 0x7D0A1022,
    first_seq: int = 20_000,
    first_ts: int = 400_000,
) -> Path:
    """A pcap SIPp replays with ``<exec play_pcap_audio=...>``: one RTP packet per payload,
    ``ptime_ms`` apart (Ethernet/IPv4/UDP, like SIPp's own pcaps; SIPp rewrites the addresses
    and ports, keeps the RTP header and payload)."""
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for i, payload in enumerate(payloads):
        samples = 8 * ptime_ms  # 8 kHz
        rtp = struct.pack(
            "!BBHII",
            0x80,
            payload_type & 0x7F,
            (first_seq + i) & 0xFFFF,
            (first_ts + i * samples) & 0xFFFFFFFF,
            ssrc,
        )
        udp = struct.pack("!HHHH", 40000, 6000, 8 + len(rtp) + len(payload), 0) + rtp + payload
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xFFFF, 0, 64, 17, 0,
            bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]),
        )  # fmt: skip
        frame = b"\x00" * 12 + b"\x08\x00" + ip + udp
        at_us = i * ptime_ms * 1000
        out += struct.pack("<IIII", at_us // 1_000_000, at_us % 1_000_000, len(frame), len(frame))
        out += frame
    path.write_bytes(bytes(out))
    return path


class AgentPhones:
    """A SIPp UAS on 127.0.0.1:``port`` answering every INVITE (any user part).

    ``slow_agents``: endpoints (user parts, e.g. ``agent301``) whose phones ring for
    ``slow_answer_ms`` before answering (longer than a queue's ring timeout: ring-no-answer).
    ``rtp_sink``: the answer's SDP names a UDP port this object listens on, so the test sees
    the audio Asterisk sends to the agents (``rtp_packets``); SIPp sends no audio then.
    """

    def __init__(
        self,
        port: int = 5080,
        answer_after_ms: int = 300,
        talk_ms: int = 8000,
        *,
        slow_agents: Collection[str] = (),
        slow_answer_ms: int = 60_000,
        rtp_sink: bool = False,
    ) -> None:
        self.port = port
        self.answer_after_ms = answer_after_ms
        self.talk_ms = talk_ms
        self.slow_agents = tuple(slow_agents)
        self.slow_answer_ms = slow_answer_ms
        self.rtp_sink = rtp_sink
        if any(not re.fullmatch(r"[A-Za-z0-9_.-]+", a) for a in self.slow_agents):
            raise ValueError(f"slow_agents: SIP user parts only, got {self.slow_agents!r}")
        self.workdir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._final: AgentCounts | None = None
        self._ports: tuple[int, ...] = ()
        self._sink: socket.socket | None = None
        self._sink_port = 0
        self._sink_thread: threading.Thread | None = None
        self._packets: list[RtpPacket] = []
        self._packets_lock = threading.Lock()

    def start(self) -> None:
        """Start the UAS and wait until it listens on ``port``."""
        if self._process is not None:
            raise RuntimeError("already started")
        if self._listening():
            raise RuntimeError(f"UDP port {self.port} is already in use")
        self._final = None
        self.workdir = Path(tempfile.mkdtemp(prefix="sipp-agents-"))
        faults = bool(self.slow_agents) or self.rtp_sink
        xml = (FAULTS_UAS_TEMPLATE if faults else UAS_TEMPLATE).read_text(encoding="utf-8")
        xml = xml.replace("{{ANSWER_AFTER_MS}}", str(max(1, self.answer_after_ms)))
        talk = bye_wait_xml(self.talk_ms, prefix="talk", on_bye="11", on_timeout="20")
        xml = xml.replace("{{TALK}}", talk)
        if faults:
            slow = "|".join(re.escape(a) for a in self.slow_agents) or "no-slow-agent-here"
            xml = xml.replace("{{SLOW_RE}}", slow)
            xml = xml.replace("{{SLOW_ANSWER_MS}}", str(max(1, self.slow_answer_ms)))
            if self.rtp_sink:
                self._start_sink()
            rtp_port = str(self._sink_port) if self.rtp_sink else "[media_port]"
            xml = xml.replace("{{RTP_PORT}}", rtp_port)
        (self.workdir / "agents.xml").write_text(xml, encoding="utf-8")
        self._ports = (free_udp_port(span=4), free_udp_port(span=1))
        args = [
            SIPP, "-sf", str(self.workdir / "agents.xml"), "-i", "127.0.0.1", "-p", str(self.port),
            "-mi", "127.0.0.1", "-mp", str(self._ports[0]), "-cp", str(self._ports[1]), "-nostdin",
            "-trace_logs", "-log_file", str(self.workdir / "calls.log"),
            "-trace_err", "-error_file", str(self.workdir / "errors.log"),
        ]  # fmt: skip
        with (self.workdir / "stdout.log").open("wb") as out:
            self._process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=self.workdir, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 5
        while not self._listening():
            if self._process.poll() is not None or time.monotonic() > deadline:
                tail = _tail(self.workdir / "stdout.log")
                self.stop()
                raise RuntimeError(f"agent phones (sipp UAS) did not start on {self.port}:\n{tail}")
            time.sleep(0.05)

    def _start_sink(self) -> None:
        port = free_udp_port(span=2)  # RTP + RTCP, as an SDP port implies
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind(("127.0.0.1", port))
        sink.settimeout(0.2)
        self._sink, self._sink_port = sink, port
        with self._packets_lock:
            self._packets = []
        self._sink_thread = threading.Thread(
            target=self._receive, args=(sink,), name=f"rtp sink {port}", daemon=True
        )
        self._sink_thread.start()

    def _receive(self, sink: socket.socket) -> None:
        while self._sink is sink:
            try:
                data, source = sink.recvfrom(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            if len(data) < 12 or data[0] >> 6 != 2:
                continue  # not RTP version 2
            csrc = (data[0] & 0x0F) * 4
            pt, seq, _, ssrc = data[1] & 0x7F, *struct.unpack_from("!HII", data, 2)
            packet = RtpPacket((source[0], source[1]), pt, seq, ssrc, data[12 + csrc :])
            with self._packets_lock:
                self._packets.append(packet)

    def _stop_sink(self) -> None:
        sink, thread, self._sink = self._sink, self._sink_thread, None
        self._sink_thread = None
        if thread is not None:
            thread.join(timeout=2)
        if sink is not None:
            sink.close()
            release_udp_ports(self._sink_port, 2)

    @property
    def rtp_packets(self) -> list[RtpPacket]:
        """RTP received so far by the sink (all calls, in arrival order); kept after stop()."""
        with self._packets_lock:
            return list(self._packets)

    def _listening(self) -> bool:
        # Read the kernel's table rather than probing with bind(): a probe could steal the port
        # from SIPp at the very moment it binds.
        wanted = f":{self.port:04X}"
        table = Path("/proc/net/udp").read_text().splitlines()[1:]
        return any(line.split()[1].endswith(wanted) for line in table if line.strip())

    @property
    def counts(self) -> AgentCounts:
        """Calls seen so far (after stop(): the final tally)."""
        if self._final is not None:
            return self._final
        counts = AgentCounts()
        log = self.workdir / "calls.log" if self.workdir else None
        if log is None or not log.exists():
            return counts
        for line in log.read_text(errors="replace").splitlines():
            word, _, rest = line.partition(" ")
            if word == "RINGING":
                counts.ringing += 1
                counts.ringing_uris.append(rest.split()[-1].removeprefix("INVITE "))
            elif word == "ANSWERED":
                counts.answered += 1
                counts.answered_uris.append(rest.split()[-1].removeprefix("INVITE "))
            elif word == "AGENT_HUNG_UP":
                counts.agent_hung_up += 1
            elif word == "CALLER_HUNG_UP":
                counts.caller_hung_up += 1
            elif word == "CANCELLED":
                counts.cancelled += 1
                counts.cancelled_uris.append(rest.split()[-1].removeprefix("INVITE "))
        return counts

    @property
    def answered(self) -> int:
        return self.counts.answered

    async def wait_answered(self, n: int, timeout_s: float = 30) -> AgentCounts:
        """Poll until ``n`` calls were answered; TimeoutError otherwise."""
        return await self.wait_for(lambda c: c.answered >= n, timeout_s)

    async def wait_for(
        self, predicate: Callable[[AgentCounts], bool], timeout_s: float = 30
    ) -> AgentCounts:
        """Poll ``predicate(counts)`` until true; TimeoutError after ``timeout_s``."""
        async with asyncio.timeout(timeout_s):
            while not predicate(counts := self.counts):  # noqa: ASYNC110 - polls SIPp's log file
                await asyncio.sleep(0.05)
        return counts

    def stop(self) -> None:
        """Stop the UAS we started (its pid only); keep the final counts, remove its files."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if self._ports:
            release_udp_ports(self._ports[0], 4)
            release_udp_ports(self._ports[1])
            self._ports = ()
        self._stop_sink()
        if self.workdir is not None:
            self._final = self.counts
            if not os.environ.get("TONGDAI_KEEP_SIPP"):
                shutil.rmtree(self.workdir, ignore_errors=True)
                self.workdir = None

    def __enter__(self) -> AgentPhones:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
