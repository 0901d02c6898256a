"""What the fake platform servers (``lab.fake_zalo``, ``lab.fake_graph``) share.

Control hooks, the same on both (in the style of wazo's fake servers):

    GET  /_requests        every request received so far, oldest first: method, path, query,
                           headers (lower-case names), and the body as JSON, form fields or
                           multipart (file parts as {"filename", "content_type", "size"})
    POST /_reset           forget the requests and any canned answers
    POST /_set_response    the next answer(s) for a path, instead of the normal one:
        {"path": "/v3.0/oa/message/cs", "status": 429, "json": {...},
         "headers": {"Retry-After": "3"}, "times": 1}
      each fake adds its own named kinds (``{"kind": "expired_token"}`` ...)

``serving(app)`` runs an app on a free loopback port inside the current event loop and yields
its base URL; ``run_main`` runs one as a process (``python -m lab.fake_zalo --port 0``), which
prints ``listening on http://127.0.0.1:PORT`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import sys
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class Canned:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1


class Recorder:
    """The requests a fake received and the answers it was told to give next."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.canned: dict[str, deque[Canned]] = {}

    async def record(self, request: Request) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "method": request.method,
            "path": request.url.path,
            "query": dict(request.query_params),
            "headers": {k.lower(): v for k, v in request.headers.items()},
        }
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            fields: dict[str, Any] = {}
            async with request.form() as form:  # closes the uploaded files' temp files
                for key, value in form.multi_items():
                    if isinstance(value, UploadFile):
                        data = await value.read()
                        fields[key] = {
                            "filename": value.filename,
                            "content_type": value.content_type,
                            "size": len(data),
                        }
                    else:
                        fields[key] = value
            entry["form"] = fields
        else:
            raw = await request.body()
            try:
                entry["json"] = json.loads(raw) if raw else None
            except ValueError:
                entry["body"] = raw.decode("utf-8", "replace")
        self.requests.append(entry)
        return entry

    def push(self, path: str, canned: Canned) -> None:
        self.canned.setdefault(path, deque()).append(canned)

    def next_canned(self, path: str) -> Response | None:
        queue = self.canned.get(path)
        if not queue:
            return None
        canned = queue[0]
        canned.times -= 1
        if canned.times <= 0:
            queue.popleft()
        return JSONResponse(canned.body, canned.status, headers=canned.headers)

    def control_routes(self, kinds: Callable[[dict[str, Any]], bool] | None = None) -> list[Route]:
        """The ``/_requests``, ``/_reset`` and ``/_set_response`` hooks; ``kinds`` handles a
        fake's own named kinds (returns True when it did)."""

        async def requests(request: Request) -> Response:
            return JSONResponse(self.requests)

        async def reset(request: Request) -> Response:
            self.requests.clear()
            self.canned.clear()
            return JSONResponse({"ok": True})

        async def set_response(request: Request) -> Response:
            spec = await request.json()
            if not isinstance(spec, dict):
                return JSONResponse({"error": "a JSON object"}, 400)
            if kinds is not None and kinds(spec):
                return JSONResponse({"ok": True})
            if "path" not in spec or "status" not in spec:
                return JSONResponse({"error": "path and status, or a known kind"}, 400)
            canned = Canned(
                int(spec["status"]),
                spec.get("json", {}),
                dict(spec.get("headers", {})),
                int(spec.get("times", 1)),
            )
            self.push(str(spec["path"]), canned)
            return JSONResponse({"ok": True})

        return [
            Route("/_requests", requests, methods=["GET"]),
            Route("/_reset", reset, methods=["POST"]),
            Route("/_set_response", set_response, methods=["POST"]),
        ]


class _QuietServer(uvicorn.Server):
    """uvicorn without signal handlers (the test or the process owns them) that says when it
    listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.ready.set()


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def _server(app: Any) -> _QuietServer:
    config = uvicorn.Config(
        app, lifespan="off", ws="none", access_log=False, log_level="warning", proxy_headers=False
    )
    return _QuietServer(config)


@contextlib.asynccontextmanager
async def serving(
    app: Any, host: str = "127.0.0.1", start_timeout: float = 5.0
) -> AsyncIterator[str]:
    """Run ``app`` on a free port of ``host`` while the block runs; yields its base URL."""
    sock = _bind(host, 0)
    port = sock.getsockname()[1]
    server = _server(app)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(server.serve(sockets=[sock]))
        try:
            async with asyncio.timeout(start_timeout):
                await server.ready.wait()
            yield f"http://{host}:{port}"
        finally:
            server.should_exit = True
    sock.close()


def run_main(
    description: str,
    make_app: Callable[[argparse.Namespace], Any],
    add_args: Callable[[argparse.ArgumentParser], None],
) -> None:
    """A fake as a process: ``--host``, ``--port`` (0: a free one) plus the fake's own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    add_args(parser)
    args = parser.parse_args()
    app = make_app(args)
    sock = _bind(args.host, args.port)
    server = _server(app)

    async def main() -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(server.serve(sockets=[sock]))
            await server.ready.wait()
            print(f"listening on http://{args.host}:{sock.getsockname()[1]}", flush=True)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
