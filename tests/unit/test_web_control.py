"""The web's hold on the engine's ACD: agent actions flush through the router's public
``flush()`` (no private member of another package), and listen / whisper / barge ring only a
supervisor phone the ACD file declares, with a clear error naming the file otherwise."""

from __future__ import annotations

import ast
import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from accounts.store import AuthStore
from bench.web_rig import FAST_HASHER, SimAcd, WebRig, login, web_rig
from tongdai.settings import PROJECT_HOME
from web.control import ControlError, SpyMode


@pytest.fixture
async def sim() -> AsyncIterator[SimAcd]:
    s = SimAcd()
    await s.start(login=["agent101", "agent102"])
    try:
        yield s
    finally:
        await s.stop()


async def test_given_an_agent_action_then_the_router_is_flushed_by_its_public_method(
    sim: SimAcd, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    public = sim.router.flush

    def flush(*, kick: bool = True) -> None:
        if kick:  # the assigner's own rounds flush with kick=False
            calls.append("flush")
        public(kick=kick)

    monkeypatch.setattr(sim.router, "flush", flush)
    sim.control.agent_pause("agent101", "meal")
    assert calls == ["flush"]
    sim.control.agent_unpause("agent101")
    sim.control.agent_logout("agent102")
    assert calls == ["flush"] * 3
    assert sim.control.state().agent("agent102").state == "logged_out"  # type: ignore[union-attr]


def test_the_web_package_uses_no_private_member_of_another_object() -> None:
    """``x._name`` only on ``self`` (or ``cls``) inside web/: the router's ``_flush`` and the
    like are not the web's to call."""
    found = []
    for path in sorted((PROJECT_HOME / "web").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            ):
                found.append(f"{Path(path).name}:{node.lineno} .{node.attr}")
    assert found == []


async def _on_call(sim: SimAcd, uid: str) -> None:
    sim.arrive(uid, "thu_tuc", "0905111222")
    await sim.answer(uid)
    async with asyncio.timeout(3):
        while sim.control.state().agent("agent101").state != "on_call":  # type: ignore[union-attr]
            await asyncio.sleep(0.01)


async def test_given_a_phone_not_declared_in_the_acd_file_when_spying_then_a_clear_error(
    sim: SimAcd,
) -> None:
    await _on_call(sim, "c1")
    assert sim.control.supervisor_phones() == ("PJSIP/sup201",)
    for phone in ("PJSIP/agent120", "PJSIP/agent102"):  # the old demo phone; an agent's phone
        with pytest.raises(ControlError) as err:
            await sim.control.spy("agent101", phone, SpyMode.LISTEN)
        assert (err.value.status, err.value.error_id) == (422, "phone_not_configured")
        assert phone in err.value.message and "[supervisors.<id>]" in err.value.message
        assert str(PROJECT_HOME / "acd/agents_1022.toml") in err.value.message
        assert "PJSIP/sup201" in err.value.message  # what to use instead
    assert sim.ami.originates()[-1]["Channel"] != "PJSIP/agent120"
    await sim.control.spy("agent101", "PJSIP/sup201", SpyMode.BARGE)
    spy = sim.ami.originates()[-1]
    assert (spy["Channel"], spy["Data"]) == ("PJSIP/sup201", "PJSIP/agent101-,qBE")


async def test_given_a_supervisor_whose_phone_is_not_declared_then_api_and_page_say_so(
    sim: SimAcd, make_db_url: Callable[[str], str]
) -> None:
    async with web_rig(make_db_url("sqlite"), sim.control) as rig:
        await _on_call(sim, "c1")
        store = AuthStore(rig.deps.engine, hasher=FAST_HASHER)
        await store.update_user("giamsat", phone="PJSIP/agent120")
        before = len(sim.ami.originates())
        transport = httpx.ASGITransport(app=rig.app)
        headers = {"Authorization": f"Bearer {rig.tokens['giamsat']}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            r = await c.post(
                "/api/v1/agents/agent101/spy", json={"mode": "listen"}, headers=headers
            )
            assert r.status_code == 422 and r.json()["error"]["id"] == "phone_not_configured"
            assert "agents_1022.toml" in r.json()["error"]["message"]
            csrf = await login(c, "giamsat", rig.accounts["giamsat"].password)
            r = await c.post(
                "/wallboard/spy", data={"csrf": csrf, "agent": "agent101", "mode": "listen"}
            )
            assert r.headers["location"].endswith("err=phone_not_configured")
            page = await c.get(r.headers["location"])
            assert "chưa được khai báo là máy giám sát" in page.text
        assert len(sim.ami.originates()) == before  # nothing rang
        await _with_declared_phone(rig, sim)


async def _with_declared_phone(rig: WebRig, sim: SimAcd) -> None:
    await AuthStore(rig.deps.engine, hasher=FAST_HASHER).update_user(
        "giamsat", phone="PJSIP/sup201"
    )
    transport = httpx.ASGITransport(app=rig.app)
    headers = {"Authorization": f"Bearer {rig.tokens['giamsat']}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c:
        r = await c.post("/api/v1/agents/agent101/spy", json={"mode": "listen"})
        assert r.status_code == 202 and r.json()["phone"] == "PJSIP/sup201"
    assert sim.ami.originates()[-1]["Channel"] == "PJSIP/sup201"
