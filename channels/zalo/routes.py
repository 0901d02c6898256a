"""``POST /webhooks/zalo``: verify, journal, answer; the journal's processor parses later.

    body over max_body_bytes          413 (not read past the limit)
    no X-ZEvent-Signature             401, nothing stored
    not a JSON object                 400
    wrong app_id / signature / time   401, nothing stored (``channels.zalo.signature``)
    echo, receipt, unknown event      200, not stored (a logged skip for unknown names)
    a citizen event                   journaled under ``zalo_event_id``, then 200
                                      (already journaled: 200, a no-op)
    journal failed or stuck           503: Zalo retries

The OA secret key is read once, when the routes are made; neither it nor bodies are logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from channels.webhooks import answer, keep_events, load_json, read_body, read_secret
from channels.zalo.events import zalo_event_id
from channels.zalo.settings import ZaloSettings
from channels.zalo.signature import Refusal, check_zalo
from conversations.model import EventJournal
from tickets.model import Channel

log = logging.getLogger(__name__)

PATH = "/webhooks/zalo"


def zalo_routes(
    cfg: ZaloSettings, journal: EventJournal, *, clock: Callable[[], float] = time.time
) -> list[Route]:
    """The Zalo webhook route; ``clock`` gives seconds since the epoch (tests move it)."""
    secret = read_secret(cfg.oa_secret_key_file)

    async def zalo_webhook(request: Request) -> Response:
        body = await read_body(request, cfg.max_body_bytes)
        if body is None:
            return answer(413, f"body larger than {cfg.max_body_bytes} bytes")
        header = request.headers.get("x-zevent-signature")
        if not header:
            return _refused(request, Refusal.NO_SIGNATURE)
        doc = load_json(body)
        if not isinstance(doc, dict):
            return answer(400, "the body must be a JSON object")
        refusal = check_zalo(
            header,
            body,
            doc,
            app_id=cfg.app_id,
            oa_secret_key=secret,
            now_ms=int(clock() * 1000),
            window_s=cfg.replay_window_s,
        )
        if refusal is not None:
            return _refused(request, refusal)
        event_id = zalo_event_id(doc, body)
        if event_id is None:
            return answer(200, "ok (not kept)")
        return await keep_events(journal, Channel.ZALO, [(event_id, body)])

    return [Route(PATH, zalo_webhook, methods=["POST"])]


def _refused(request: Request, why: Refusal) -> Response:
    client = request.client.host if request.client else "-"
    log.warning("zalo webhook refused from %s: %s", client, why)
    return answer(401, "invalid signature")
