"""The OpenAPI document: valid, complete (every API route, no phantom one), and schemathesis
fuzzing the running API from it finds no server error."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import schemathesis
from schemathesis.core.result import Ok
from starlette.routing import Route

from bench.web_rig import SimAcd, web_rig
from dossiers.model import Dossier, DossierStatus
from dossiers.procedures import OnlineLevel, Procedure
from dossiers.procedures_sql import upsert_procedures
from dossiers.sql import upsert_dossiers
from tickets.model import Ticket
from web import api, back_office, postal
from web.app import listen, serve
from web.openapi import document


def _template(path: str) -> str:
    return path  # Starlette and OpenAPI write path parameters the same way: {name}


def test_the_document_is_json_and_lists_every_route_with_its_methods() -> None:
    doc = json.loads(json.dumps(document()))
    assert doc["openapi"].startswith("3.1")
    served: dict[str, set[str]] = {}
    for r in api.routes() + back_office.routes() + postal.routes():
        assert isinstance(r, Route)
        served.setdefault(_template(r.path), set()).update(
            m.lower() for m in (r.methods or ()) if m != "HEAD"
        )
    documented = {path: set(ops) for path, ops in doc["paths"].items()}
    assert documented == served


def test_the_document_is_a_valid_openapi_schema() -> None:
    schema = schemathesis.openapi.from_dict(document())
    results = list(schema.get_all_operations())
    assert all(isinstance(r, Ok) for r in results), results
    operations = [r.ok() for r in results if isinstance(r, Ok)]
    assert len(operations) == sum(len(ops) for ops in document()["paths"].values())
    for op in operations:
        for status, response in op.definition.raw["responses"].items():
            assert status in {"200", "201", "202"} or response["content"]["application/json"][
                "schema"
            ] == {"$ref": "#/components/schemas/Error"}


async def test_given_fuzzed_requests_from_the_document_then_the_api_never_answers_500(
    make_db_url: Callable[[str], str], tmp_path: Path
) -> None:
    sim = SimAcd()
    await sim.start(login=["agent101", "agent102", "agent103"])
    async with web_rig(make_db_url("sqlite"), sim.control, lifespan=False) as rig:
        # the document's examples exist, so the fuzzing reaches past "not found"
        example = Ticket(0, "1022-20260101-000001", "voice", "0905", None, datetime.now(UTC))
        await rig.deps.tickets.import_ticket(example)  # type: ignore[attr-defined]
        dossier = Dossier(
            "12345678", "Cấp phép", "Sở Xây dựng", DossierStatus.RECEIVED, date(2026, 1, 5), None
        )
        await upsert_dossiers(rig.deps.engine, [dossier])
        birth = Procedure("1.001612", "Khai sinh", "ubnd_tam_ky", "", 0, 0, OnlineLevel.FULL)
        await upsert_procedures(rig.deps.engine, [birth])
        sock = listen("127.0.0.1", 0)
        stop, ready = asyncio.Event(), asyncio.Event()
        server = asyncio.create_task(serve(rig.app, sock, stop, ready=ready))
        try:
            await asyncio.wait_for(ready.wait(), 5)
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            report = tmp_path / "schemathesis.json"
            proc = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                f"{url}/api/v1/openapi.json",
                "--header",
                f"Authorization: Bearer {rig.tokens['quantri']}",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "20",
                "--workers",
                "1",
                "--seed",
                "1022",
                "--phases",
                "examples,coverage,fuzzing",
                "--generation-database",
                "none",
                "--request-timeout",
                "10",
                "--no-color",
                "--report",
                "json",
                "--report-json-path",
                str(report),
                cwd=tmp_path,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
            )
            async with asyncio.timeout(300):
                out, _ = await proc.communicate()
        finally:
            stop.set()
            await asyncio.wait_for(server, 10)
            await sim.stop()
    text = out.decode("utf-8", "replace")
    assert proc.returncode == 0, text[-4000:]
    assert "Server error" not in text
    # every operation but the document itself is tested
    operations = sum(len(ops) for ops in document()["paths"].values()) - 1
    assert f"Selected: {operations}/{operations}" in text, text[-2000:]
    assert f"Tested: {operations}" in text, text[-2000:]
    assert " 0 passed" not in text and "failed" not in text.split("Test cases:")[-1]
