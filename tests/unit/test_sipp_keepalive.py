"""The lab's SIPp phones keep their media alive (Asterisk ends calls with no media for 30 s);
a vanishing caller stops. Checked on the scenario XML the builder writes and on the pcap."""

from __future__ import annotations

import itertools
import re
import struct
import xml.etree.ElementTree as ET

import pytest

from lab.keepalive_pcap import KEEPALIVE_MS, bye_wait_xml, keepalive_pcap
from lab.sipp_run import UAS_TEMPLATE
from lab.sipp_scenario import (
    ExpectHangup,
    HangUp,
    Hold,
    Key,
    Keys,
    Speak,
    Vanish,
    Wait,
    build_caller_scenario,
)


def timeline(xml: str) -> list[tuple[int, str]]:
    """(ms since the answer, what) for every media play, in order; BYE waits count their
    full timeout (the longest the caller stays quiet in them)."""
    root = ET.fromstring(xml.split("?>", 1)[1].split(">", 1)[1])  # skip the DOCTYPE
    at, out = 0, []
    for el in root:
        if el.tag == "pause":
            at += int(el.get("milliseconds", "0"))
        elif el.tag == "recv" and el.get("request") == "BYE":
            at += int(el.get("timeout", "0"))
        elif el.tag == "nop":
            for ex in el.iter("exec"):
                what = ex.get("play_pcap_audio", "")
                out.append((at, "keepalive" if what.endswith("keepalive.pcap") else what))
    return out


def longest_quiet(xml: str, until_ms: int) -> int:
    """The longest stretch without media from the answer to ``until_ms`` (a key's pcap
    lasts 140 ms, the speech sample 7,050 ms)."""
    spans = [(0, 0)]
    for t, what in timeline(xml):
        spans.append((t, t + (140 if "dtmf_" in what else 7050 if "g711a" in what else 0)))
    spans.append((until_ms, until_ms))
    return max(b[0] - a[1] for a, b in itertools.pairwise(spans))


def test_the_keepalive_pcap_is_one_short_datagram_of_nuls() -> None:
    data = keepalive_pcap().read_bytes()
    assert struct.unpack_from("<I", data)[0] == 0xA1B2C3D4
    (incl,) = struct.unpack_from("<I", data, 24 + 8)
    frame = data[24 + 16 : 24 + 16 + incl]
    assert len(data) == 24 + 16 + incl  # exactly one packet
    udp = frame[14 + 20 :]
    assert struct.unpack_from("!H", udp, 4)[0] == 8 + 4 and udp[8:] == b"\0\0\0\0"


def test_a_caller_waiting_silently_sends_a_keepalive_every_few_seconds() -> None:
    xml = build_caller_scenario([Wait(1500), Key("0"), Wait(40_000), HangUp()])
    assert longest_quiet(xml, 1500 + 140 + 200 + 40_000) <= KEEPALIVE_MS
    assert sum(1 for _, w in timeline(xml) if w == "keepalive") == 8


def test_sip_info_keys_are_not_media_so_quiet_time_adds_up_across_them() -> None:
    xml = build_caller_scenario([Wait(3000), Keys("12345678"), Wait(3000), HangUp()])
    assert any(w == "keepalive" for _, w in timeline(xml))


def test_a_keepalive_never_cuts_a_key_or_speech_short() -> None:
    xml = build_caller_scenario([Wait(4900), Key("1", after_ms=0), Speak(), Wait(9000), HangUp()])
    plays = timeline(xml)
    key_at = next(t for t, w in plays if "dtmf_1" in w)
    speech_at = next(t for t, w in plays if w.endswith("g711a.pcap"))
    assert not [t for t, w in plays if w == "keepalive" and key_at <= t < key_at + 140]
    assert not [t for t, w in plays if w == "keepalive" and speech_at <= t < speech_at + 7050]


def test_waiting_for_asterisks_bye_keeps_the_media_alive_and_may_end_at_any_moment() -> None:
    xml = build_caller_scenario([Wait(2000), ExpectHangup(60_000)])
    waits = re.findall(r'<recv request="BYE" timeout="(\d+)"[^>]*next="bye"', xml)
    assert sum(map(int, waits)) == 62_000  # the quiet Wait is folded into the BYE wait
    assert int(waits[0]) == KEEPALIVE_MS - 2000 and all(int(w) <= KEEPALIVE_MS for w in waits)
    assert longest_quiet(xml, 62_000) <= KEEPALIVE_MS
    ET.fromstring(xml.split("?>", 1)[1].split(">", 1)[1])  # well-formed


def test_pressing_while_waiting_sends_rising_key_pcaps_instead_of_keepalives() -> None:
    xml = build_caller_scenario([Wait(1500), Key("0"), ExpectHangup(20_000, pressing="4")])
    plays = [w for _, w in timeline(xml)]
    assert "keepalive" not in plays
    assert plays[1:] == [f"/tmp/tongdai-dtmf-pcaps/dtmf_4_{i}.pcap" for i in range(1, 5)]
    with pytest.raises(ValueError, match="pressing"):
        ExpectHangup(1000, pressing="x")


def test_a_vanishing_caller_sends_one_last_packet_then_nothing_and_never_answers_the_bye() -> None:
    xml = build_caller_scenario([Wait(12_000), Vanish(45_000)])
    plays = timeline(xml)
    assert plays[-1] == (12_000, "keepalive")
    tail = xml[xml.rindex("keepalive.pcap") :]
    assert '<recv request="BYE" timeout="45000"/>' in tail
    assert "SIP/2.0 200 OK" not in tail and "<pause" not in tail


def test_hold_sends_a_sendonly_reinvite_and_acks_its_200() -> None:
    xml = build_caller_scenario([Wait(500), Hold(), Vanish()])
    reinvite = xml[xml.index("CSeq: 2 INVITE") - 600 :]
    assert "a=sendonly" in reinvite and "CSeq: 2 ACK" in reinvite
    assert reinvite.index('<recv response="200"/>') < reinvite.index("CSeq: 2 ACK")


def test_the_agent_phones_talk_with_keepalives_and_end_at_their_labels() -> None:
    talk = bye_wait_xml(12_000, prefix="talk", on_bye="11", on_timeout="20")
    assert re.findall(r' timeout="(\d+)"', talk) == ["5000", "5000", "2000"]
    assert talk.count("keepalive.pcap") == 2
    assert talk.rstrip().endswith('<recv request="BYE" timeout="2000" ontimeout="20" next="11"/>')
    template = UAS_TEMPLATE.read_text(encoding="utf-8")
    assert "{{TALK}}" in template and '<label id="11"/>' in template
