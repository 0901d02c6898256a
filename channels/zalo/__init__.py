"""Zalo Official Account: signed webhooks in (``zalo_routes``, journaled, parsed later by
``parse_zalo``), customer-service replies out (``ZaloSender``), tokens renewed on their own
(``ZaloTokens``). ``[channels.zalo]`` settings: ``ZaloSettings.from_table``.

    settings.py    ZaloSettings                    signature.py  X-ZEvent-Signature, freshness
    events.py      parse_zalo, zalo_event_id       routes.py     POST /webhooks/zalo
    tokens.py      access/refresh token files      sender.py     OA message API v3
"""

from channels.outbound import window_closed_message, window_open
from channels.zalo.events import parse_zalo, zalo_event_id
from channels.zalo.routes import zalo_routes
from channels.zalo.sender import ZaloSender
from channels.zalo.settings import ZaloSettings
from channels.zalo.signature import check_zalo, zalo_mac
from channels.zalo.tokens import ZaloTokens

__all__ = [
    "ZaloSender",
    "ZaloSettings",
    "ZaloTokens",
    "check_zalo",
    "parse_zalo",
    "window_closed_message",
    "window_open",
    "zalo_event_id",
    "zalo_mac",
    "zalo_routes",
]
