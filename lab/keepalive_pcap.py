"""The lab's SIPp phones keep their media alive, as real phones do.

Asterisk ends a call when no RTP has reached it for ``rtp_timeout`` seconds
(``asterisk_conf/pjsip.conf``, 30 s): a phone whose network dropped. A real phone sends RTP
(or RTCP, or comfort noise) all the time; the lab's SIPp callers and agent phones send audio
only to press a key or to talk, so a SIPp caller waiting silently in a queue would look dead.

So every ``KEEPALIVE_MS`` of quiet a live SIPp phone replays a one-packet pcap: a UDP datagram
of four NUL bytes to the call's RTP port. Asterisk counts it as media received (its RTP read
returns, so the channel's last-received time moves on) and drops it without a warning (a
packet shorter than an RTP header made only of NULs is a keep-alive, ``res_rtp_asterisk``); it
is not audio, so nothing reaches the other party. One short play at a time, never one long
play per call: SIPp sends pcaps through a raw socket per play, and every open raw UDP socket
gets a copy of every UDP packet on the host (1,000 long plays would copy each RTP packet 1,000
times). A phone that stops these plays (``lab.sipp_scenario.Vanish``) is a dead phone.
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path

#: a live SIPp phone's media reaches Asterisk at least this often (rtp_timeout is 30 s)
KEEPALIVE_MS = 5_000
PCAP = Path(tempfile.gettempdir()) / "tongdai-dtmf-pcaps" / "keepalive.pcap"
_PAYLOAD = b"\x00" * 4


def keepalive_pcap() -> Path:
    """The one-packet pcap (Ethernet/IPv4/UDP, like SIPp's own pcaps); built once, cached."""
    if PCAP.exists():
        return PCAP
    udp = struct.pack("!HHHH", 40000, 6000, 8 + len(_PAYLOAD), 0) + _PAYLOAD
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
        bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]),
    )  # fmt: skip
    frame = b"\x00" * 12 + b"\x08\x00" + ip + udp
    data = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    data += struct.pack("<IIII", 0, 0, len(frame), len(frame)) + frame
    PCAP.parent.mkdir(parents=True, exist_ok=True)
    tmp = PCAP.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(PCAP)
    return PCAP


def keepalive_xml() -> str:
    """A SIPp ``<nop>`` that sends one keep-alive (returns at once; the play runs alone)."""
    return f'\n  <nop><action><exec play_pcap_audio="{keepalive_pcap()}"/></action></nop>'


def bye_wait_xml(
    total_ms: int,
    *,
    prefix: str,
    on_bye: str,
    on_timeout: str | None = None,
    quiet_ms: int = 0,
    between: Callable[[int], str] | None = None,
) -> str:
    """Wait up to ``total_ms`` for a BYE while keeping the media alive: ``<recv>`` of at most
    ``KEEPALIVE_MS`` each (the first one shorter by ``quiet_ms``, the time already spent
    without media), a keep-alive between them. A BYE jumps to label ``on_bye``; no BYE at all
    jumps to ``on_timeout`` (None: the call fails, as a plain ``<recv timeout>`` does).
    ``between(i)``: the XML sent after the i-th wait instead of a keep-alive (media too)."""
    chunks: list[int] = []
    left, first = max(1, total_ms), max(1, KEEPALIVE_MS - quiet_ms)
    while left > 0:
        chunk = min(left, first if not chunks else KEEPALIVE_MS)
        chunks.append(chunk)
        left -= chunk
    parts = []
    for i, ms in enumerate(chunks):
        last = i == len(chunks) - 1
        nxt = on_timeout if last else f"{prefix}{i + 1}"
        timeout = f' ontimeout="{nxt}"' if nxt else ""
        parts.append(f'\n  <recv request="BYE" timeout="{ms}"{timeout} next="{on_bye}"/>')
        if not last:
            media = between(i) if between is not None else keepalive_xml()
            parts.append(f'\n  <label id="{prefix}{i + 1}"/>{media}')
    return "".join(parts)
