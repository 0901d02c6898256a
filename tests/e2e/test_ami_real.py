"""End-to-end: pbx.ami.AmiClient against a real (private) Asterisk 22 and real SIPp calls."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import pytest
from private_asterisk import PrivateAsterisk, chroot_ready

from lab.sipp_run import (
    ExpectHangup,
    SipTarget,
    Wait,
    build_caller_scenario,
    run_callers,
    sipp_available,
)
from pbx.ami import (
    CONNECTED,
    DISCONNECTED,
    AmiClient,
    AmiDisconnected,
    AmiEvent,
    AmiLoginRefused,
)
from tongdai.settings import Settings

pytestmark = pytest.mark.e2e

DIALPLAN = """
[amitest]
exten => 100,1,Answer()
 same => n,Wait(1)
 same => n,Hangup()
"""


@pytest.fixture(scope="module")
def asterisk(lab_settings: Settings) -> Iterator[PrivateAsterisk]:
    reason = chroot_ready() or sipp_available()
    if reason:
        pytest.skip(reason)
    with PrivateAsterisk(DIALPLAN, settings=lab_settings) as instance:
        yield instance


def client_for(asterisk: PrivateAsterisk, secret: str | None = None) -> AmiClient:
    return AmiClient(
        "127.0.0.1",
        asterisk.ami_port,
        asterisk.ami_user,
        asterisk.ami_secret if secret is None else secret,
        reconnect_backoff=(0.2, 1.0),
    )


@pytest.fixture
async def ami(asterisk: PrivateAsterisk) -> AsyncIterator[AmiClient]:
    async with client_for(asterisk) as client:
        yield client


async def test_when_logged_in_then_core_status_answers(ami: AmiClient) -> None:
    assert ami.connected
    assert ami.banner.startswith("Asterisk Call Manager/")
    status = await ami.action("CoreStatus")
    assert status.name == "Success"
    assert status.get("CoreCurrentCalls") == "0"
    assert status.get("CoreStartupTime")


async def test_when_command_core_show_version_then_output_names_asterisk_22(
    ami: AmiClient,
) -> None:
    response = await ami.action("Command", Command="core show version")
    assert any(line.startswith("Asterisk 22.") for line in response.output), response.headers


async def test_when_list_action_then_all_items_collected(ami: AmiClient) -> None:
    response = await ami.action("PJSIPShowEndpoints")
    names = [e.get("ObjectName") for e in response.events if e.name == "EndpointList"]
    assert names == ["anonymous"]
    assert response.events[-1].name == "EndpointListComplete"


async def test_given_bad_secret_when_login_then_refused(asterisk: PrivateAsterisk) -> None:
    client = client_for(asterisk, secret="not-the-secret")
    with pytest.raises(AmiLoginRefused):
        await client.start()


async def test_when_sipp_calls_then_newchannel_and_hangup_events_arrive(
    asterisk: PrivateAsterisk, ami: AmiClient
) -> None:
    events = ami.subscribe(["Newchannel", "Hangup"])
    xml = build_caller_scenario([Wait(200), ExpectHangup(10_000)])
    result = await run_callers(
        xml,
        target=SipTarget("127.0.0.1", asterisk.sip_port, "100"),
        callers=["0935777888"],
        caller_names=["Trần Thị Hồng Nhung"],
    )
    assert result.ok, result.describe()

    def mine(event: AmiEvent) -> bool:
        return bool(event.get("CallerIDNum") == "0935777888")

    new = await events.wait_for(lambda e: e.name == "Newchannel" and mine(e), timeout_s=5)
    assert new["CallerIDName"] == "Trần Thị Hồng Nhung"
    hangup = await events.wait_for(lambda e: e.name == "Hangup" and mine(e), timeout_s=5)
    assert hangup["Uniqueid"] == new["Uniqueid"]


async def test_given_asterisk_restarts_then_client_reconnects_and_actions_work_again(
    asterisk: PrivateAsterisk, ami: AmiClient
) -> None:
    events = ami.subscribe([])  # only the synthetic connection-state events
    asterisk.stop()
    assert (await events.get(timeout_s=5)).name == DISCONNECTED
    started = time.monotonic()
    with pytest.raises(AmiDisconnected):
        await ami.action("CoreStatus")
    assert time.monotonic() - started < 0.5  # fails at once, not after the action timeout
    asterisk.start()
    assert (await events.get(timeout_s=10)).name == CONNECTED
    assert (await ami.action("CoreStatus")).get("CoreCurrentCalls") == "0"
