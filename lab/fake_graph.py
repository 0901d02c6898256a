"""A fake Graph API (Messenger Send API) and a webhook signer.

    POST /{version}/me/messages?access_token=<page token>
         JSON {"recipient", "messaging_type", "message"} or multipart with ``filedata``:
         -> 200 {"recipient_id": ..., "message_id": "m_fake_N"}
         -> 400 {"error": {"code": 190, "type": "OAuthException", ...}} for a wrong token

Besides the shared hooks (``lab.fake_platform``: ``/_requests``, ``/_reset``,
``/_set_response`` with a ``path`` such as ``/v23.0/me/messages``), ``POST /_set_response``
knows the named kinds ``{"kind": "rate_limited"}`` (400, code 613, once),
``{"kind": "outside_window"}`` (400, code 10 / subcode 2018278, once) and
``{"kind": "server_error"}`` (500 once).

``sign_facebook`` and ``facebook_event`` build a webhook delivery as Meta's servers would.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lab.fake_platform import Canned, Recorder, run_main

NAMED: dict[str, tuple[int, dict[str, Any]]] = {
    "rate_limited": (400, {"message": "(#613) Calls to this api have exceeded the rate limit.",
                           "type": "OAuthException", "code": 613}),
    "outside_window": (400, {"message": "(#10) This message is sent outside of allowed window.",
                             "type": "OAuthException", "code": 10, "error_subcode": 2018278}),
    "server_error": (500, {"message": "An unexpected error has occurred.", "code": 2,
                           "is_transient": True}),
}  # fmt: skip


def sign_facebook(body: bytes, app_secret: str) -> dict[str, str]:
    """The headers Meta sends with ``body`` (written apart from the adapter's check)."""
    digest = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


def facebook_event(
    psid: str,
    *,
    text: str = "Xin chào",
    mid: str | None = None,
    page_id: str = "page-1022",
    timestamp_ms: int | None = None,
    postback: dict[str, str] | None = None,
    extra: list[dict[str, Any]] | None = None,
) -> bytes:
    """A delivery shaped like Meta's: one message (or postback) event, plus ``extra`` events."""
    ts = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
    event: dict[str, Any] = {"sender": {"id": psid}, "recipient": {"id": page_id}, "timestamp": ts}
    if postback is not None:
        event["postback"] = postback
    else:
        event["message"] = {"mid": mid or f"m_{ts}_{psid}", "text": text}
    entry = {"id": page_id, "time": ts, "messaging": [event, *(extra or [])]}
    return json.dumps({"object": "page", "entry": [entry]}, ensure_ascii=False).encode()


@dataclass
class FakeGraph:
    page_token: str = "page-token-0"
    recorder: Recorder = field(default_factory=Recorder)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/{version}/me/messages", self._messages, methods=["POST"]),
                *self.recorder.control_routes(self._kind),
            ]
        )

    def _kind(self, spec: dict[str, Any]) -> bool:
        named = NAMED.get(str(spec.get("kind")))
        if named is None:
            return False
        path = str(spec.get("path", "*"))
        self.recorder.push(path, Canned(named[0], {"error": named[1]}, {}, 1))
        return True

    async def _messages(self, request: Request) -> Response:
        entry = await self.recorder.record(request)
        canned = self.recorder.next_canned(request.url.path) or self.recorder.next_canned("*")
        if canned is not None:
            return canned
        if request.query_params.get("access_token") != self.page_token:
            error = {"message": "Invalid OAuth access token - Cannot parse access token",
                     "type": "OAuthException", "code": 190}  # fmt: skip
            return JSONResponse({"error": error}, 400)
        if "json" in entry:
            recipient = (entry["json"] or {}).get("recipient", {})
        else:
            recipient = json.loads(entry.get("form", {}).get("recipient", "{}"))
        mid = f"m_fake_{next(self._ids)}"
        return JSONResponse({"recipient_id": recipient.get("id"), "message_id": mid})


def _args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--page-token", default="page-token-0")


def _make(args: argparse.Namespace) -> Starlette:
    return FakeGraph(args.page_token).app()


if __name__ == "__main__":
    run_main("A fake Graph API (Messenger Send API) on loopback", _make, _args)
