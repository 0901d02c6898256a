"""Contract tests of the ticket store: the same tests on memory, SQLite and PostgreSQL,
plus code allocation under concurrency, migrations, errors and announcements."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import accounts.store  # noqa: F401
import agencies.sql  # noqa: F401
import conversations.canned
import conversations.journal  # noqa: F401
import dossiers.procedures_sql
import dossiers.sql  # noqa: F401
import postal.sql  # noqa: F401
import tickets.audit
import tickets.sql_conversations
import tickets.sql_kb  # noqa: F401
from dossiers import cli as dossiers_cli
from hotline import cli as tongdai_cli
from ivr.announcements import active_announcement, clear_announcement, set_announcement
from tickets import cli as tickets_cli
from tickets.memory import MemoryTicketStore
from tickets.model import IvrStep, Outcome, Status
from tickets.sql import SqlTicketStore, open_store
from tickets.store import TicketStore
from tongdai.db import Base, is_modelled, make_engine, migrate
from tongdai.errors import StoreError

T0 = datetime(2026, 5, 1, 1, 0, tzinfo=UTC)  # 08:00 in Vietnam
VN = timezone(timedelta(hours=7))
BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


class Clock:
    def __init__(self) -> None:
        self.now = T0 + timedelta(hours=1)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture(params=BACKENDS)
async def store(
    request: pytest.FixtureRequest, make_db_url: Callable[[str], str]
) -> AsyncIterator[TicketStore]:
    clock = Clock()
    if request.param == "memory":
        yield MemoryTicketStore(clock=clock)
        return
    opened = await open_store(make_db_url(request.param))
    sql = SqlTicketStore(opened.engine, owns_engine=True, clock=clock)
    try:
        yield sql
    finally:
        await sql.close()


async def _open(store: TicketStore, minutes: int = 0, uniqueid: str | None = None) -> str:
    ticket = await store.open(
        channel="call",
        caller="0905123456",
        uniqueid=uniqueid,
        started_at=T0 + timedelta(minutes=minutes),
    )
    return ticket.code


async def test_given_a_call_when_opened_then_ticket_has_code_and_is_stored(
    store: TicketStore,
) -> None:
    opened = await store.open(
        channel="call", caller="0905123456", uniqueid="1714.1", started_at=T0.astimezone(VN)
    )
    assert opened.code == "1022-20260501-000001"
    assert opened.status is Status.NEW
    got = await store.get(opened.code)
    assert got == opened
    assert got is not None and got.started_at == T0 and got.started_at.tzinfo == UTC
    assert [(h.from_status, h.to_status) for h in got.history] == [(None, Status.NEW)]
    assert await store.get("1022-20260501-999999") is None


async def test_codes_count_per_vietnam_day(store: TicketStore) -> None:
    late = datetime(2026, 5, 1, 16, 59, tzinfo=UTC)  # 23:59 on 1 May in Vietnam
    codes = [
        (await store.open(channel="call", caller=None, uniqueid=None, started_at=at)).code
        for at in (late, late, late + timedelta(minutes=2))
    ]
    assert codes == ["1022-20260501-000001", "1022-20260501-000002", "1022-20260502-000001"]


async def test_given_200_concurrent_calls_when_opened_then_codes_are_distinct(
    store: TicketStore,
) -> None:
    codes = await asyncio.gather(*(_open(store, uniqueid=f"u{i}") for i in range(200)))
    assert len(set(codes)) == 200
    assert sorted(int(c.rsplit("-", 1)[1]) for c in codes) == list(range(1, 201))
    assert all(re.fullmatch(r"1022-20260501-\d{6}", c) for c in codes)


async def test_update_sets_fields_and_checks_names(store: TicketStore) -> None:
    code = await _open(store)
    answered = (T0 + timedelta(seconds=30)).astimezone(VN)
    await store.update(
        code, answered_at=answered, queue="chung", agent="agent1", outcome="answered"
    )
    await store.update(code, notes="hỏi về hồ sơ đất đai", dossier_code="123456")
    got = await store.get(code)
    assert got is not None
    assert got.answered_at == answered and got.answered_at.tzinfo == UTC
    assert (got.queue, got.agent, got.outcome) == ("chung", "agent1", Outcome.ANSWERED)
    assert got.notes == "hỏi về hồ sơ đất đai" and got.dossier_code == "123456"
    with pytest.raises(ValueError, match="status"):
        await store.update(code, status="closed")
    with pytest.raises(ValueError, match="outcome"):
        await store.update(code, outcome="teleported")
    with pytest.raises(ValueError, match="naive"):
        await store.update(code, ended_at=datetime(2026, 5, 1, 8, 0))
    with pytest.raises(KeyError):
        await store.update("1022-20260501-999999", queue="x")


async def test_steps_are_appended_in_order(store: TicketStore) -> None:
    code = await _open(store)
    first = [IvrStep(T0, "welcome"), IvrStep(T0 + timedelta(seconds=5), "main", key="2")]
    await store.append_steps(code, first)
    await store.append_steps(code, [IvrStep(T0 + timedelta(seconds=9), "dossier", detail="123456")])
    await store.append_steps(code, [])
    got = await store.get(code)
    assert got is not None
    assert [(s.node, s.key, s.detail) for s in got.ivr_path] == [
        ("welcome", None, None),
        ("main", "2", None),
        ("dossier", None, "123456"),
    ]
    assert got.ivr_path[1].at == T0 + timedelta(seconds=5)
    with pytest.raises(KeyError):
        await store.append_steps("1022-20260501-999999", first)


async def test_find_by_uniqueid(store: TicketStore) -> None:
    await _open(store, uniqueid="1714.1")
    code = await _open(store, minutes=1, uniqueid="1714.2")
    found = await store.find_by_uniqueid("1714.2")
    assert found is not None and found.code == code
    assert await store.find_by_uniqueid("nope") is None


async def test_list_is_oldest_first_within_since_until(store: TicketStore) -> None:
    codes = {m: await _open(store, minutes=m) for m in (30, 0, 10, 20)}
    everything = await store.list()
    assert [t.code for t in everything] == [codes[m] for m in (0, 10, 20, 30)]
    window = await store.list(since=T0 + timedelta(minutes=10), until=T0 + timedelta(minutes=30))
    assert [t.code for t in window] == [codes[10], codes[20]]
    assert [t.code for t in await store.list(limit=2)] == [codes[0], codes[10]]
    assert await store.list(since=T0 + timedelta(hours=1)) == []


async def test_status_workflow_keeps_history_and_refuses_illegal_moves(
    store: TicketStore,
) -> None:
    code = await _open(store)
    await store.set_status(code, Status.IN_PROGRESS, by="agent1", note="gọi lại cho dân")
    await store.set_status(code, Status.RESOLVED, by="agent1")
    await store.set_status(code, Status.IN_PROGRESS, by="supervisor", note="dân phản ánh lại")
    closed = await store.set_status(code, Status.CLOSED, by="supervisor")
    assert closed.status is Status.CLOSED
    moves = [(h.from_status, h.to_status, h.by, h.note) for h in closed.history]
    assert moves == [
        (None, Status.NEW, "system", None),
        (Status.NEW, Status.IN_PROGRESS, "agent1", "gọi lại cho dân"),
        (Status.IN_PROGRESS, Status.RESOLVED, "agent1", None),
        (Status.RESOLVED, Status.IN_PROGRESS, "supervisor", "dân phản ánh lại"),
        (Status.IN_PROGRESS, Status.CLOSED, "supervisor", None),
    ]
    assert all(a.at <= b.at for a, b in zip(closed.history, closed.history[1:], strict=False))
    with pytest.raises(ValueError, match="closed"):
        await store.set_status(code, Status.IN_PROGRESS, by="agent1")
    assert await store.get(code) == closed
    with pytest.raises(KeyError):
        await store.set_status("1022-20260501-999999", Status.CLOSED, by="x")


async def test_returned_tickets_are_copies(store: TicketStore) -> None:
    code = await _open(store)
    got = await store.get(code)
    assert got is not None
    got.ivr_path.append(IvrStep(T0, "x"))
    got.queue = "changed"
    again = await store.get(code)
    assert again is not None and again.ivr_path == [] and again.queue is None


async def test_given_open_returned_then_ticket_is_on_disk(db_url: str) -> None:
    first = await open_store(db_url)
    code = await _open(first)
    second = await open_store(db_url)  # another engine, as another process would
    try:
        got = await second.get(code)
    finally:
        await first.close()
        await second.close()
    assert got is not None and got.code == code


async def test_migrations_match_models_and_run_twice_from_any_cwd(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    await asyncio.gather(migrate(db_url), migrate(db_url))
    await migrate(db_url)
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"include_name": is_modelled}),
                    Base.metadata,
                )
            )
    finally:
        await engine.dispose()
    assert diff == []


def test_sqlite_parent_folder_is_created(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "t.db"
    make_engine(f"sqlite+aiosqlite:///{target}")
    assert target.parent.is_dir()


async def test_given_database_away_when_opening_then_store_error() -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:1/x"
    with pytest.raises(StoreError, match=re.escape("127.0.0.1:1")):
        await open_store(url)
    with pytest.raises(StoreError, match="cannot migrate"):
        await migrate(url)


async def test_given_bad_url_then_store_error() -> None:
    with pytest.raises(StoreError, match="not supported"):
        await migrate("mysql://root@localhost/x")


async def test_announcements_set_replace_expire_clear(db_url: str) -> None:
    await migrate(db_url)
    engine = make_engine(db_url)
    try:
        assert await active_announcement(engine, T0) is None
        first = await set_announcement(engine, "Bão số 5", None, None, "admin", now=T0)
        until = T0 + timedelta(hours=2)
        second = await set_announcement(
            engine, "Mất điện", "ann/matdien.wav", until, "admin", now=T0 + timedelta(hours=1)
        )
        assert await active_announcement(engine, T0 + timedelta(minutes=1)) is None  # cleared
        active = await active_announcement(engine, T0 + timedelta(hours=1, minutes=5))
        assert active == second and active.id != first.id
        assert active.active_until == until and active.prompt_file == "ann/matdien.wav"
        assert await active_announcement(engine, until) is None  # expired
        assert (
            await clear_announcement(engine, "admin", now=T0 + timedelta(hours=1, minutes=9)) == 1
        )
        assert await active_announcement(engine, T0 + timedelta(hours=1, minutes=10)) is None
        with pytest.raises(ValueError):
            await set_announcement(engine, "x", None, T0, "admin", now=T0)
    finally:
        await engine.dispose()


# --- the ``tongdai tickets`` command --------------------------------------------------------


def run_cli(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """``hotline.cli.main`` with only the tickets and dossiers commands registered."""

    def build_parser() -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog="tongdai")
        parser.add_argument("--config")
        parser.add_argument("-v", "--verbose", action="store_true")
        sub = parser.add_subparsers(dest="command", required=True)
        tickets_cli.register(sub)
        dossiers_cli.register(sub)
        return parser

    monkeypatch.setattr(tongdai_cli, "build_parser", build_parser)
    return tongdai_cli.main(argv)


@pytest.fixture
def cli_config(db_url: str, tmp_path: Path) -> str:
    path = tmp_path / "tongdai.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    return str(path)


async def _seed(url: str) -> str:
    store = await open_store(url)
    try:
        code = await _open(store, uniqueid="1714.9")
        await store.append_steps(code, [IvrStep(T0, "welcome"), IvrStep(T0, "main", key="2")])
        await store.update(code, answered_at=T0 + timedelta(seconds=40), outcome=Outcome.ANSWERED)
        await _open(store, minutes=60 * 24)  # the next day: outside the window below
        return code
    finally:
        await store.close()


def test_tickets_list_json_has_exactly_the_documented_keys(
    db_url: str,
    cli_config: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = asyncio.run(_seed(db_url))
    argv = ["--config", cli_config, "tickets", "list", "--json", "--since", "2026-05-01"]
    assert run_cli([*argv, "--until", "2026-05-02"], monkeypatch) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    row = json.loads(lines[0])
    assert list(row) == list(tickets_cli.JSON_KEYS)
    assert set(row) == {
        "code", "channel", "caller", "started_at", "queued_at", "answered_at", "ended_at",
        "ivr_path", "category", "queue", "agent", "outcome", "dossier_code", "recording", "status",
    }  # fmt: skip
    assert row["code"] == code and row["outcome"] == "answered" and row["status"] == "new"
    assert datetime.fromisoformat(row["started_at"]) == T0
    assert datetime.fromisoformat(row["answered_at"]) == T0 + timedelta(seconds=40)
    assert row["queued_at"] is None and row["ended_at"] is None
    assert [list(s) for s in row["ivr_path"]] == [["at", "node", "key", "detail"]] * 2
    assert [(s["node"], s["key"]) for s in row["ivr_path"]] == [("welcome", None), ("main", "2")]


def test_tickets_show_status_and_table(
    db_url: str,
    cli_config: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = asyncio.run(_seed(db_url))
    base = ["--config", cli_config, "tickets"]
    assert (
        run_cli(
            [*base, "status", code, "in_progress", "--by", "agent7", "--note", "ok"], monkeypatch
        )
        == 0
    )
    assert run_cli([*base, "show", code], monkeypatch) == 0
    out = capsys.readouterr().out
    assert "agent7" in out and "in_progress" in out and "welcome" in out
    assert run_cli([*base, "status", code, "new"], monkeypatch) == 2
    assert "cannot go from in_progress to new" in capsys.readouterr().err
    assert run_cli([*base, "show", "1022-20990101-000001"], monkeypatch) == 1
    assert run_cli([*base, "list", "--limit", "1"], monkeypatch) == 0
    assert code in capsys.readouterr().out


def test_given_bad_since_when_listing_then_clear_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        run_cli(["tickets", "list", "--since", "yesterday"], monkeypatch)
    assert exc.value.code == 2
    assert "'yesterday' is not a date" in capsys.readouterr().err


def test_given_database_away_when_listing_then_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "t.toml"
    config.write_text('[database]\nurl = "postgresql+asyncpg://postgres@127.0.0.1:1/x"\n')
    assert run_cli(["--config", str(config), "tickets", "list"], monkeypatch) == 2
    err = capsys.readouterr().err
    assert err.startswith("tongdai: error: cannot migrate database") and "Traceback" not in err
