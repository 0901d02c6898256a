"""The back office on the web: forwarding (API and ticket page), the agency desk (an agency
account sees nothing of other agencies, on the API or the pages), the answer back to the
citizen, and the public look-up ``/tra-cuu`` (no leak without the right digits, rate-limited)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest

from accounts.store import AuthStore
from bench.web_rig import FAST_HASHER, WebRig, web_rig
from tickets.model import Status
from tongdai.clock import VN_TZ

FRIDAY = datetime(2026, 12, 4, 15, 30, tzinfo=VN_TZ)
NOW = [FRIDAY]
AGENCY_ACCOUNTS = {"gtvt1": "so_gtvt", "stp1": "so_tu_phap"}


@pytest.fixture
async def rig(db_url: str) -> AsyncIterator[WebRig]:
    NOW[0] = FRIDAY
    async with web_rig(db_url, clock=lambda: NOW[0]) as r:
        auth = AuthStore(r.deps.engine, hasher=FAST_HASHER)
        for name, agency in AGENCY_ACCOUNTS.items():
            await auth.add_user(name, "agency", "mật-khẩu-dài-123", agency_id=agency)
            r.tokens[name] = await auth.new_token(name, "test")
        yield r


def client(rig: WebRig, who: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {rig.tokens[who]}"} if who else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=rig.app), base_url="http://t", headers=headers
    )


async def ticket(rig: WebRig, channel: str = "voice", caller: str = "0905111222") -> str:
    t = await rig.deps.tickets.open(
        channel=channel, caller=caller, uniqueid=None, started_at=NOW[0]
    )
    return t.code


async def forward(rig: WebRig, code: str, agency: str = "so_gtvt") -> dict[str, object]:
    async with client(rig, "tdv101") as c:
        r = await c.post(
            f"/api/v1/tickets/{code}/forward", json={"agency": agency, "note": "Ổ gà trên QL1A"}
        )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_given_a_forward_then_due_after_the_weekend_and_flagged_when_near(
    rig: WebRig,
) -> None:
    code = await ticket(rig)
    f = await forward(rig, code)
    assert f["due_at"] == "2026-12-09T10:00:00+00:00"  # Wednesday 17:00 in Vietnam
    assert (f["state"], f["notify"], f["agency_name"]) == (
        "forwarded", "pending", "Sở Giao thông vận tải",
    )  # fmt: skip
    NOW[0] = datetime(2026, 12, 9, 9, tzinfo=VN_TZ)
    async with client(rig, "giamsat") as c:
        r = (await c.get("/api/v1/forwards", params={"flag": "nearly_due"})).json()
        assert (r["nearly_due"], r["overdue"]) == (1, 0)
        assert [x["ticket"] for x in r["forwards"]] == [code]
        NOW[0] = datetime(2026, 12, 10, 9, tzinfo=VN_TZ)
        r = (await c.get("/api/v1/forwards", params={"flag": "overdue"})).json()
        assert r["overdue"] == 1 and r["forwards"][0]["flag"] == "overdue"
        today = (await c.get("/api/v1/queues")).json()["today"]["total"]
        assert (today["forwards_overdue"], today["forwards_nearly_due"]) == (1, 0)
        wallboard = await c.get("/wallboard")
        assert 'id="t-fwd-overdue"' in wallboard.text  # filled by the live figures
        again = await c.post(f"/api/v1/tickets/{code}/forward", json={"agency": "so_xay_dung"})
        assert again.status_code == 409 and again.json()["error"]["id"] == "already_forwarded"
        bad = await c.post(f"/api/v1/tickets/{code}/forward", json={"agency": "so_ma"})
        assert bad.status_code == 422 and bad.json()["error"]["id"] == "unknown_agency"
    t = await rig.deps.tickets.get(code)
    assert t is not None and t.status is Status.IN_PROGRESS


async def test_given_two_agencies_then_each_sees_only_its_own_tickets(rig: WebRig) -> None:
    mine, theirs = await ticket(rig), await ticket(rig, caller="0905999888")
    f_mine = await forward(rig, mine, "so_gtvt")
    f_theirs = await forward(rig, theirs, "so_tu_phap")
    async with client(rig, "gtvt1") as c:
        listed = (await c.get("/api/v1/agency/forwards")).json()["forwards"]
        assert [x["ticket"] for x in listed] == [mine]
        seen = (await c.get(f"/api/v1/agency/tickets/{mine}")).json()
        assert seen["ticket"]["code"] == mine and "caller" not in seen["ticket"]
        assert "0905111222" not in str(seen)
        for path in (f"/api/v1/agency/tickets/{theirs}", f"/co-quan/phieu/{theirs}"):
            r = await c.get(path)
            assert r.status_code == 404 and theirs not in r.text and "0905999888" not in r.text
        r = await c.post(f"/api/v1/agency/forwards/{f_theirs['id']}/answer", json={"text": "x"})
        assert r.status_code == 404
        r = await c.post(f"/co-quan/forwards/{f_theirs['id']}",
                         data={"move": "send-back", "reason": "x", "code": theirs})  # fmt: skip
        assert r.status_code == 303 and "err=not_found" in r.headers["location"]
        for path in (f"/api/v1/tickets/{theirs}", "/api/v1/tickets", "/api/v1/forwards",
                     f"/tickets/{theirs}", "/tickets", "/api/v1/agencies"):  # fmt: skip
            assert (await c.get(path)).status_code == 403, path
        for path in ("/wallboard", "/console", "/reports", "/admin/users", "/live", "/metrics",
                     "/api/v1/callbacks", "/api/v1/forwards/callbacks",
                     "/console/conversations", "/api/conversations"):  # fmt: skip
            assert (await c.get(path)).status_code == 403, path
        home = await c.get("/")
        assert home.status_code == 303 and home.headers["location"] == "/co-quan"
        page = await c.get("/co-quan")
        assert page.status_code == 200 and mine in page.text and theirs not in page.text
        page = await c.get(f"/co-quan/phieu/{mine}")
        assert page.status_code == 200 and "Ổ gà trên QL1A" in page.text
        assert "0905111222" not in page.text
    async with client(rig, "stp1") as c:
        listed = (await c.get("/api/v1/agency/forwards")).json()["forwards"]
        assert [x["id"] for x in listed] == [f_theirs["id"]]
        assert (await c.get(f"/api/v1/agency/tickets/{mine}")).status_code == 404
        r = await c.post(f"/api/v1/agency/forwards/{f_mine['id']}/extend", json={"reason": "x"})
        assert r.status_code == 404
    async with client(rig, "tdv101") as c:  # the centre's staff have no agency desk
        assert (await c.get("/api/v1/agency/forwards")).status_code == 403
        assert (await c.get("/co-quan")).status_code == 403


async def test_the_agency_extends_once_answers_and_the_answer_goes_back_by_email(
    rig: WebRig,
) -> None:
    code = await ticket(rig, "email", "dan@example.vn")
    f = await forward(rig, code, "so_gtvt")
    base = f"/api/v1/agency/forwards/{f['id']}"
    async with client(rig, "gtvt1") as c:
        r = await c.post(f"{base}/extend", json={"reason": ""})
        assert r.status_code == 422
        r = await c.post(f"{base}/extend", json={"reason": "Cần khảo sát hiện trường"})
        assert r.status_code == 200 and r.json()["due_at"] == "2026-12-14T10:00:00+00:00"
        r = await c.post(f"{base}/extend", json={"reason": "Lần nữa"})
        assert r.status_code == 409 and r.json()["error"]["id"] == "illegal_forward"
        r = await c.post(f"{base}/answer", json={"text": "Đã vá mặt đường", "public": True})
        assert r.status_code == 200 and r.json()["state"] == "answered"
    async with client(rig, "tdv101") as c:
        page = await c.get(f"/tickets/{code}")
        assert "Gửi trả lời và giải quyết" in page.text and "Đã vá mặt đường" in page.text
        r = await c.post(f"/tickets/{code}/answer-back", data={"text": "Đã vá mặt đường."})
        assert r.status_code == 303 and "ok=answer_back" in r.headers["location"]
        again = await c.post(f"/api/v1/tickets/{code}/answer-back", json={})
        assert again.status_code == 409
    t = await rig.deps.tickets.get(code)
    assert t is not None and t.status is Status.RESOLVED
    conv = rig.app.state.desk.outbox.conv
    assert "Đã vá mặt đường." in (await conv.messages(code))[-1].body


async def test_given_an_answered_call_then_the_console_lists_a_callback_until_done(
    rig: WebRig,
) -> None:
    code = await ticket(rig)
    f = await forward(rig, code, "so_gtvt")
    async with client(rig, "gtvt1") as c:
        r = await c.post(f"/api/v1/agency/forwards/{f['id']}/answer", json={"text": "Đã vá"})
        assert r.status_code == 200
    async with client(rig, "tdv101") as c:
        r = await c.post(f"/api/v1/tickets/{code}/answer-back", json={})
        assert r.status_code == 200 and r.json()["reply_via"] == "callback"
        todo = (await c.get("/api/v1/forwards/callbacks")).json()["forwards"]
        assert [x["ticket"] for x in todo] == [code]
        page = await c.get("/console")
        assert 'id="answer-callbacks"' in page.text and code in page.text
        r = await c.post(f"/forwards/{f['id']}/callback-done")
        assert r.status_code == 303 and "ok=callback_done" in r.headers["location"]
        assert (await c.get("/api/v1/forwards/callbacks")).json()["forwards"] == []
        assert 'id="answer-callbacks"' not in (await c.get("/console")).text


async def test_given_a_call_when_sent_back_then_the_centre_may_forward_again_from_the_page(
    rig: WebRig,
) -> None:
    code = await ticket(rig)
    f = await forward(rig, code, "so_gtvt")
    async with client(rig, "gtvt1") as c:
        r = await c.post(f"/co-quan/forwards/{f['id']}",
                         data={"move": "send-back", "reason": "Không thuộc thẩm quyền",
                               "code": code})  # fmt: skip
        assert r.status_code == 303 and "ok=sent_back" in r.headers["location"]
    async with client(rig, "tdv101") as c:
        page = await c.get(f"/tickets/{code}")
        assert "Không thuộc thẩm quyền" in page.text and 'action="/tickets/' in page.text
        r = await c.post(f"/tickets/{code}/forward", data={"agency": "ubnd_tam_ky"})
        assert r.status_code == 303 and "ok=forwarded" in r.headers["location"]
        listed = (await c.get(f"/api/v1/tickets/{code}/forwards")).json()["forwards"]
        assert [x["state"] for x in listed] == ["sent_back", "forwarded"]


async def test_the_ordinary_resolve_button_refuses_a_ticket_an_agency_holds(rig: WebRig) -> None:
    code = await ticket(rig)
    f = await forward(rig, code, "so_gtvt")
    async with client(rig, "giamsat") as c:
        for action in ("resolve", "close"):
            r = await c.patch(f"/api/v1/tickets/{code}", json={"action": action})
            assert r.status_code == 409, r.text
            err = r.json()["error"]
            assert err["id"] == "held_by_agency" and "Sở Giao thông vận tải" in err["message"]
            assert "17:00 09/12/2026" in err["message"]  # its deadline, Vietnam time
    async with client(rig, "tdv101") as c:  # the page says the same, in words
        r = await c.post(f"/tickets/{code}", data={"action": "resolve"})
        assert r.status_code == 303 and "err=held_by_agency" in r.headers["location"]
        page = await c.get(r.headers["location"])
        assert "Phiếu đang được chuyển cơ quan" in page.text
    async with client(rig, "gtvt1") as c:
        r = await c.post(f"/api/v1/agency/forwards/{f['id']}/answer", json={"text": "Đã vá"})
        assert r.status_code == 200
    async with client(rig, "giamsat") as c:
        # answered, not given back yet: the answer-back button, not the ordinary one
        r = await c.patch(f"/api/v1/tickets/{code}", json={"action": "resolve"})
        assert r.status_code == 409 and "Gửi trả lời và giải quyết" in r.json()["error"]["message"]
        r = await c.post(f"/api/v1/tickets/{code}/answer-back", json={})
        assert r.status_code == 200
        r = await c.patch(f"/api/v1/tickets/{code}", json={"action": "close"})
        assert r.status_code == 200 and r.json()["status"] == "closed"
    t = await rig.deps.tickets.get(code)
    assert t is not None and t.status is Status.CLOSED


async def test_a_ticket_sent_back_by_its_agency_is_resolved_as_usual(rig: WebRig) -> None:
    code = await ticket(rig)
    f = await forward(rig, code, "so_gtvt")
    async with client(rig, "gtvt1") as c:
        r = await c.post(f"/api/v1/agency/forwards/{f['id']}/send-back", json={"reason": "Sai"})
        assert r.status_code == 200, r.text
    async with client(rig, "giamsat") as c:
        r = await c.patch(f"/api/v1/tickets/{code}", json={"action": "resolve"})
        assert r.status_code == 200 and r.json()["status"] == "resolved"


async def test_a_public_answer_enters_the_knowledge_base_when_the_ticket_is_resolved(
    rig: WebRig,
) -> None:
    public, private = await ticket(rig), await ticket(rig, caller="0905999888")
    fwds = {}
    for code in (public, private):
        fwds[code] = await forward(rig, code, "so_gtvt")  # note: "Ổ gà trên QL1A"
    async with client(rig, "gtvt1") as c:
        for code, is_public in ((public, True), (private, False)):
            r = await c.post(
                f"/api/v1/agency/forwards/{fwds[code]['id']}/answer",
                json={"text": f"Đã vá mặt đường ({code})", "public": is_public},
            )
            assert r.status_code == 200, r.text
    async with client(rig, "tdv101") as c:
        # answered is not enough: it is published when the answer goes back (resolved)
        assert (await c.get("/api/v1/kb", params={"q": "o ga ql1a"})).json()["entries"] == []
        for code in (public, private):
            r = await c.post(f"/api/v1/tickets/{code}/answer-back", json={})
            assert r.status_code == 200, r.text
        found = (await c.get("/api/v1/kb", params={"q": "o ga ql1a"})).json()["entries"]
    assert [(e["ticket"], e["question"], e["answer"]) for e in found] == [
        (public, "Ổ gà trên QL1A", f"Đã vá mặt đường ({public})")
    ]


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


async def test_the_public_look_up_needs_the_right_digits_and_shows_only_public_facts(
    rig: WebRig,
) -> None:
    code = await ticket(rig, caller="0905123456")
    f = await forward(rig, code, "so_gtvt")
    async with client(rig, "gtvt1") as c:
        await c.post(f"/api/v1/agency/forwards/{f['id']}/answer",
                     json={"text": "Đã sửa đèn đường", "public": True})  # fmt: skip
    async with client(rig, None) as anon:
        for proof in ("0000", "3456x", "", "dan@example.vn"):
            r = await anon.post("/tra-cuu", data={"code": code, "proof": proof})
            assert r.status_code in (404, 422)
            assert "Sở Giao thông" not in r.text and "Đã sửa" not in r.text
            assert 'id="result"' not in r.text
        unknown = await anon.post("/tra-cuu", data={"code": "1022-20261204-999999",
                                                     "proof": "3456"})  # fmt: skip
        wrong = await anon.post("/tra-cuu", data={"code": code, "proof": "3457"})
        assert unknown.status_code == wrong.status_code == 404
        assert _text(unknown.text).split() == _text(wrong.text).split()  # same page
        ok = await anon.post("/tra-cuu", data={"code": code.lower(), "proof": "3456"})
        assert ok.status_code == 200
        assert "Sở Giao thông vận tải" in ok.text and "Đang xử lý" in _text(ok.text)
        assert "Đã sửa đèn đường" not in ok.text  # not resolved yet: no answer shown
        assert "0905123456" not in ok.text and "Ổ gà" not in ok.text
    async with client(rig, "tdv101") as c:
        r = await c.post(f"/api/v1/tickets/{code}/answer-back", json={})
        assert r.status_code == 200, r.text
    async with client(rig, None) as anon:
        ok = await anon.post("/tra-cuu", data={"code": code, "proof": "3456"})
        assert "Đã sửa đèn đường" in ok.text and "Đã giải quyết" in _text(ok.text)


async def test_the_public_look_up_is_rate_limited_per_address(rig: WebRig) -> None:
    code = await ticket(rig, "email", "Dan@Example.vn")
    zalo = await ticket(rig, "zalo", "84905123456")  # a platform id, not a phone number
    async with client(rig, None) as anon:
        assert (await anon.get("/tra-cuu")).status_code == 200
        r = await anon.post("/tra-cuu", data={"code": code, "proof": "dan@example.vn"})
        assert r.status_code == 200 and code in r.text
        r = await anon.post("/tra-cuu", data={"code": zalo, "proof": "3456"})
        assert r.status_code == 404
        for _ in range(18):
            await anon.post("/tra-cuu", data={"code": code, "proof": "khac@example.vn"})
        r = await anon.post("/tra-cuu", data={"code": code, "proof": "dan@example.vn"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert code not in r.text.replace(f'value="{code}"', "")


async def test_an_administrator_creates_agency_accounts_only_for_agencies_of_the_file(
    rig: WebRig,
) -> None:
    body = {"name": "cq2", "role": "agency", "password": "mật-khẩu-dài-123"}
    async with client(rig, "quantri") as c:
        r = await c.post("/api/v1/users", json={**body, "agency_id": "so_ma"})
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "agency_id"
        r = await c.post("/api/v1/users", json=body)
        assert r.status_code == 422  # an agency account needs its agency
        r = await c.post("/api/v1/users", json={**body, "agency_id": "buu_dien"})
        assert r.status_code == 201 and r.json()["agency_id"] == "buu_dien"
        page = await c.get("/admin/users")
        assert 'name="agency_id"' in page.text and "Bưu điện tỉnh Quảng Nam" in page.text
