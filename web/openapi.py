"""The OpenAPI 3.1 document of ``/api/v1``, written by hand next to ``web.api.routes``.

A unit test checks that every route of ``web.api.routes()`` is documented here with the same
methods (and nothing more), and schemathesis fuzzes the API from this document.
"""

from __future__ import annotations

from typing import Any

from accounts.model import MIN_PASSWORD, Role
from acd.agent import AgentState
from dossiers.procedures import OnlineLevel
from tickets.model import Outcome, Status
from web.control import PAUSE_REASONS
from web.ticket_actions import ACTIONS, CATEGORIES, COMPLAINT_TYPES

S = dict[str, Any]


def _ref(name: str) -> S:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(kind: str, **extra: Any) -> S:
    return {"type": [kind, "null"], **extra}


def _obj(required: list[str] | None = None, **props: S) -> S:
    schema: S = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    return schema


STR, INT, NUM, BOOL = (
    {"type": "string"},
    {"type": "integer"},
    {"type": "number"},
    {"type": "boolean"},
)
N_STR, N_NUM = _nullable("string"), _nullable("number")

SCHEMAS: S = {
    "AuditEntry": _obj(
        ["id", "at", "actor", "action"],
        id=INT,
        at=STR,
        actor=STR,
        role=STR,
        action={"enum": ["view_ticket", "play_recording", "set_confidential"]},
        ticket=N_STR,
        detail=N_STR,
    ),
    "KbEntry": _obj(
        ["id", "question", "answer"],
        id=INT,
        question=STR,
        answer=STR,
        category=N_STR,
        procedure=N_STR,
        ticket=N_STR,
        updated_by=STR,
        updated_at=STR,
        score=NUM,
    ),
    "Error": _obj(
        ["error"],
        error=_obj(["id", "message", "details"], id=STR, message=STR, details={"type": "object"}),
    ),
    "Me": _obj(
        ["name", "role"],
        name=STR,
        role={"enum": [r.value for r in Role]},
        role_label=STR,
        agent_id=N_STR,
        agency_id=N_STR,
        phone=N_STR,
        permissions={"type": "array", "items": STR},
        csrf=N_STR,
    ),
    "Queue": _obj(
        ["name", "waiting"],
        name=STR,
        category=STR,
        waiting=INT,
        oldest_at=N_NUM,
        callbacks_waiting=INT,
        agents_serving=INT,
        wrapup_s=NUM,
    ),
    "Agent": _obj(
        ["id", "state"],
        id=STR,
        name=STR,
        state={"enum": [s.value for s in AgentState]},
        since=NUM,
        pause_reason=N_STR,
        pending_pause=N_STR,
        calls_today=INT,
        endpoint=STR,
        queues={"type": "array", "items": STR},
        call_id=N_STR,
        caller=N_STR,
        queue=N_STR,
        ticket=N_STR,
    ),
    "Call": _obj(
        ["id", "queue", "state"],
        id=STR,
        queue=STR,
        state=STR,
        caller=N_STR,
        ticket=N_STR,
        agent=N_STR,
        entered_at=NUM,
        connected_at=N_NUM,
        position=_nullable("integer"),
        callback=BOOL,
    ),
    "TicketSummary": _obj(
        ["code", "status"],
        code=STR,
        started_at=STR,
        channel=STR,
        caller=N_STR,
        category=N_STR,
        queue=N_STR,
        agent=N_STR,
        outcome=N_STR,
        status=STR,
        due_at=N_STR,
        overdue=BOOL,
        has_recording=BOOL,
    ),
    "Ticket": _obj(
        ["code", "status", "ivr_path", "history"],
        code=STR,
        channel=STR,
        caller=N_STR,
        started_at=STR,
        queued_at=N_STR,
        answered_at=N_STR,
        ended_at=N_STR,
        category=N_STR,
        queue=N_STR,
        agent=N_STR,
        outcome=N_STR,
        dossier_code=N_STR,
        notes=N_STR,
        status={"enum": [s.value for s in Status]},
        due_at=N_STR,
        resolved_at=N_STR,
        satisfaction=_nullable("integer"),
        recording_url=N_STR,
        ivr_path={"type": "array", "items": {"type": "object"}},
        history={"type": "array", "items": {"type": "object"}},
    ),
    "Dossier": _obj(
        ["code", "status"],
        code=STR,
        procedure=STR,
        agency=STR,
        status=STR,
        received_date=STR,
        due_date=N_STR,
    ),
    "Procedure": _obj(
        ["code", "name", "agency", "documents", "time_limit_days", "fee_vnd", "online_level"],
        code=STR,
        name=STR,
        agency=STR,
        documents={"type": "array", "items": STR},
        time_limit_days=INT,
        fee_vnd=INT,
        online_level={"enum": [lv.value for lv in OnlineLevel]},
    ),
    "UserAccount": _obj(
        ["name", "role", "disabled"],
        name=STR,
        display_name=N_STR,
        role={"enum": [r.value for r in Role]},
        agent_id=N_STR,
        phone=N_STR,
        agency_id=N_STR,
        disabled=BOOL,
        has_password=BOOL,
        created_at=STR,
    ),
    "Forward": _obj(
        ["id", "ticket", "agency", "state", "due_at"],
        id=INT,
        ticket=STR,
        agency=STR,
        agency_name=STR,
        state={"enum": ["forwarded", "extended", "answered", "sent_back"]},
        flag=_nullable("string"),
        forwarded_at=STR,
        forwarded_by=STR,
        due_at=STR,
        note=N_STR,
        extension_reason=N_STR,
        answer=N_STR,
        answer_public=BOOL,
        late={"type": ["boolean", "null"]},
        notify={"enum": ["pending", "sent", "failed"]},
        reply_via=N_STR,
    ),
    "Announcement": _nullable(
        "object",
        properties={
            "id": INT,
            "text": STR,
            "active_from": STR,
            "active_until": N_STR,
            "created_by": STR,
        },
    ),
}


def _json(schema: S, description: str = "OK") -> S:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERR = _json(_ref("Error"), "Error")
_ERRORS = {str(code): _ERR for code in (400, 401, 403, 404, 409, 413, 422, 503)}


def _op(
    summary: str,
    ok: S,
    *,
    params: list[S] | None = None,
    body: S | None = None,
    code: str | None = None,
) -> S:
    code = code or ("202" if summary.startswith("Ask") else "200")
    op: S = {"summary": summary, "responses": {code: ok, **_ERRORS}}
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    return op


def _path_param(name: str, pattern: str, example: str) -> S:
    schema: S = {"type": "string", "pattern": pattern, "examples": [example]}
    return {"name": name, "in": "path", "required": True, "schema": schema, "example": example}


#: text without control characters (a line; ``_LINES`` also allows tab and newlines)
_LINE = "^[^\\u0000-\\u001f\\u007f]*$"
_LINES = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$"


def _text(max_len: int, *, lines: bool = False, min_len: int = 0) -> S:
    schema: S = {"type": "string", "maxLength": max_len, "pattern": _LINES if lines else _LINE}
    if min_len:
        schema["minLength"] = min_len
    return schema


def _query(name: str, schema: S, description: str = "") -> S:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


_USER = _path_param("name", "^[a-z0-9][a-z0-9_.-]{1,63}$", "giamsat")
_PASSWORD = {"type": "string", "minLength": MIN_PASSWORD, "maxLength": 200}
_AGENT = _path_param("agent_id", "^[A-Za-z0-9_.-]{1,64}$", "agent101")
_CODE = _path_param("code", "^1022-[0-9]{8}-[0-9]{6,8}$", "1022-20260101-000001")
_TICKET_QUERY = [
    _query("since", STR, "YYYY-MM-DD (Vietnam day) or ISO date-time with offset"),
    _query("until", STR, "YYYY-MM-DD (inclusive day) or ISO date-time with offset (exclusive)"),
    _query("category", {"enum": list(CATEGORIES)}),
    _query("outcome", {"enum": [o.value for o in Outcome]}),
    _query("status", {"enum": [s.value for s in Status]}),
    _query("caller", _text(40), "the number, or its last digits"),
    _query("agent", _text(64)),
    _query("queue", _text(64)),
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
    _query("offset", {"type": "integer", "minimum": 0}),
]


def _list(key: str, item: str, **extra: S) -> S:
    return _obj([key], **{key: {"type": "array", "items": _ref(item)}}, **extra)


_FORWARD_ID = _path_param("id", "^[0-9]{1,12}$", "1")
_FORWARDS = _json(_list("forwards", "Forward"))


def _back_office() -> S:
    """``web.back_office``: forwarding (the centre) and the agency desk (role agency)."""
    reason = _obj(["reason"], reason=_text(1000, lines=True, min_len=1))
    return {
        "/api/v1/agencies": {
            "get": _op("The agencies file", _json(_obj(["agencies"], agencies={"type": "array"})))
        },
        "/api/v1/forwards": {
            "get": _op(
                "Forwards to agencies, soonest due first (overdue and nearly due counted)",
                _json(_list("forwards", "Forward", overdue=INT, nearly_due=INT)),
                params=[
                    _query("agency", {"type": "string", "pattern": "^[a-z0-9_]{2,32}$"}),
                    _query("state", {"enum": ["forwarded", "extended", "answered", "sent_back"]}),
                    _query("flag", {"enum": ["overdue", "nearly_due"]}),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                ],
            )
        },
        "/api/v1/forwards/callbacks": {
            "get": _op("Agencies' answers to give back to callers by telephone", _FORWARDS)
        },
        "/api/v1/forwards/{id}/callback-done": {
            "post": _op("The caller was called back", _json(_ref("Forward")), params=[_FORWARD_ID])
        },
        "/api/v1/tickets/{code}/forwards": {
            "get": _op("A ticket's forwards", _FORWARDS, params=[_CODE])
        },
        "/api/v1/tickets/{code}/forward": {
            "post": _op(
                "Forward a ticket to an agency (due date in working days; the agency is mailed)",
                _json(_ref("Forward"), "Created"),
                code="201",
                params=[_CODE],
                body=_obj(["agency"], agency=_text(32, min_len=1), note=_text(4000, lines=True)),
            )
        },
        "/api/v1/tickets/{code}/answer-back": {
            "post": _op(
                "Give the agency's answer back on the ticket's channel and resolve the ticket",
                _json(_ref("Forward")),
                params=[_CODE],
                body=_obj(None, text=_text(8000, lines=True)),
            )
        },
        "/api/v1/agency/forwards": {
            "get": _op(
                "The agency account's own forwards",
                _json(_list("forwards", "Forward", agency=N_STR)),
                params=[
                    _query("state", {"enum": ["forwarded", "extended", "answered", "sent_back"]})
                ],
            )
        },
        "/api/v1/agency/tickets/{code}": {
            "get": _op(
                "A ticket forwarded to the account's agency (no caller data)",
                _json(
                    _obj(
                        ["ticket", "forwards"],
                        ticket={"type": "object"},
                        forwards={"type": "array"},
                    )
                ),
                params=[_CODE],
            )
        },
        "/api/v1/agency/forwards/{id}/answer": {
            "post": _op(
                "Answer (public: shown on the public look-up once resolved)",
                _json(_ref("Forward")),
                params=[_FORWARD_ID],
                body=_obj(["text"], text=_text(8000, lines=True, min_len=1), public=BOOL),
            )
        },
        "/api/v1/agency/forwards/{id}/extend": {
            "post": _op(
                "Ask for more time, once, with a reason",
                _json(_ref("Forward")),
                params=[_FORWARD_ID],
                body=reason,
            )
        },
        "/api/v1/agency/forwards/{id}/send-back": {
            "post": _op(
                "Send the ticket back to the centre, with a reason",
                _json(_ref("Forward")),
                params=[_FORWARD_ID],
                body=reason,
            )
        },
    }


def document() -> S:
    paths: S = {
        "/api/v1/me": {"get": _op("The caller's account and permissions", _json(_ref("Me")))},
        "/api/v1/queues": {
            "get": _op(
                "Queues now and today's figures",
                _json(_list("queues", "Queue", at=NUM, available=BOOL, today={"type": "object"})),
            )
        },
        "/api/v1/calls": {"get": _op("Calls in progress", _json(_list("calls", "Call", at=NUM)))},
        "/api/v1/agents": {"get": _op("Agents now", _json(_list("agents", "Agent", at=NUM)))},
        "/api/v1/agents/{agent_id}": {
            "get": _op("One agent", _json(_ref("Agent")), params=[_AGENT])
        },
        "/api/v1/agents/{agent_id}/state": {
            "post": _op(
                "Log an agent in or out, pause or unpause",
                _json(_ref("Agent")),
                params=[_AGENT],
                body=_obj(
                    ["op"],
                    op={"enum": ["login", "logout", "pause", "unpause"]},
                    reason={"enum": list(PAUSE_REASONS)},
                    hand_to={"type": "string", "maxLength": 64},
                ),
            )
        },
        "/api/v1/agents/{agent_id}/spy": {
            "post": _op(
                "Ask to listen to, whisper into or barge into the agent's call",
                _json({"type": "object"}, "Accepted: your phone rings"),
                params=[_AGENT],
                body=_obj(["mode"], mode={"enum": ["listen", "whisper", "barge"]}),
            )
        },
        "/api/v1/agents/{agent_id}/call": {
            "post": _op(
                "Ask to call a citizen back (the agent's phone rings first)",
                _json({"type": "object"}, "Accepted: the agent's phone rings"),
                params=[_AGENT],
                body=_obj(
                    None,
                    number={"type": "string", "pattern": r"^\+?[0-9]{3,15}$"},
                    ticket=_text(32),
                ),
            )
        },
        "/api/v1/tickets": {
            "get": _op(
                "Search tickets (open overdue complaints first)",
                _json(_list("tickets", "TicketSummary", total=INT)),
                params=_TICKET_QUERY,
            )
        },
        "/api/v1/tickets/{code}": {
            "get": _op(
                "One ticket with its IVR path and history", _json(_ref("Ticket")), params=[_CODE]
            ),
            "patch": _op(
                "Classify, note, resolve, escalate, assign or move a ticket",
                _json(_ref("Ticket")),
                params=[_CODE],
                body=_obj(
                    None,
                    action={"enum": list(ACTIONS)},
                    notes=_text(4000, lines=True),
                    category={"enum": list(CATEGORIES)},
                    status={"enum": [s.value for s in Status]},
                    note=_text(500, lines=True),
                    agent=_text(64),
                    complaint_type={"enum": list(COMPLAINT_TYPES)},
                ),
            ),
        },
        "/api/v1/callbacks": {
            "get": _op(
                "Abandoned calls and messages to call back",
                _json(_list("tickets", "TicketSummary")),
                params=[_query("limit", {"type": "integer", "minimum": 1, "maximum": 500})],
            )
        },
        "/api/v1/dossiers/{code}": {
            "get": _op(
                "A dossier by its code",
                _json(_ref("Dossier")),
                params=[_path_param("code", "^[0-9]{4,16}$", "12345678")],
            )
        },
        "/api/v1/console": {
            "get": _op(
                "The logged-in agent and its current call (ticket, dossier, earlier tickets)",
                _json(
                    _obj(
                        ["me", "call"],
                        at=NUM,
                        me={"type": ["object", "null"]},
                        call={"type": ["object", "null"]},
                    )
                ),
            )
        },
        "/api/v1/announcement": {
            "get": _op(
                "The active announcement",
                _json(_obj(["announcement"], announcement=_ref("Announcement"))),
            ),
            "put": _op(
                "Set the announcement played before the menu",
                _json(_obj(["announcement"], announcement=_ref("Announcement"))),
                body=_obj(["text"], text=_text(500, min_len=1), until=_text(40)),
            ),
            "delete": _op("Clear the announcement", _json(_obj(["cleared"], cleared=INT))),
        },
        "/api/v1/users": {
            "get": _op("Accounts (administrators)", _json(_list("users", "UserAccount"))),
            "post": _op(
                "Create an account (administrators)",
                _json(_ref("UserAccount"), "Created"),
                code="201",
                body=_obj(
                    ["name", "role", "password"],
                    name={"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{1,63}$"},
                    display_name=_text(120),
                    role={"enum": [r.value for r in Role]},
                    password=_PASSWORD,
                    agent_id={"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
                    phone={"type": "string", "pattern": "^PJSIP/[A-Za-z0-9_.-]{1,60}$"},
                    agency_id={"type": "string", "pattern": "^[a-z0-9][a-z0-9_]{1,31}$"},
                ),
            ),
        },
        "/api/v1/users/{name}": {
            "get": _op("One account (administrators)", _json(_ref("UserAccount")), params=[_USER]),
            "patch": _op(
                "Change an account's role, disable or enable it, or its name, agent, phone",
                _json(_ref("UserAccount")),
                params=[_USER],
                body=_obj(
                    None,
                    role={"enum": [r.value for r in Role]},
                    disabled=BOOL,
                    display_name=_nullable("string", maxLength=120, pattern=_LINE),
                    agent_id=_nullable("string", pattern="^[A-Za-z0-9_.-]{1,64}$"),
                    phone=_nullable("string", pattern="^PJSIP/[A-Za-z0-9_.-]{1,60}$"),
                    agency_id=_nullable("string", pattern="^[a-z0-9][a-z0-9_]{1,31}$"),
                ),
            ),
        },
        "/api/v1/users/{name}/password": {
            "put": _op(
                "Reset an account's password (its sessions end)",
                _json(_obj(["name"], name=STR, password_set=BOOL, sessions_ended=INT)),
                params=[_USER],
                body=_obj(["password"], password=_PASSWORD),
            )
        },
        "/api/v1/kb": {
            "get": _op(
                "Search the knowledge base (diacritics, case and word order ignored)",
                _json(
                    _obj(
                        ["query", "entries"],
                        query=STR,
                        entries={"type": "array", "items": _ref("KbEntry")},
                    )
                ),
                params=[
                    _query("q", _text(300), "words to find, e.g. thu tuc cap lai can cuoc"),
                    _query("loose", {"enum": ["0", "1"]}, "1: most of the words suffice"),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 50}),
                ],
            ),
            "post": _op(
                "Publish a public answer (supervisors); a ticket's entry is replaced",
                _json(_ref("KbEntry"), "Created"),
                code="201",
                body=_obj(
                    ["question", "answer"],
                    question=_text(2000, min_len=1, lines=True),
                    answer=_text(20000, min_len=1, lines=True),
                    category={"enum": list(CATEGORIES)},
                    procedure=_text(200),
                    ticket={"type": "string", "pattern": "^1022-[0-9]{8}-[0-9]{6,}$"},
                ),
            ),
        },
        "/api/v1/procedures": {
            "get": _op(
                "Search the procedure catalogue by code or words (diacritics ignored)",
                _json(
                    _obj(
                        ["query", "procedures"],
                        query=STR,
                        procedures={"type": "array", "items": _ref("Procedure")},
                    )
                ),
                params=[
                    _query("q", _text(300), "a code (1.001612) or words, e.g. dang ky khai sinh"),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
                ],
            )
        },
        "/api/v1/procedures/{code}": {
            "get": _op(
                "A procedure by its national code",
                _json(_ref("Procedure")),
                params=[_path_param("code", "^[0-9][.][0-9]{6}$", "1.001612")],
            )
        },
        "/api/v1/kb/{entry_id}": {
            "delete": _op(
                "Withdraw an entry (supervisors)",
                _json(_obj(["withdrawn"], withdrawn=INT)),
                params=[_path_param("entry_id", "^[0-9]{1,9}$", "1")],
            )
        },
        "/api/v1/audit": {
            "get": _op(
                "The audit log of views of personal data, newest first (administrators)",
                _json(_obj(["entries"], entries={"type": "array", "items": _ref("AuditEntry")})),
                params=[
                    _query("ticket", _text(32)),
                    _query("actor", _text(64)),
                    _query("since", _text(40), "YYYY-MM-DD or ISO date-time with offset"),
                    _query("until", _text(40)),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                ],
            )
        },
        "/api/v1/openapi.json": {"get": _op("This document", _json({"type": "object"}))},
        **_back_office(),
    }
    from web import openapi_postal  # it builds on this module's helpers

    paths.update(openapi_postal.paths())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tổng đài 1022 API",
            "version": "1",
            "description": "Calls, queues, agents, tickets and dossiers of the 1022 hotline. "
            "Authenticate with `Authorization: Bearer <token>` (`tongdai users token NAME`).",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": {**SCHEMAS, **openapi_postal.SCHEMAS},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
