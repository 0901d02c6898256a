"""The procedure catalogue in the API and the console: agents search it by code or words
without diacritics, read one by code; without a login nothing; bad input is a 4xx; the page
escapes what the catalogue holds."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bench.web_rig import WebRig, api_client, login, web_rig
from dossiers.procedures import OnlineLevel, Procedure
from dossiers.procedures_csv import read_procedures
from dossiers.procedures_sql import upsert_procedures
from tongdai.settings import PROJECT_HOME

SAMPLE = PROJECT_HOME / "dossiers/sample_procedures_quangnam.csv"


@pytest.fixture
async def rig(db_url: str) -> AsyncIterator[WebRig]:
    async with web_rig(db_url, lifespan=False) as r:
        await upsert_procedures(r.deps.engine, read_procedures(SAMPLE))
        yield r


async def test_an_agent_searches_by_words_or_code_and_reads_one(rig: WebRig) -> None:
    async with api_client(rig, "tdv101") as c:
        r = await c.get("/api/v1/procedures", params={"q": "giay phep LAI xe"})
        assert r.status_code == 200, r.text
        (found,) = r.json()["procedures"]
        assert found == {
            "code": "1.002809",
            "name": "Cấp đổi giấy phép lái xe do ngành Giao thông vận tải cấp",
            "agency": "so_gtvt",
            "documents": [
                "Đơn đề nghị đổi giấy phép lái xe",
                "Bản sao giấy phép lái xe",
                "Giấy khám sức khỏe",
            ],
            "time_limit_days": 5,
            "fee_vnd": 135000,
            "online_level": "toan_trinh",
        }
        r = await c.get("/api/v1/procedures", params={"q": "1002809"})
        assert [p["code"] for p in r.json()["procedures"]] == ["1.002809"]
        r = await c.get("/api/v1/procedures", params={"q": "giay phep", "limit": "2"})
        assert len(r.json()["procedures"]) == 2
        one = await c.get("/api/v1/procedures/1.001612")
        assert (one.status_code, one.json()["name"]) == (200, "Đăng ký khai sinh")
        missing = await c.get("/api/v1/procedures/9.999999")
        assert missing.status_code == 404 and missing.json()["error"]["id"] == "not_found"


async def test_without_login_the_catalogue_is_closed(rig: WebRig) -> None:
    async with api_client(rig, None) as c:
        assert (await c.get("/api/v1/procedures", params={"q": "khai sinh"})).status_code == 401
        assert (await c.get("/api/v1/procedures/1.001612")).status_code == 401


async def test_bad_queries_are_refused(rig: WebRig) -> None:
    async with api_client(rig, "tdv101") as c:
        for params in ({"q": "x" * 301}, {"q": "a", "limit": "0"}, {"q": "a\x00"}):
            r = await c.get("/api/v1/procedures", params=params)
            assert r.status_code == 422, params
        r = await c.get("/api/v1/procedures/1001612")
        assert r.status_code == 422 and "1.004227" in r.text


async def test_the_page_shows_the_catalogue_escaped_and_needs_a_login(rig: WebRig) -> None:
    odd = Procedure(
        "3.000001", "Thủ tục <script>alert(1)</script>", "so_tu_phap", "Đơn <b>A</b>; Ảnh", 7,
        1_500_000, OnlineLevel.NONE,
    )  # fmt: skip
    await upsert_procedures(rig.deps.engine, [odd])
    transport = httpx.ASGITransport(app=rig.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.get("/thu-tuc", params={"q": "khai sinh"})
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        await login(c, "tdv101", rig.accounts["tdv101"].password)
        html = (await c.get("/thu-tuc", params={"q": "dang ky khai sinh"})).text
        assert 'id="procedure-count">1 thủ tục.' in html
        assert "1.001612 · Đăng ký khai sinh" in html and "UBND thành phố Tam Kỳ" in html
        assert "trong ngày" in html and "Không thu" in html
        html = (await c.get("/thu-tuc", params={"q": "3.000001"})).text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
        assert "<li>Đơn &lt;b&gt;A&lt;/b&gt;</li>" in html and "1.500.000 đồng" in html
        assert "7 ngày làm việc" in html and "Nộp trực tiếp hoặc qua bưu chính" in html
        assert 'href="/thu-tuc"' in html  # in the menu
