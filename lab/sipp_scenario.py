"""Build SIPp caller (UAC) scenarios from steps: wait, press keys, hang up, expect a hang-up.

A live caller keeps its media alive while it waits (a keep-alive every few seconds, see
``lab.keepalive_pcap``: Asterisk ends calls with no media for 30 s); ``Vanish`` is a caller
whose network dropped: no media and no BYE from then on.

The caller dials ``[service]`` (``-s``) at the target, offers PCMU + telephone-event/8000, and
takes its number from the injection file: ``[field0]`` is the From user, ``[field1]`` the display
name (see :func:`sipp.run_callers`). CSeq numbers are assigned here, one per request in order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lab.dtmf_pcap import keyed_pcap
from lab.keepalive_pcap import KEEPALIVE_MS, bye_wait_xml, keepalive_xml

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
    """Asterisk must hang up within ``timeout_ms`` (its BYE is answered 200), or the call fails.
    ``pressing``: meanwhile press this key every few seconds (RFC 4733), e.g. a score for a
    question whose moment the caller cannot know."""

    timeout_ms: int = 30_000
    pressing: str = ""

    def __post_init__(self) -> None:
        if self.pressing and self.pressing not in _PCAP_NAMES:
            raise ValueError(f"ExpectHangup(pressing={self.pressing!r}): one of 0-9, * or #")


@dataclass(frozen=True)
class Hold:
    """The caller puts the call on hold: a re-INVITE with ``a=sendonly`` (answered 200, ACKed).
    A held phone may send no media; Asterisk then applies ``rtp_timeout_hold``."""


@dataclass(frozen=True)
class Vanish:
    """The caller's network drops: one last media packet, then no media and no BYE. Asterisk
    must end the call (its BYE, never answered: the phone is gone) within ``bye_within_ms`` of
    that packet, or the call fails."""

    bye_within_ms: int = 45_000


Step = Wait | Key | Keys | Speak | HangUp | ExpectHangup | Hold | Vanish

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

_HOLD_SDP = """v=0
      o=caller 53655765 2353687638 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 8 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-16
      a=sendonly
"""

_ANSWER_BYE = """
  <label id="bye"/>
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


def _presses(digit: str, first: int) -> Callable[[int], str]:
    """The i-th press of ``digit`` after ``first`` keys of the call (its own pcap)."""

    def press(i: int) -> str:
        pcap = keyed_pcap(digit, first + i)
        return f'\n  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>'

    return press


def build_caller_scenario(steps: Sequence[Step], name: str = "tongdai caller") -> str:
    """SIPp XML for one caller doing ``steps`` after the call is answered.

    If the steps do not end with HangUp, ExpectHangup or Vanish, a HangUp is added. Quiet time
    right before an ExpectHangup (a Wait, a Key's tail, the gap after the last INFO) is folded
    into its timeout, so Asterisk may hang up at any moment of it; anywhere else a BYE from
    Asterisk is unexpected and fails the call (the IVR hung up too early). Until Vanish, the
    caller sends a media keep-alive after every ``KEEPALIVE_MS`` without audio.
    """
    parts = [_INVITE]
    pause_ms = 0  # quiet time not yet written out
    quiet_ms = 0  # written-out time since the caller last sent media

    def flush_pause() -> None:
        nonlocal pause_ms, quiet_ms
        while quiet_ms + pause_ms >= KEEPALIVE_MS:
            step = KEEPALIVE_MS - quiet_ms
            if step > 0:
                parts.append(f'\n  <pause milliseconds="{step}"/>')
            parts.append(keepalive_xml())
            pause_ms -= step
            quiet_ms = 0
        if pause_ms > 0:
            parts.append(f'\n  <pause milliseconds="{pause_ms}"/>')
        quiet_ms += pause_ms
        pause_ms = 0

    def playing(ms: int) -> None:
        """A pcap plays for ``ms``: wait it out (a keep-alive now would cut it short)."""
        nonlocal quiet_ms
        parts.append(f'\n  <pause milliseconds="{ms}"/>')
        quiet_ms = 0

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
            playing(_PCAP_MS)  # play_pcap_audio does not block
            pause_ms = max(0, step.after_ms)
        elif isinstance(step, Speak):
            flush_pause()
            play = f'<exec play_pcap_audio="{_SPEECH_PCAP}"/>'
            parts.append(f"\n  <nop><action>{play}</action></nop>")
            playing(_SPEECH_MS)
            pause_ms = max(0, step.after_ms)
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
        elif isinstance(step, Hold):
            flush_pause()
            cseq += 1
            parts.append(_request("INVITE", cseq, _HOLD_SDP, "application/sdp"))
            parts.append('\n  <recv response="100" optional="true"/>\n  <recv response="200"/>')
            parts.append(_request("ACK", cseq).replace('<send retrans="500">', "<send>"))
        elif isinstance(step, Vanish):
            flush_pause()
            parts.append(keepalive_xml())  # the last packet before the network drops
            # no media and no answer from here: Asterisk's BYE must come, and is ignored
            parts.append(f'\n  <recv request="BYE" timeout="{max(1, step.bye_within_ms)}"/>')
            ended = True
        else:
            total = max(1, step.timeout_ms + pause_ms)
            between = _presses(step.pressing, keys) if step.pressing else None
            parts.append(
                bye_wait_xml(
                    total,
                    prefix="alive",
                    on_bye="bye",
                    quiet_ms=quiet_ms + pause_ms,
                    between=between,
                )
            )
            parts.append(_ANSWER_BYE)
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
