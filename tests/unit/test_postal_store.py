"""The postal registration stores (memory, SQLite, PostgreSQL) pass one contract: the states'
order is kept in the database, every change is in the history, one active registration per
dossier, the day's list for the post office."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta

import pytest

from postal.export import day_bounds
from postal.memory import MemoryPostalStore
from postal.model import Address, IllegalPostal, PostalError, PostalState
from postal.sql import SqlPostalStore
from postal.store import PostalStore
from tickets.memory import MemoryTicketStore
from tickets.sql import open_store
from tickets.store import TicketStore

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # 09:00 in Vietnam
HOME = Address(
    "Nguyễn Thị Hoa", "0905111222", "Tỉnh Quảng Nam", "Thành phố Tam Kỳ", "Phường An Mỹ",
    "12 Trần Cao Vân", "sang",
)  # fmt: skip
BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
async def stores(
    request: pytest.FixtureRequest, make_db_url: Callable[[str], str]
) -> AsyncIterator[tuple[TicketStore, PostalStore]]:
    if request.param == "memory":
        tickets = MemoryTicketStore()
        yield tickets, MemoryPostalStore(tickets)
        return
    sql = await open_store(make_db_url(request.param))
    try:
        yield sql, SqlPostalStore(sql.engine)
    finally:
        await sql.close()


async def _ticket(tickets: TicketStore) -> str:
    t = await tickets.open(channel="voice", caller="0905111222", uniqueid=None, started_at=T0)
    return t.code


async def test_given_a_phone_request_when_completed_then_handed_and_delivered_with_history(
    stores: tuple[TicketStore, PostalStore],
) -> None:
    tickets, postal = stores
    code = await _ticket(tickets)
    req = await postal.request(
        ticket_code=code, dossier_code="123456", phone="0905111222", by="ivr", at=T0
    )
    assert (req.state, req.recipient, req.registered_at) == (PostalState.REQUESTED, None, None)
    done = await postal.complete(req.id, HOME, by="tdv101", at=T0 + timedelta(hours=1))
    assert (done.state, done.recipient, done.ward) == (
        PostalState.REGISTERED, "Nguyễn Thị Hoa", "Phường An Mỹ",
    )  # fmt: skip
    assert done.registered_at == T0 + timedelta(hours=1)
    await postal.move(req.id, PostalState.HANDED_TO_POST, by="tdv101", at=T0 + timedelta(hours=2))
    last = await postal.move(
        req.id, PostalState.DELIVERED, by="giamsat", at=T0 + timedelta(days=1), note="BĐ đã phát"
    )
    assert last.state is PostalState.DELIVERED and not last.active
    history = await postal.events(req.id)
    assert [(e.from_state, e.to_state, e.by) for e in history] == [
        (None, PostalState.REQUESTED, "ivr"),
        (PostalState.REQUESTED, PostalState.REGISTERED, "tdv101"),
        (PostalState.REGISTERED, PostalState.HANDED_TO_POST, "tdv101"),
        (PostalState.HANDED_TO_POST, PostalState.DELIVERED, "giamsat"),
    ]
    assert history[-1].note == "BĐ đã phát"
    assert [r.id for r in await postal.of_ticket(code)] == [req.id]
    with pytest.raises(IllegalPostal) as err:
        await postal.move(req.id, PostalState.CANCELLED, by="x", at=T0 + timedelta(days=2))
    assert err.value.state is PostalState.DELIVERED


async def test_given_an_active_registration_then_a_second_one_for_the_dossier_is_refused(
    stores: tuple[TicketStore, PostalStore],
) -> None:
    tickets, postal = stores
    code = await _ticket(tickets)
    first = await postal.register(
        ticket_code=code, dossier_code="2026001", address=HOME, by="tdv101", at=T0
    )
    with pytest.raises(PostalError) as err:
        await postal.request(ticket_code=code, dossier_code="2026001", phone=None, by="ivr", at=T0)
    assert err.value.reason == "already_registered"
    await postal.move(first.id, PostalState.CANCELLED, by="tdv101", at=T0, note="dân tự đến lấy")
    again = await postal.request(
        ticket_code=code, dossier_code="2026001", phone=None, by="ivr", at=T0
    )
    assert again.id != first.id and again.state is PostalState.REQUESTED
    with pytest.raises(KeyError):
        await postal.request(
            ticket_code="1022-20261207-999999", dossier_code="1234", phone=None, by="ivr", at=T0
        )


async def test_given_illegal_moves_then_refused_and_nothing_written(
    stores: tuple[TicketStore, PostalStore],
) -> None:
    tickets, postal = stores
    code = await _ticket(tickets)
    req = await postal.request(ticket_code=code, dossier_code="55555", phone=None, by="ivr", at=T0)
    with pytest.raises(IllegalPostal):
        await postal.move(req.id, PostalState.DELIVERED, by="x", at=T0)
    with pytest.raises(PostalError):
        await postal.move(req.id, PostalState.REGISTERED, by="x", at=T0)
    with pytest.raises(KeyError):
        await postal.move(9999, PostalState.CANCELLED, by="x", at=T0)
    assert len(await postal.events(req.id)) == 1
    found = await postal.get(req.id)
    assert found is not None and found.state is PostalState.REQUESTED


async def test_given_registrations_on_two_days_then_the_post_list_has_one_day_without_cancelled(
    stores: tuple[TicketStore, PostalStore],
) -> None:
    tickets, postal = stores
    code = await _ticket(tickets)
    day = date(2026, 12, 7)
    late_evening = datetime(2026, 12, 7, 16, 59, tzinfo=UTC)  # 23:59 in Vietnam: still the 7th
    next_day = datetime(2026, 12, 7, 17, 0, tzinfo=UTC)  # 00:00 on the 8th in Vietnam
    ids = []
    for n, at in enumerate((T0, late_evening, next_day, T0)):
        reg = await postal.register(
            ticket_code=code, dossier_code=f"70000{n}", address=HOME, by="tdv101", at=at
        )
        ids.append(reg.id)
    await postal.move(ids[3], PostalState.CANCELLED, by="tdv101", at=T0)
    await postal.request(ticket_code=code, dossier_code="800000", phone=None, by="ivr", at=T0)
    listed = await postal.for_post(*day_bounds(day))
    assert [r.id for r in listed] == [ids[0], ids[1]]
    assert [r.state for r in await postal.listing(states=[PostalState.REQUESTED])] == [
        PostalState.REQUESTED
    ]
    assert len(await postal.listing()) == 5
