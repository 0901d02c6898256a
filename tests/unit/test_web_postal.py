"""Postal delivery registration on the web: the API (create, list, history, status moves,
export) with roles, the console page's form (Vietnamese errors, what was typed kept and
escaped), completing a telephone request, and the registration on its ticket's page."""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest
from openpyxl import load_workbook

from accounts.store import AuthStore
from bench.web_rig import FAST_HASHER, WebRig, login, web_rig
from postal.desk import PostalDesk
from tongdai.clock import VN_TZ

NOW = datetime(2026, 12, 7, 10, 30, tzinfo=VN_TZ)
XSS = '<script>alert("Hoa")</script>'
ADDRESS = {
    "recipient": "Nguyễn Thị Hoa",
    "phone": "0905 111 222",
    "district": "tam_ky",
    "ward": "Phường An Mỹ",
    "street": "12 Trần Cao Vân",
    "preferred_time": "sang",
}


@pytest.fixture
async def rig(db_url: str) -> AsyncIterator[WebRig]:
    async with web_rig(db_url, clock=lambda: NOW) as r:
        auth = AuthStore(r.deps.engine, hasher=FAST_HASHER)
        for name, agency in (("bdqn", "buu_dien"), ("gtvt1", "so_gtvt")):
            await auth.add_user(name, "agency", "mật-khẩu-dài-123", agency_id=agency)
            r.tokens[name] = await auth.new_token(name, "test")
        yield r


def api(rig: WebRig, who: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {rig.tokens[who]}"} if who else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=rig.app), base_url="http://t", headers=headers
    )


@contextlib.asynccontextmanager
async def browser(rig: WebRig, who: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=rig.app), base_url="http://t"
    ) as c:
        yield c, await login(c, who, rig.accounts[who].password)


async def ticket(rig: WebRig) -> str:
    t = await rig.deps.tickets.open(
        channel="voice", caller="0905111222", uniqueid=None, started_at=NOW
    )
    return t.code


def desk(rig: WebRig) -> PostalDesk:
    found: PostalDesk = rig.app.state.postal
    return found


async def test_given_a_registration_by_api_then_listed_moved_along_and_on_the_ticket(
    rig: WebRig,
) -> None:
    code = await ticket(rig)
    async with api(rig, "tdv101") as c:
        r = await c.post("/api/v1/postal", json={"ticket": code, "dossier_code": "123456",
                                                  **ADDRESS})  # fmt: skip
        assert r.status_code == 201, r.text
        reg = r.json()
        assert (reg["state"], reg["phone"], reg["district"], reg["created_by"]) == (
            "registered", "0905111222", "Thành phố Tam Kỳ", "tdv101",
        )  # fmt: skip
        assert reg["address"] == "12 Trần Cao Vân, Phường An Mỹ, Thành phố Tam Kỳ, Tỉnh Quảng Nam"
        listed = (await c.get("/api/v1/postal", params={"state": "registered"})).json()
        assert [x["id"] for x in listed["registrations"]] == [reg["id"]]
        handed = {"state": "handed_to_post", "note": "Giao BĐ Tam Kỳ"}
        moved = await c.post(f"/api/v1/postal/{reg['id']}/status", json=handed)
        assert moved.status_code == 200 and moved.json()["state"] == "handed_to_post"
        again = await c.post(f"/api/v1/postal/{reg['id']}/status", json={"state": "handed_to_post"})
        assert again.status_code == 409 and again.json()["error"]["id"] == "illegal_state"
    async with api(rig, "giamsat") as c:
        r = await c.post(f"/api/v1/postal/{reg['id']}/status", json={"state": "delivered"})
        assert r.status_code == 200
        one = (await c.get(f"/api/v1/postal/{reg['id']}")).json()
        assert [(h["from"], h["to"], h["by"]) for h in one["history"]] == [
            (None, "registered", "tdv101"),
            ("registered", "handed_to_post", "tdv101"),
            ("handed_to_post", "delivered", "giamsat"),
        ]
        page = await c.get(f"/tickets/{code}")
        assert page.status_code == 200
        assert "Bưu chính (hồ sơ 123456): Đã giao bưu điện → Đã phát" in page.text
        assert 'id="postal"' in page.text and "Giao BĐ Tam Kỳ" in page.text


async def test_given_bad_input_then_422_with_each_fields_vietnamese_message(rig: WebRig) -> None:
    code = await ticket(rig)
    async with api(rig, "tdv101") as c:
        r = await c.post("/api/v1/postal", json={"ticket": code, "dossier_code": "12ab",
                         **ADDRESS, "phone": "123", "ward": "Phường Minh An"})  # fmt: skip
        assert r.status_code == 422
        fields = r.json()["error"]["details"]["fields"]
        assert set(fields) == {"dossier_code", "phone", "ward"}
        assert fields["ward"] == "Xin chọn xã, phường, thị trấn thuộc Thành phố Tam Kỳ."
        r = await c.post("/api/v1/postal", json={"ticket": "1022-20261207-999999",
                                                  "dossier_code": "123456", **ADDRESS})  # fmt: skip
        assert r.status_code == 422
        assert r.json()["error"]["details"]["fields"] == {"ticket": "Không có phiếu với mã này."}
        r = await c.post("/api/v1/postal", json={"ticket": code, "dossier_code": "1", "x": 1})
        assert r.status_code == 422 and "x" in r.json()["error"]["message"]
        ok = await c.post("/api/v1/postal", json={"ticket": code, "dossier_code": "123456",
                                                   **ADDRESS})  # fmt: skip
        assert ok.status_code == 201
        dup = await c.post("/api/v1/postal", json={"ticket": code, "dossier_code": "123456",
                                                    **ADDRESS})  # fmt: skip
        assert dup.status_code == 409 and dup.json()["error"]["id"] == "already_registered"
        assert len((await c.get("/api/v1/postal")).json()["registrations"]) == 1
        for bad in ({"state": "registered"}, {"state": "lost"}):
            r = await c.post(f"/api/v1/postal/{ok.json()['id']}/status", json=bad)
            assert r.status_code == 422, bad
        assert (await c.get("/api/v1/postal/99999")).status_code == 404
        assert (
            await c.get("/api/v1/postal/export", params={"date": "7/12/2026"})
        ).status_code == 422
        assert (await c.get("/api/v1/postal/export", params={"format": "pdf"})).status_code == 422


async def test_given_roles_then_only_agents_supervisors_and_admins_see_postal(rig: WebRig) -> None:
    paths = ("/api/v1/postal", "/api/v1/postal/places", "/api/v1/postal/export", "/buu-chinh")
    for who in ("tdv101", "giamsat", "quantri"):
        async with api(rig, who) as c:
            for path in paths:
                assert (await c.get(path)).status_code == 200, (who, path)
    for who in ("quanly", "gtvt1"):
        async with api(rig, who) as c:
            for path in paths:
                assert (await c.get(path)).status_code == 403, (who, path)
            r = await c.post("/api/v1/postal", json={"ticket": "x"})
            assert r.status_code == 403
    async with api(rig, None) as c:
        assert (await c.get("/api/v1/postal")).status_code == 401
        r = await c.get("/buu-chinh")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
    async with browser(rig, "tdv101") as (c, csrf):
        r = await c.post("/buu-chinh", data={"dossier_code": "123456"})  # no CSRF token
        assert r.status_code == 403
        assert (await c.get("/api/v1/postal")).json()["registrations"] == []


async def test_given_a_bad_form_then_the_page_says_what_is_wrong_and_keeps_it_escaped(
    rig: WebRig,
) -> None:
    code = await ticket(rig)
    async with browser(rig, "tdv101") as (c, csrf):
        page = await c.get(f"/buu-chinh?ticket={code}&dossier=123456")
        assert page.status_code == 200
        assert f'name="ticket" maxlength="32" required value="{code}"' in page.text
        assert '<option value="hoi_an">Thành phố Hội An</option>' in page.text
        assert '<optgroup label="Huyện Nam Giang">' in page.text
        form = {"csrf": csrf, "ticket": code, "dossier_code": "123456", **ADDRESS,
                "recipient": XSS, "street": ""}  # fmt: skip
        r = await c.post("/buu-chinh", data=form)
        assert r.status_code == 422
        assert "Xin nhập số nhà, đường hoặc thôn, tổ (3 đến 200 ký tự)." in r.text
        assert XSS not in r.text and "&lt;script&gt;alert(&#34;Hoa&#34;)&lt;/script&gt;" in r.text
        assert '<option value="Phường An Mỹ" selected>' in r.text  # the choice is kept
        assert (await c.get("/api/v1/postal")).json()["registrations"] == []
        r = await c.post("/buu-chinh", data={**form, "street": "12 Trần Cao Vân"})
        assert r.status_code == 303 and r.headers["location"].endswith("?ok=postal_registered")
        one = await c.get(r.headers["location"])
        assert one.status_code == 200 and "Đã đăng ký nhận kết quả qua bưu điện." in one.text
        assert XSS not in one.text and "&lt;script&gt;" in one.text
        listing = await c.get("/buu-chinh")
        assert XSS not in listing.text and "&lt;script&gt;" in listing.text


async def test_given_a_phone_request_then_the_agent_completes_it_and_it_is_on_the_days_list(
    rig: WebRig,
) -> None:
    code = await ticket(rig)
    req = await desk(rig).store.request(
        ticket_code=code, dossier_code="2026001", phone="0905111222", by="ivr", at=NOW
    )
    async with browser(rig, "tdv101") as (c, csrf):
        console = await c.get("/console")  # the agent's list of people to call back
        assert 'id="postal-requests"' in console.text and f"/buu-chinh/{req.id}" in console.text
        page = await c.get(f"/buu-chinh/{req.id}")
        assert "Chờ lấy địa chỉ" in page.text and 'id="postal-complete"' in page.text
        assert "Gọi lại số 0905111222" in page.text
        r = await c.post(f"/buu-chinh/{req.id}/complete",
                         data={"csrf": csrf, **ADDRESS, "district": "", "ward": ""})  # fmt: skip
        assert r.status_code == 422 and "Xin chọn quận, huyện" in r.text
        r = await c.post(f"/buu-chinh/{req.id}/complete", data={"csrf": csrf, **ADDRESS})
        assert r.status_code == 303 and "ok=postal_completed" in r.headers["location"]
        r = await c.post(f"/buu-chinh/{req.id}/status",
                         data={"csrf": csrf, "state": "handed_to_post", "from": "one"})  # fmt: skip
        assert r.headers["location"] == f"/buu-chinh/{req.id}?ok=postal_state"
        xlsx = await c.get("/api/v1/postal/export", params={"date": "2026-12-07", "format": "xlsx"})
        assert xlsx.status_code == 200
        assert 'filename="buu-chinh-2026-12-07.xlsx"' in xlsx.headers["content-disposition"]
        ws = load_workbook(io.BytesIO(xlsx.content)).active
        assert ws is not None and ws.max_row == 2
        assert [c.value for c in ws[2]][1:4] == ["2026001", code, "Nguyễn Thị Hoa"]
        other_day = await c.get("/api/v1/postal/export", params={"date": "2026-12-06"})
        rows = list(csv.reader(io.StringIO(other_day.content.decode("utf-8-sig"))))
        assert len(rows) == 1  # the header only
        today = await c.get("/api/v1/postal/export")  # default: today, CSV
        rows = list(csv.reader(io.StringIO(today.content.decode("utf-8-sig"))))
        assert [r[1] for r in rows[1:]] == ["2026001"] and rows[1][10] == "Đã giao bưu điện"
        console = await c.get("/console")
        assert 'id="postal-requests"' not in console.text  # done: off the list


async def test_given_the_post_office_account_then_it_reads_the_list_and_marks_delivered_only(
    rig: WebRig,
) -> None:
    code = await ticket(rig)
    async with api(rig, "tdv101") as c:
        reg = (await c.post("/api/v1/postal", json={"ticket": code, "dossier_code": "123456",
                                                     **ADDRESS})).json()  # fmt: skip
        await c.post(f"/api/v1/postal/{reg['id']}/status", json={"state": "handed_to_post"})
    async with api(rig, "bdqn") as c:
        listed = (await c.get("/api/v1/postal")).json()["registrations"]
        assert [x["id"] for x in listed] == [reg["id"]]
        export = await c.get("/api/v1/postal/export", params={"date": "2026-12-07"})
        assert export.status_code == 200 and "Nguyễn Thị Hoa" in export.content.decode("utf-8")
        for body in ({"state": "cancelled"}, {"state": "handed_to_post"}):
            r = await c.post(f"/api/v1/postal/{reg['id']}/status", json=body)
            assert r.status_code == 403, body
        r = await c.post("/api/v1/postal", json={"ticket": code, "dossier_code": "5555",
                                                  **ADDRESS})  # fmt: skip
        assert r.status_code == 403
        r = await c.post(f"/api/v1/postal/{reg['id']}/complete", json=ADDRESS)
        assert r.status_code == 403
        r = await c.post(f"/api/v1/postal/{reg['id']}/status", json={"state": "delivered"})
        assert r.status_code == 200 and r.json()["state"] == "delivered"
        assert (await c.get(f"/api/v1/tickets/{code}")).status_code == 403  # not the ticket
        desk_page = await c.get("/co-quan")
        assert 'id="postal-link"' in desk_page.text
        page = await c.get("/buu-chinh")
        assert page.status_code == 200 and 'id="postal-form"' not in page.text
        assert f'href="/tickets/{code}"' not in page.text
    async with api(rig, "gtvt1") as c:
        assert 'id="postal-link"' not in (await c.get("/co-quan")).text
    one = (await desk(rig).store.events(reg["id"]))[-1]
    assert (one.to_state.value, one.by) == ("delivered", "bdqn")
