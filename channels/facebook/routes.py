"""``GET|POST /webhooks/facebook``: Meta's subscription check, then signed deliveries.

    GET  hub.mode=subscribe, our verify token    200 text/plain: hub.challenge
    GET  anything else                           403
    POST body over max_body_bytes                413 (not read past the limit)
    POST wrong or missing X-Hub-Signature-256    401, nothing stored
    POST not a JSON object                       400
    POST a delivery                              each citizen event journaled under its mid
                                                 (``split_facebook``), then 200; echoes,
                                                 receipts and other objects skipped; an event
                                                 already journaled is a no-op
    POST journal failed or stuck                 503: Meta retries the whole delivery

The app secret and verify token are read once, when the routes are made; they and the bodies
are never logged.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from channels.facebook.events import split_facebook
from channels.facebook.settings import FacebookSettings
from channels.facebook.signature import challenge_answer, signature_ok
from channels.webhooks import answer, keep_events, load_json, read_body, read_secret
from conversations.model import EventJournal
from tickets.model import Channel

log = logging.getLogger(__name__)

PATH = "/webhooks/facebook"


def facebook_routes(cfg: FacebookSettings, journal: EventJournal) -> list[Route]:
    app_secret = read_secret(cfg.app_secret_file)
    verify_token = read_secret(cfg.verify_token_file)

    async def facebook_webhook(request: Request) -> Response:
        if request.method != "POST":
            challenge = challenge_answer(request.query_params, verify_token)
            if challenge is None:
                log.warning("facebook subscription check refused from %s", _client(request))
                return answer(403, "verification failed")
            log.info("facebook: subscription check answered")
            return PlainTextResponse(challenge)
        body = await read_body(request, cfg.max_body_bytes)
        if body is None:
            return answer(413, f"body larger than {cfg.max_body_bytes} bytes")
        if not signature_ok(request.headers.get("x-hub-signature-256"), body, app_secret):
            log.warning("facebook webhook refused from %s: bad signature", _client(request))
            return answer(401, "invalid signature")
        doc = load_json(body)
        if not isinstance(doc, dict):
            return answer(400, "the body must be a JSON object")
        events, skipped = split_facebook(doc)
        if skipped:
            log.debug("facebook: %d receipt/echo/other event(s) skipped", skipped)
        return await keep_events(
            journal, Channel.FACEBOOK, [(e.external_id, e.payload()) for e in events]
        )

    return [Route(PATH, facebook_webhook, methods=["GET", "POST"])]


def _client(request: Request) -> str:
    return request.client.host if request.client else "-"
