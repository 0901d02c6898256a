"""A fake Zalo: the OA API and OAuth endpoints the engine calls, and a webhook signer.

    POST /v3.0/oa/message/cs        needs header access_token = the current token; answers
                                    {"error": 0, "data": {"message_id": "fz-N", "user_id"}}
                                    or, for a wrong/expired token, HTTP 200 {"error": -216}
    POST /v2.0/oa/upload/image      multipart "file" (same token check) -> attachment_id
    POST /v4/oa/access_token        form refresh_token/app_id/grant_type=refresh_token and
                                    header secret_key = the app secret: a new pair, the old
                                    refresh token spent; else {"error": -14014, ...}

Besides the shared hooks (``lab.fake_platform``), ``POST /_set_response`` knows
``{"kind": "expired_token"}`` (the current access token stops working, as after 25 h) and
``{"kind": "out_of_window", "user_id": "..."}`` (sends to that user answer -230), and
``GET /_tokens`` shows the current pair (tests compare it with the token files).

``sign_zalo`` / ``zalo_event`` build a webhook request as Zalo's servers would (used by the
tests and ``tongdai bench webhooks``).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lab.fake_platform import Recorder, run_main

INVALID_TOKEN = {"error": -216, "message": "Access token is invalid"}


def sign_zalo(body: bytes, app_id: str, timestamp: str, oa_secret_key: str) -> dict[str, str]:
    """The headers Zalo sends with ``body``: ``X-ZEvent-Signature: mac=sha256(app_id + body +
    timestamp + OA secret key)`` (written apart from ``channels.zalo.signature``, so each
    checks the other)."""
    mac = hashlib.sha256(app_id.encode() + body + timestamp.encode() + oa_secret_key.encode())
    return {"X-ZEvent-Signature": f"mac={mac.hexdigest()}", "Content-Type": "application/json"}


def zalo_event(
    app_id: str,
    user_id: str,
    *,
    event: str = "user_send_text",
    text: str = "Xin chào",
    msg_id: str | None = None,
    oa_id: str = "oa-1022",
    timestamp_ms: int | None = None,
    attachments: list[dict[str, Any]] | None = None,
) -> bytes:
    """A webhook body shaped like Zalo's (``timestamp`` a string of milliseconds)."""
    ts = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    doc: dict[str, Any] = {"app_id": app_id, "event_name": event, "timestamp": ts}
    if event in ("follow", "unfollow"):
        doc.update(oa_id=oa_id, follower={"id": user_id}, user_id_by_app=f"app-{user_id}")
    else:
        message: dict[str, Any] = {"msg_id": msg_id or f"msg-{ts}-{user_id}", "text": text}
        if attachments:
            message["attachments"] = attachments
        doc.update(sender={"id": user_id}, recipient={"id": oa_id}, message=message)
    return json.dumps(doc, ensure_ascii=False).encode()


def signed_zalo_request(body: bytes, app_id: str, oa_secret_key: str) -> dict[str, str]:
    """Headers for ``body`` (a ``zalo_event``), reading its timestamp back."""
    return sign_zalo(body, app_id, str(json.loads(body)["timestamp"]), oa_secret_key)


@dataclass
class FakeZalo:
    app_id: str = "app-1022"
    app_secret: str = "fake-app-secret"
    access_token: str = "at-0"
    refresh_token: str = "rt-0"
    expires_in: int = 90_000
    recorder: Recorder = field(default_factory=Recorder)
    out_of_window: set[str] = field(default_factory=set)
    refreshes: int = 0
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v3.0/oa/message/cs", self._message, methods=["POST"]),
                Route("/v2.0/oa/upload/image", self._upload, methods=["POST"]),
                Route("/v4/oa/access_token", self._refresh, methods=["POST"]),
                Route("/_tokens", self._tokens, methods=["GET"]),
                *self.recorder.control_routes(self._kind),
            ]
        )

    def _kind(self, spec: dict[str, Any]) -> bool:
        if spec.get("kind") == "expired_token":
            self.access_token = f"expired-{self.access_token}"  # nobody holds this one
            return True
        if spec.get("kind") == "out_of_window":
            self.out_of_window.add(str(spec.get("user_id")))
            return True
        return False

    async def _message(self, request: Request) -> Response:
        entry = await self.recorder.record(request)
        canned = self.recorder.next_canned(request.url.path)
        if canned is not None:
            return canned
        if request.headers.get("access_token") != self.access_token:
            return JSONResponse(INVALID_TOKEN)
        body = entry.get("json") or {}
        user = str(body.get("recipient", {}).get("user_id", ""))
        if user in self.out_of_window:
            msg = "User has not interacted with the OA in the past 7 days"
            return JSONResponse({"error": -230, "message": msg})
        data = {"message_id": f"fz-{next(self._ids)}", "user_id": user}
        return JSONResponse({"error": 0, "message": "Success", "data": data})

    async def _upload(self, request: Request) -> Response:
        entry = await self.recorder.record(request)
        canned = self.recorder.next_canned(request.url.path)
        if canned is not None:
            return canned
        if request.headers.get("access_token") != self.access_token:
            return JSONResponse(INVALID_TOKEN)
        if "file" not in entry.get("form", {}):
            return JSONResponse({"error": -201, "message": "file is missing"})
        data = {"attachment_id": f"att-{next(self._ids)}"}
        return JSONResponse({"error": 0, "message": "Success", "data": data})

    async def _refresh(self, request: Request) -> Response:
        entry = await self.recorder.record(request)
        canned = self.recorder.next_canned(request.url.path)
        if canned is not None:
            return canned
        form = entry.get("form", {})
        ok = (
            request.headers.get("secret_key") == self.app_secret
            and form.get("app_id") == self.app_id
            and form.get("grant_type") == "refresh_token"
            and form.get("refresh_token") == self.refresh_token
        )
        if not ok:
            return JSONResponse(
                {"error": -14014, "error_name": "Invalid refresh token",
                 "error_description": "Invalid refresh token"}
            )  # fmt: skip
        self.refreshes += 1
        self.access_token = f"at-{self.refreshes}"
        self.refresh_token = f"rt-{self.refreshes}"
        return JSONResponse(
            {"access_token": self.access_token, "refresh_token": self.refresh_token,
             "expires_in": str(self.expires_in)}
        )  # fmt: skip

    async def _tokens(self, request: Request) -> Response:
        pair = {"access_token": self.access_token, "refresh_token": self.refresh_token}
        return JSONResponse(pair)


def _args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--app-id", default="app-1022")
    parser.add_argument("--app-secret", default="fake-app-secret")
    parser.add_argument("--access-token", default="at-0")
    parser.add_argument("--refresh-token", default="rt-0")


def _make(args: argparse.Namespace) -> Starlette:
    fake = FakeZalo(args.app_id, args.app_secret, args.access_token, args.refresh_token)
    return fake.app()


if __name__ == "__main__":
    run_main("A fake Zalo OA API on loopback", _make, _args)
