"""Facts about Asterisk 22's call-ending time-outs, measured on the real binary with the
settings we ship (asterisk_conf/pjsip.conf ``[dead-call-timers]``): does ``rtp_timeout`` end a
silent caller whatever the channel is doing - a prompt playing, music on hold in WaitExten (our
ACD's wait loop), Read() or WaitExten() waiting for keys in silence? Does a held caller get
``rtp_timeout_hold`` instead? Does a live but silent SIPp phone (media keep-alives only) stay?
Do session timers end a dialog whose SIP side is dead while its media still flows?

A private Asterisk (on this test process's lab instance: its SIP and AMI ports) with a dialplan
of one extension per case; SIPp callers ``Vanish`` (no media, no BYE) right after the answer;
AMI tells when and why each call ended.
The hold and session-timer cases run with shorter values than shipped to keep the test short.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator, Sequence

import pytest
from private_asterisk import PrivateAsterisk, chroot_ready

from lab.keepalive_pcap import keepalive_pcap
from lab.sipp_run import (
    HangUp,
    Hold,
    SipTarget,
    Step,
    Vanish,
    Wait,
    build_caller_scenario,
    run_callers,
    sipp_available,
)
from pbx.ami import AmiClient, AmiEvent
from tongdai.settings import PROJECT_HOME, Settings

pytestmark = pytest.mark.e2e

DIALPLAN = """
[amitest]
exten => prompt,1,Answer()
 same => n(again),Playback(demo-congrats)
 same => n,Goto(again)
exten => music,1,Answer()
 same => n,WaitExten(120,m(default))
exten => read,1,Answer()
 same => n,Read(code,,20,,1,120)
exten => silence,1,Answer()
 same => n,WaitExten(120)
"""
HOLD_S = 40  # rtp_timeout_hold here (shipped: 300)
SESSION_S = 90  # timers_sess_expires here (shipped: 1800; 90 is the RFC 4028 minimum)
DEAD_DIALOG = PROJECT_HOME / "tests" / "sipp" / "dead_dialog_uac.xml"


def shipped_timers() -> dict[str, str]:
    """The ``[dead-call-timers]`` template of asterisk_conf/pjsip.conf."""
    text = (PROJECT_HOME / "asterisk_conf" / "pjsip.conf").read_text(encoding="utf-8")
    body = text.split("[dead-call-timers](!)", 1)[1].split("\n[", 1)[0]
    pairs = (line.split(";", 1)[0].split("=", 1) for line in body.splitlines())
    return {k.strip(): v.strip() for k, *v in (p for p in pairs if len(p) == 2) for v in v}


@pytest.fixture(scope="module")
def asterisk(lab_settings: Settings) -> Iterator[PrivateAsterisk]:
    reason = chroot_ready() or sipp_available()
    if reason:
        pytest.skip(reason)
    timers = shipped_timers() | {
        "rtp_timeout_hold": str(HOLD_S),
        "timers_sess_expires": str(SESSION_S),
    }
    options = "".join(f"{k} = {v}\n" for k, v in timers.items())
    with PrivateAsterisk(
        DIALPLAN, settings=lab_settings, endpoint_options=options, moh=True
    ) as instance:
        yield instance


async def test_what_ends_a_silent_or_dead_call_on_asterisk_22(asterisk: PrivateAsterisk) -> None:
    rtp_timeout = int(shipped_timers()["rtp_timeout"])
    assert rtp_timeout == 30 and shipped_timers()["timers"] == "always"
    cases: dict[str, tuple[str, list[Step] | None]] = {  # number: (extension, steps)
        "0900000001": ("prompt", [Vanish()]),
        "0900000002": ("music", [Vanish()]),
        "0900000003": ("read", [Vanish()]),
        "0900000004": ("silence", [Vanish()]),
        "0900000005": ("music", [Wait(500), Hold(), Vanish(HOLD_S * 1000 + 10_000)]),
        "0900000006": ("music", [Wait(rtp_timeout * 1000 + 10_000), HangUp()]),
        "0900000007": ("music", None),  # dead dialog, live media
    }
    dead_dialog = DEAD_DIALOG.read_text(encoding="utf-8")
    dead_dialog = dead_dialog.replace("{{KEEPALIVE_PCAP}}", str(keepalive_pcap()))
    async with AmiClient(
        "127.0.0.1", asterisk.ami_port, asterisk.ami_user, asterisk.ami_secret
    ) as ami:
        events = ami.subscribe(["Newstate", "Hangup"])
        seen: dict[str, list[tuple[float, AmiEvent]]] = {n: [] for n in cases}

        async def watch() -> None:
            while True:
                ev = await events.get(timeout_s=300)
                number = ev.get("CallerIDNum") or ""
                if number in seen:
                    seen[number].append((time.monotonic(), ev))

        async def one(number: str, exten: str, steps: Sequence[Step] | None) -> None:
            xml = build_caller_scenario(steps) if steps is not None else dead_dialog
            result = await run_callers(
                xml,
                target=SipTarget("127.0.0.1", asterisk.sip_port, exten),
                callers=[number],
                timeout_s=200,
            )
            assert result.ok, f"{number} ({exten}): " + result.describe() + asterisk.log_tail()

        watcher = asyncio.create_task(watch())
        try:
            async with asyncio.TaskGroup() as tg:
                for number, (exten, steps) in cases.items():
                    tg.create_task(one(number, exten, steps))
            # a SIPp caller is done once it has answered Asterisk's BYE; the Hangup event on
            # AMI may come after that (measured on a loaded machine)
            async with asyncio.timeout(30):
                while not all(any(e.name == "Hangup" for _, e in seen[n]) for n in cases):
                    await asyncio.sleep(0.1)
        finally:
            watcher.cancel()

    def lasted(number: str) -> tuple[float, str]:
        """(seconds from answer to hang-up, hang-up cause) from AMI."""
        up = next(
            t for t, e in seen[number] if e.name == "Newstate" and e["ChannelStateDesc"] == "Up"
        )
        end, hangup = next((t, e) for t, e in seen[number] if e.name == "Hangup")
        return end - up, hangup.get("Cause") or ""

    facts = {n: (cases[n][0], *lasted(n)) for n in cases}
    log = asterisk.log_tail(200)
    print("\n".join(f"{n} {ext:8} {s:6.1f} s cause {c}" for n, (ext, s, c) in facts.items()))
    # a vanished caller is cut after rtp_timeout (cause 44, requested channel unavailable),
    # whatever plays or waits on the channel
    for number in ("0900000001", "0900000002", "0900000003", "0900000004"):
        exten, seconds, cause = facts[number]
        assert rtp_timeout - 1.5 <= seconds <= rtp_timeout + 2.5, (exten, facts)
        assert cause == "44", (exten, facts)
    assert len(re.findall(r"for lack of audio RTP activity in \d+ seconds", log)) >= 5, log
    # on hold, rtp_timeout_hold applies instead
    _, seconds, cause = facts["0900000005"]
    assert HOLD_S - 1.5 <= seconds <= HOLD_S + 2.5 and cause == "44", facts
    # a live silent caller (keep-alives only) outlives rtp_timeout and hangs up itself
    _, seconds, cause = facts["0900000006"]
    assert seconds >= rtp_timeout + 9 and cause != "44", facts
    # the session refresh at sess_expires/2 goes unanswered: Asterisk ends the call after
    # the refresh transaction times out (32 s), though media kept flowing
    _, seconds, _ = facts["0900000007"]
    assert SESSION_S / 2 + 20 <= seconds <= SESSION_S / 2 + 45, facts
