"""End-to-end: the SIPp harness against a private Asterisk on this process's lab instance (its
SIP and AMI ports; the agents' phone on the instance's agents port)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from private_asterisk import PrivateAsterisk, chroot_ready

from lab.instance import LabInstance
from lab.sipp_run import (
    AgentPhones,
    ExpectHangup,
    HangUp,
    Key,
    Keys,
    SipTarget,
    Wait,
    build_caller_scenario,
    run_callers,
    sipp_available,
)
from pbx.ami import AmiClient, AmiEvent
from tongdai.settings import Settings

pytestmark = pytest.mark.e2e

DIALPLAN = """
[amitest]
; 100: read one key, then a code ended by #, and report both on AMI
exten => 100,1,Answer()
 same => n,Read(FIRST,,1,,1,10)
 same => n,Read(CODE,,10,,1,10)
 same => n,UserEvent(DtmfTest,First: ${FIRST},Code: ${CODE},Caller: ${CALLERID(num)})
 same => n,Hangup()
; 200: answer, stay 1 s, hang up
exten => 200,1,Answer()
 same => n,Wait(1)
 same => n,Hangup()
; 201: answer and never hang up (within a test's patience)
exten => 201,1,Answer()
 same => n,Wait(30)
 same => n,Hangup()
; 300: ring the agent phone; 301: give up ringing after 1 s
exten => 300,1,Dial(PJSIP/agent101,20)
 same => n,Hangup()
exten => 301,1,Dial(PJSIP/agent101,1)
 same => n,Hangup()
"""


@pytest.fixture(scope="module")
def asterisk(lab_settings: Settings) -> Iterator[PrivateAsterisk]:
    reason = chroot_ready() or sipp_available()
    if reason:
        pytest.skip(reason)
    port = LabInstance.of(lab_settings).agents_port
    agents = {"agent101": f"sip:agent101@127.0.0.1:{port}"}
    with PrivateAsterisk(DIALPLAN, settings=lab_settings, agents=agents) as instance:
        yield instance


@pytest.fixture
async def ami(asterisk: PrivateAsterisk) -> AsyncIterator[AmiClient]:
    client = AmiClient("127.0.0.1", asterisk.ami_port, asterisk.ami_user, asterisk.ami_secret)
    async with client:
        yield client


def phones_of(asterisk: PrivateAsterisk, answer_after_ms: int, talk_ms: int) -> AgentPhones:
    """The agent phone (SIPp UAS) on the instance's agents port, where agent101's contact is."""
    return AgentPhones(
        port=asterisk.instance.agents_port, answer_after_ms=answer_after_ms, talk_ms=talk_ms
    )


def target(asterisk: PrivateAsterisk, extension: str) -> SipTarget:
    return SipTarget("127.0.0.1", asterisk.sip_port, extension)


async def test_given_rfc4733_key_and_info_keys_when_asterisk_reads_then_exact_digits(
    asterisk: PrivateAsterisk, ami: AmiClient
) -> None:
    events = ami.subscribe(["UserEvent"])
    xml = build_caller_scenario([Wait(500), Key("5"), Keys("11220#"), ExpectHangup(10_000)])
    result = await run_callers(xml, target=target(asterisk, "100"), callers=["0905111222"])
    assert result.ok, result.describe()

    def mine(event: AmiEvent) -> bool:
        return bool(event.get("Caller") == "0905111222")

    event = await events.wait_for(mine, timeout_s=5)
    assert (event["First"], event["Code"]) == ("5", "11220")


async def test_given_asterisk_hangs_up_when_caller_expects_it_then_call_succeeds(
    asterisk: PrivateAsterisk,
) -> None:
    result = await run_callers(
        build_caller_scenario([ExpectHangup(10_000)]), target=target(asterisk, "200")
    )
    assert result.ok, result.describe()


async def test_given_asterisk_keeps_line_when_caller_expects_hangup_then_call_fails(
    asterisk: PrivateAsterisk,
) -> None:
    result = await run_callers(
        build_caller_scenario([ExpectHangup(1_000)]), target=target(asterisk, "201")
    )
    assert (result.successful, result.failed) == (0, 1), result.describe()
    assert not result.ok


async def test_when_50_callers_at_once_then_all_succeed_overlap_and_deliver_their_digits(
    asterisk: PrivateAsterisk, ami: AmiClient
) -> None:
    events = ami.subscribe(["Newchannel", "Hangup", "UserEvent"])
    xml = build_caller_scenario([Wait(1_000), Key("5"), Keys("11220#"), ExpectHangup(15_000)])
    result = await run_callers(xml, target=target(asterisk, "100"), calls=50, rate=50)
    assert result.ok, result.describe()
    assert len(set(result.callers)) == 50
    assert all(c.startswith("09") and len(c) == 10 for c in result.callers)
    live, peak, hangups = 0, 0, 0
    digits: dict[str, tuple[str, str]] = {}
    while hangups < 50 or len(digits) < 50:
        event = await events.get(timeout_s=5)
        if event.name == "Newchannel":
            live += 1
            peak = max(peak, live)
        elif event.name == "Hangup":
            live -= 1
            hangups += 1
        else:
            digits[event["Caller"]] = (event["First"], event["Code"])
    assert digits == {caller: ("5", "11220") for caller in result.callers}
    assert peak >= 40  # 50 calls started within ~1 s, each lasting ~3 s


async def test_given_agent_phone_when_asterisk_dials_it_then_answers_and_hangs_up(
    asterisk: PrivateAsterisk,
) -> None:
    with AgentPhones(
        port=asterisk.instance.agents_port, answer_after_ms=300, talk_ms=1500
    ) as phones:
        xml = build_caller_scenario([ExpectHangup(15_000)])
        result = await run_callers(xml, target=target(asterisk, "300"))
        assert result.ok, result.describe()
        counts = await phones.wait_for(lambda c: c.agent_hung_up == 1, timeout_s=5)
    assert (counts.answered, counts.caller_hung_up) == (1, 0)
    assert counts.answered_uris == ["sip:agent101"]


async def test_given_agent_talking_when_caller_hangs_up_first_then_agent_phone_sees_it(
    asterisk: PrivateAsterisk,
) -> None:
    with AgentPhones(
        port=asterisk.instance.agents_port, answer_after_ms=200, talk_ms=10_000
    ) as phones:
        xml = build_caller_scenario([Wait(1_500), HangUp()])
        result = await run_callers(xml, target=target(asterisk, "300"))
        assert result.ok, result.describe()
        counts = await phones.wait_for(lambda c: c.caller_hung_up == 1, timeout_s=5)
    assert (counts.answered, counts.agent_hung_up) == (1, 0)


async def test_given_slow_agent_when_dial_times_out_then_ringing_is_cancelled(
    asterisk: PrivateAsterisk,
) -> None:
    with AgentPhones(
        port=asterisk.instance.agents_port, answer_after_ms=5_000, talk_ms=1_000
    ) as phones:
        xml = build_caller_scenario([ExpectHangup(10_000)])
        result = await run_callers(xml, target=target(asterisk, "301"))
        counts = await phones.wait_for(lambda c: c.cancelled == 1, timeout_s=5)
    assert counts.answered == 0
    # Dial() gives up before answer: Asterisk never answered the caller either.
    assert result.failed == 1, result.describe()
