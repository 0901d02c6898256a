"""The OpenAPI part of ``web.postal`` (postal delivery registrations), merged into
``web.openapi.document``."""

from __future__ import annotations

from postal.desk import MOVES
from postal.model import PREFERRED_TIMES, PostalState
from web.openapi import INT, N_STR, STR, S, _json, _obj, _op, _path_param, _query, _ref, _text

SCHEMAS: S = {
    "PostalRegistration": _obj(
        ["id", "ticket", "dossier_code", "state"],
        id=INT,
        ticket=STR,
        dossier_code=STR,
        state={"enum": [s.value for s in PostalState]},
        state_label=STR,
        phone=N_STR,
        recipient=N_STR,
        province=N_STR,
        district=N_STR,
        ward=N_STR,
        street=N_STR,
        address=STR,
        preferred_time=N_STR,
        preferred_time_label=N_STR,
        note=N_STR,
        created_at=STR,
        created_by=STR,
        updated_at=STR,
        registered_at=N_STR,
    ),
}

_ID = _path_param("id", "^[0-9]{1,12}$", "1")
_ADDRESS: S = {
    "recipient": _text(100, min_len=2),
    "phone": _text(20, min_len=10),
    "district": _text(32, min_len=2),
    "ward": _text(80, min_len=2),
    "street": _text(200, min_len=3),
    "preferred_time": {"enum": list(PREFERRED_TIMES)},
}
_ADDRESS_REQUIRED = ["recipient", "phone", "district", "ward", "street"]
_ONE = _json(_ref("PostalRegistration"))


def paths() -> S:
    files = {
        "description": "The day's list (CSV, UTF-8 with a BOM, or XLSX)",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                "schema": {"type": "string", "format": "binary"}
            },
        },
    }
    return {
        "/api/v1/postal": {
            "get": _op(
                "Postal delivery registrations, newest first",
                _json(
                    _obj(
                        ["registrations"],
                        registrations={"type": "array", "items": _ref("PostalRegistration")},
                    )
                ),
                params=[
                    _query("state", {"enum": [s.value for s in PostalState]}),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                ],
            ),
            "post": _op(
                "Register a dossier's delivery by post (complete address)",
                _json(_ref("PostalRegistration"), "Created"),
                code="201",
                body=_obj(
                    ["ticket", "dossier_code", *_ADDRESS_REQUIRED],
                    ticket={"type": "string", "pattern": "^1022-[0-9]{8}-[0-9]{6,}$"},
                    dossier_code={"type": "string", "pattern": "^[0-9]{4,16}$"},
                    note=_text(500, lines=True),
                    **_ADDRESS,
                ),
            ),
        },
        "/api/v1/postal/places": {
            "get": _op(
                "The province, its districts and their wards",
                _json(_obj(["province", "districts"], province=STR, districts={"type": "array"})),
            )
        },
        "/api/v1/postal/export": {
            "get": _op(
                "The post office's list of one day (Vietnam time)",
                files,
                params=[
                    _query("date", {"type": "string", "format": "date"}, "YYYY-MM-DD"),
                    _query("format", {"enum": ["csv", "xlsx"]}),
                ],
            )
        },
        "/api/v1/postal/{id}": {
            "get": _op(
                "One registration with its history",
                _json({"allOf": [_ref("PostalRegistration"), _obj(history={"type": "array"})]}),
                params=[_ID],
            )
        },
        "/api/v1/postal/{id}/complete": {
            "post": _op(
                "The address of a telephone request (requested -> registered)",
                _ONE,
                params=[_ID],
                body=_obj(_ADDRESS_REQUIRED, **_ADDRESS),
            )
        },
        "/api/v1/postal/{id}/status": {
            "post": _op(
                "Hand to the post office, delivered, or cancelled",
                _ONE,
                params=[_ID],
                body=_obj(
                    ["state"], state={"enum": [s.value for s in MOVES]}, note=_text(500, lines=True)
                ),
            )
        },
    }
