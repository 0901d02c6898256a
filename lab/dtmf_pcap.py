"""RFC 4733 key pcaps that Asterisk accepts one after another.

SIPp replays a pcap's RTP packets as they are. The ``dtmf_2833_<d>.pcap`` files shipped with SIPp
each carry fixed RTP timestamps (key 2 at 23200, key 0 at 17632, ...), and Asterisk ends a key
only if its timestamp is later than the previous key's: a second key whose pcap happens to carry
an earlier (or the same) timestamp is silently lost (measured: keys 2 then 0 arrived as "2").
So the n-th key of a call gets its own copy of the pcap with the sequence numbers and timestamps
shifted to increase with n.
"""

from __future__ import annotations

import os
import struct
import tempfile
from pathlib import Path

SIPP_PCAPS = Path("/usr/share/sip-tester")
NAMES = {"*": "star", "#": "pound", **{d: d for d in "0123456789"}}
CACHE = Path(tempfile.gettempdir()) / "tongdai-dtmf-pcaps"
_GLOBAL_HEADER = 24
_RECORD_HEADER = 16
_TS_STEP = 8000  # one second of 8 kHz timestamps per key: far more than a key lasts
_SEQ_STEP = 64


def keyed_pcap(digit: str, index: int) -> Path:
    """The pcap for ``digit`` as the ``index``-th key (0-based) of a call; built once, cached."""
    name = NAMES[digit]
    out = CACHE / f"dtmf_{name}_{index}.pcap"
    if out.exists():
        return out
    data = (SIPP_PCAPS / f"dtmf_2833_{name}.pcap").read_bytes()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(_shift(data, ts=10_000 + index * _TS_STEP, seq=1_000 + index * _SEQ_STEP))
    tmp.replace(out)
    return out


def _shift(pcap: bytes, *, ts: int, seq: int) -> bytes:
    """Rewrite every RTP packet: timestamps to ``ts``, sequence numbers from ``seq`` on."""
    out = bytearray(pcap[:_GLOBAL_HEADER])
    pos = _GLOBAL_HEADER
    first_seq: int | None = None
    while pos + _RECORD_HEADER <= len(pcap):
        incl = struct.unpack_from("<I", pcap, pos + 8)[0]
        record = bytearray(pcap[pos : pos + _RECORD_HEADER + incl])
        frame = _RECORD_HEADER
        ihl = (record[frame + 14] & 0x0F) * 4  # Ethernet (14) then IPv4
        udp = frame + 14 + ihl
        rtp = udp + 8
        old_seq = struct.unpack_from("!H", record, rtp + 2)[0]
        first_seq = old_seq if first_seq is None else first_seq
        struct.pack_into("!HI", record, rtp + 2, (seq + old_seq - first_seq) & 0xFFFF, ts)
        struct.pack_into("!H", record, udp + 6, 0)  # no UDP checksum (allowed over IPv4)
        out += record
        pos += _RECORD_HEADER + incl
    return bytes(out)
