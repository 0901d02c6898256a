"""Agents' call recordings: the per-queue switch, the IVR's variable for the dialplan, the
start-of-call notice, the AMI event that links the file to its ticket, the console's player
(supervisors and admins only, confidential complaints' only for those who may see them, every
play audited) and the retention purge."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from acd.config import load_acd
from bench.web_rig import WebRig, login, web_rig
from conversations.retention import purge
from dossiers.memory import MemoryDossierLookup
from hotline.parts import recording_queues
from hotline.recordings import host_path, link_one
from ivr.fake import FakeAgiSession
from ivr.handover import AppQueueHandover
from ivr.menu import load_menu
from ivr.runner import RECORDING_NOTICE, IvrContext, run_call
from ivr.schedule import ALWAYS_OPEN
from pbx.ami_messages import AmiEvent
from tickets.audit import SqlAuditLog
from tickets.memory import MemoryTicketStore
from tickets.model import Ticket
from tongdai.errors import ConfigError
from tongdai.settings import PROJECT_HOME, Settings, load_settings

AST_DIR = "/srv/tongdai/recordings-8/calls"


class Harness:
    """A scripted caller through the real 1022 menu, tickets in memory."""

    def __init__(self, tmp: Path) -> None:
        self.tickets = MemoryTicketStore()
        self.tmp = tmp
        self.ctx = IvrContext(
            menu=load_menu(PROJECT_HOME / "ivr/menu_1022.toml"),
            tickets=self.tickets,
            dossiers=MemoryDossierLookup([]),
            schedule=ALWAYS_OPEN,
            sounds="/snd",
            messages_asterisk="/msg",
            messages_host=tmp,
            handover=AppQueueHandover(),
        )

    async def call(self, *inputs: str) -> tuple[FakeAgiSession, Ticket]:
        s = FakeAgiSession(inputs, record_dir=self.tmp)
        await run_call(s, self.ctx)
        return s, (await self.tickets.list())[-1]


def _event(**headers: str) -> AmiEvent:
    return AmiEvent([("Event", "UserEvent"), *headers.items()])


# --- the switch per queue ------------------------------------------------------------------------
def test_record_is_a_per_queue_switch_off_by_default(tmp_path: Path) -> None:
    src = (PROJECT_HOME / "tests/e2e/acd_e2e.toml").read_text(encoding="utf-8")
    f = tmp_path / "acd.toml"
    f.write_text(src.replace("[queues.du_lich]\n", "[queues.du_lich]\nrecord = true\n"), "utf-8")
    cfg = load_acd(f)
    assert [q.name for q in cfg.queues.values() if q.record] == ["du_lich"]
    f.write_text(src.replace("[queues.du_lich]\n", '[queues.du_lich]\nrecord = "yes"\n'), "utf-8")
    with pytest.raises(ConfigError, match=r"queues\.du_lich\.record"):
        load_acd(f)


def test_the_engine_reads_the_recording_queues_from_the_acd_file(tmp_path: Path) -> None:
    src = (PROJECT_HOME / "tests/e2e/acd_e2e.toml").read_text(encoding="utf-8")
    f = tmp_path / "acd.toml"
    f.write_text(src.replace("[queues.chung]\n", "[queues.chung]\nrecord = true\n"), "utf-8")
    conf = tmp_path / "tongdai.toml"
    conf.write_text(f'[acd]\nconfig = "{f}"\n[lab]\ninstance = 8\n', "utf-8")
    settings = load_settings(conf)
    assert recording_queues(settings) == frozenset({"chung"})
    assert settings.ivr.asterisk_calls_dir == AST_DIR  # each lab its own mount
    missing = replace(settings, acd=replace(settings.acd, config=str(tmp_path / "none.toml")))
    assert recording_queues(missing) == frozenset()
    assert recording_queues(Settings()) == frozenset()  # the shipped file records nothing


# --- the IVR tells the dialplan ------------------------------------------------------------------
async def test_a_recording_queue_gets_the_path_named_by_the_ticket_code(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.ctx = replace(h.ctx, records={"phan_anh"}.__contains__, calls_asterisk=AST_DIR)
    s, t = await h.call("3", "1")
    assert s.variables["TONGDAI_QUEUE"] == "phan_anh"
    assert s.variables["TONGDAI_RECORD"] == f"{AST_DIR}/{t.code}"
    s, t = await h.call("4")  # dau_tu does not record
    assert s.variables["TONGDAI_QUEUE"] == "dau_tu" and "TONGDAI_RECORD" not in s.variables
    assert RECORDING_NOTICE not in s.prompts  # the notice is off by default


async def test_the_recording_notice_follows_the_greeting_when_configured(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.ctx = replace(h.ctx, recording_notice=True)
    s, t = await h.call("0")
    assert s.prompts[:2] == ["chao_mung", RECORDING_NOTICE]
    assert [x.node for x in t.ivr_path][:1] == ["recording_notice"]
    s = FakeAgiSession(["~0"], record_dir=tmp_path)  # a key during the greeting skips it
    await run_call(s, h.ctx)
    assert RECORDING_NOTICE not in s.prompts and s.variables["TONGDAI_QUEUE"] == "chung"


# --- the AMI event links the file ----------------------------------------------------------------
def test_only_ticket_named_wavs_in_the_calls_folder_are_accepted(tmp_path: Path) -> None:
    code = "1022-20261207-000042"
    assert host_path(f"{AST_DIR}/{code}.wav", AST_DIR, tmp_path) == (code, tmp_path / f"{code}.wav")
    for bad in (
        f"{AST_DIR}/../{code}.wav",
        f"/etc/{code}.wav",
        f"{AST_DIR}/x{code}.wav",
        f"{AST_DIR}/{code}.gsm",
        f"{AST_DIR}/sub/{code}.wav",
    ):
        assert host_path(bad, AST_DIR, tmp_path) is None, bad


async def test_the_recording_event_links_the_file_to_its_ticket(tmp_path: Path) -> None:
    store = MemoryTicketStore()
    t = await store.open(
        channel="voice", caller="0905", uniqueid="u1", started_at=datetime.now(UTC)
    )
    linked = await link_one(
        _event(UserEvent="TongdaiRecording", File=f"{AST_DIR}/{t.code}.wav"),
        store,
        AST_DIR,
        tmp_path,
    )
    assert linked == t.code
    after = await store.get(t.code)
    assert after is not None and after.recording == str(tmp_path / f"{t.code}.wav")
    # other user events, unknown tickets and paths elsewhere change nothing
    other = "1022-20261207-999999"
    for ev in (
        _event(UserEvent="TongdaiAgent", File=f"{AST_DIR}/{other}.wav"),
        _event(UserEvent="TongdaiRecording", File=f"{AST_DIR}/{other}.wav"),
        _event(UserEvent="TongdaiRecording", File=f"/tmp/{t.code}.wav"),
    ):
        assert await link_one(ev, store, AST_DIR, tmp_path) is None
    assert await store.get(other) is None


# --- the console's player ------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def _browser(rig: WebRig, who: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=rig.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        await login(c, who, rig.accounts[who].password)
        yield c


async def test_call_recordings_play_for_supervisors_and_admins_only_and_are_audited(
    db_url: str, tmp_path: Path
) -> None:
    calls, messages = tmp_path / "calls", tmp_path / "messages"
    calls.mkdir()
    messages.mkdir()
    async with web_rig(db_url, messages_dir=messages, calls_dir=calls, lifespan=False) as rig:
        t = await rig.deps.tickets.open(
            channel="voice", caller="0905111222", uniqueid="u1", started_at=datetime.now(UTC)
        )
        wav = calls / f"{t.code}.wav"
        wav.write_bytes(b"RIFF" + b"\0" * 200)
        await rig.deps.tickets.update(t.code, recording=str(wav), outcome="answered")
        url = f"/recordings/calls/{t.code}.wav"
        for who in ("tdv101", "quanly"):
            async with _browser(rig, who) as c:
                r = await c.get(url)
                assert r.status_code == 403 and b"RIFF" not in r.content, who
                if who == "tdv101":
                    html = (await c.get(f"/tickets/{t.code}")).text
                    assert "<audio" not in html and url not in html
        # the message route does not reach the calls folder
        async with _browser(rig, "tdv101") as c:
            assert (await c.get(f"/recordings/{t.code}.wav")).status_code == 404
        for who in ("giamsat", "quantri"):
            async with _browser(rig, who) as c:
                html = (await c.get(f"/tickets/{t.code}")).text
                assert "Ghi âm cuộc gọi" in html and f'src="{url}"' in html
                r = await c.get(url)
                assert r.status_code == 200 and r.content.startswith(b"RIFF"), who
                assert (await c.get("/recordings/calls/..%2Fx.wav")).status_code == 404
        # a file of a ticket it is not linked to is not served
        other = await rig.deps.tickets.open(
            channel="voice", caller="0905333444", uniqueid="u2", started_at=datetime.now(UTC)
        )
        (calls / f"{other.code}.wav").write_bytes(b"RIFF" + b"\0" * 200)
        async with _browser(rig, "giamsat") as c:
            assert (await c.get(f"/recordings/calls/{other.code}.wav")).status_code == 404
        # a complaint about officials: confidential, still for supervisors (audited)
        await rig.deps.tickets.update(t.code, complaint_type="can_bo")
        async with _browser(rig, "tdv101") as c:
            assert (await c.get(url)).status_code == 403
        async with _browser(rig, "giamsat") as c:
            assert (await c.get(url)).status_code == 200
        entries = await SqlAuditLog(rig.deps.engine).entries()
        plays = sorted(
            (e.actor, e.ticket_code) for e in entries if e.action.value == "play_recording"
        )
        assert plays == [("giamsat", t.code), ("giamsat", t.code), ("quantri", t.code)]


# --- retention -----------------------------------------------------------------------------------
async def test_purge_deletes_old_call_recordings_and_keeps_young_ones(
    db_url: str, tmp_path: Path
) -> None:
    from tickets.sql import open_store

    now = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    calls = tmp_path / "calls"
    calls.mkdir()
    store = await open_store(db_url)
    try:
        codes = {}
        for name, at in (("old", now - timedelta(days=400)), ("young", now - timedelta(days=3))):
            t = await store.open(channel="voice", caller="0905", uniqueid=None, started_at=at)
            wav = calls / f"{t.code}.wav"
            wav.write_bytes(b"RIFF" + b"\0" * 100)
            await store.update(t.code, recording=str(wav))
            codes[name] = t.code
        report = await purge(
            store.engine, now=now, recordings_days=365, messages_days=365,
            recording_dirs=[calls], attachments_dir=tmp_path / "att", dry_run=False,
        )  # fmt: skip
        assert report.recordings == [codes["old"]]
        assert not (calls / f"{codes['old']}.wav").exists()
        assert (calls / f"{codes['young']}.wav").exists()
        old, young = await store.get(codes["old"]), await store.get(codes["young"])
        assert old is not None and old.recording is None
        assert young is not None and young.recording == str(calls / f"{codes['young']}.wav")
    finally:
        await store.close()
