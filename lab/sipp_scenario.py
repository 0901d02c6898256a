"""Build SIPp caller (UAC) scenarios from steps: wait, press keys, hang up, expect a hang-up.

The caller dials ``[service]`` (``-s``) at the target, offers PCMU + telephone-event/8000, and
takes its number from the injection file: ``[field0]`` is the From user, ``[field1]`` the display
name (see :func:`sipp.run_callers`). CSeq numbers are assigned here, one per request in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lab.dtmf_pcap import keyed_pcap

PCAP_DIR = "/usr/share/sip-tester"
_PCAP_NAMES = {"*": "star", "#": "pound", **{d: d for d in "0123456789"}}
_PCAP_MS = 140  # each dtmf_2833_<d>.pcap lasts 140 ms


@dataclass(frozen=True)
class Wait:
    """Stay on the line (silently) for ``ms``."""

    ms: int


@dataclass(frozen=True)
class Key:
    """One RFC 4733 key by replaying the pcap (0-9, * or #), then ``after_ms`` of quiet."""

    digit: str
    after_ms: int = 200

    def __post_init__(self) -> None:
        if self.digit not in _PCAP_NAMES:
            raise ValueError(f"Key({self.digit!r}): one of 0-9, * or #")


@dataclass(frozen=True)
class Keys:
    """Several keys as SIP INFO (application/dtmf-relay), one INFO per key, each answered 200."""

    digits: str
    gap_ms: int = 250
    duration_ms: int = 160

    def __post_init__(self) -> None:
        if not self.digits or any(d not in _PCAP_NAMES for d in self.digits):
            raise ValueError(f"Keys({self.digits!r}): only 0-9, * and #")


@dataclass(frozen=True)
class Speak:
    """Talk for about 7 s: replays SIPp's G.711 A-law speech sample (``g711a.pcap``)."""

    after_ms: int = 0


_SPEECH_PCAP = f"{PCAP_DIR}/g711a.pcap"
_SPEECH_MS = 7_050


@dataclass(frozen=True)
class HangUp:
    """The caller hangs up (BYE, expects 200)."""


@dataclass(frozen=True)
class ExpectHangup:
    """Asterisk must hang up within ``timeout_ms`` (its BYE is answered 200), or the call fails."""

    timeout_ms: int = 30_000


Step = Wait | Key | Keys | Speak | HangUp | ExpectHangup

_FROM = '"[field1]" <sip:[field0]@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]'
_DIALOG = f"""Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: {_FROM}
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]"""
_CONTACT = """Contact: <sip:[field0]@[local_ip]:[local_port]>
      Max-Forwards: 70"""


def _request(method: str, cseq: int, body: str = "", content_type: str = "") -> str:
    headers = f"Content-Type: {content_type}\n      " if content_type else ""
    return f"""
  <send retrans="500">
    <![CDATA[
      {method} sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      {_DIALOG}
      CSeq: {cseq} {method}
      {_CONTACT}
      {headers}Content-Length: [len]

      {body}
    ]]>
  </send>"""


_INVITE = f"""
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: {_FROM}
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      {_CONTACT}
      Subject: tongdai e2e caller
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=caller 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 8 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-16
      a=sendrecv

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      {_DIALOG}
      CSeq: 1 ACK
      {_CONTACT}
      Content-Length: 0

    ]]>
  </send>"""

_ANSWER_BYE = """
  <recv request="BYE" timeout="{timeout}"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[field0]@[local_ip]:[local_port]>
      Content-Length: 0

    ]]>
  </send>"""


def build_caller_scenario(steps: Sequence[Step], name: str = "tongdai caller") -> str:
    """SIPp XML for one caller doing ``steps`` after the call is answered.

    If the steps do not end with HangUp or ExpectHangup, a HangUp is added. Quiet time right
    before an ExpectHangup (a Wait, a Key's tail, the gap after the last INFO) is folded into its
    timeout, so Asterisk may hang up at any moment of it; anywhere else a BYE from Asterisk is
    unexpected and fails the call (the IVR hung up too early).
    """
    parts = [_INVITE]
    pause_ms = 0  # quiet time not yet written out

    def flush_pause() -> None:
        nonlocal pause_ms
        if pause_ms > 0:
            parts.append(f'\n  <pause milliseconds="{pause_ms}"/>')
        pause_ms = 0

    cseq = 1
    keys = 0
    ended = False
    for step in steps:
        if ended:
            raise ValueError("no step may follow HangUp or ExpectHangup")
        if isinstance(step, Wait):
            pause_ms += max(0, step.ms)
        elif isinstance(step, Key):
            flush_pause()
            pcap = keyed_pcap(step.digit, keys)  # timestamps must increase key after key
            keys += 1
            parts.append(f'\n  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>')
            pause_ms = _PCAP_MS + max(0, step.after_ms)  # play_pcap_audio does not block
        elif isinstance(step, Speak):
            flush_pause()
            play = f'<exec play_pcap_audio="{_SPEECH_PCAP}"/>'
            parts.append(f"\n  <nop><action>{play}</action></nop>")
            pause_ms = _SPEECH_MS + max(0, step.after_ms)
        elif isinstance(step, Keys):
            for digit in step.digits:
                flush_pause()
                cseq += 1
                body = f"Signal={digit}\n      Duration={step.duration_ms}"
                parts.append(_request("INFO", cseq, body, "application/dtmf-relay"))
                parts.append('\n  <recv response="200"/>')
                pause_ms = max(0, step.gap_ms)
        elif isinstance(step, HangUp):
            flush_pause()
            cseq += 1
            parts.append(_request("BYE", cseq) + '\n  <recv response="200" crlf="true"/>')
            ended = True
        else:
            parts.append(_ANSWER_BYE.format(timeout=max(1, step.timeout_ms + pause_ms)))
            pause_ms = 0
            ended = True
    if not ended:
        flush_pause()
        cseq += 1
        parts.append(_request("BYE", cseq) + '\n  <recv response="200" crlf="true"/>')
    body = "".join(parts)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE scenario SYSTEM "sipp.dtd">\n'
        f'<scenario name="{name}">{body}\n</scenario>\n'
    )
