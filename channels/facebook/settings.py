"""``[channels.facebook]``: the page's secrets (files, never the values) and the Graph API.

The app secret signs webhooks (``X-Hub-Signature-256``), the verify token answers Meta's
subscription check, the page access token sends replies. Every secret file must exist and
not be readable by every user.

    [channels.facebook]
    app_secret_file = "var/facebook/app_secret"
    verify_token_file = "var/facebook/verify_token"
    page_token_file = "var/facebook/page_token"
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from channels.webhooks import channel_fields, secret_field, url_field

#: Messenger's standard messaging window: a page may answer within 24 hours of the user's
#: last message (later only with message tags, which we do not use)
DEFAULT_REPLY_WINDOW_H = 24.0
DEFAULT_GRAPH_BASE = "https://graph.facebook.com"
DEFAULT_GRAPH_VERSION = "v23.0"


@dataclass(frozen=True)
class FacebookSettings:
    app_secret_file: str
    verify_token_file: str
    page_token_file: str
    graph_base: str = DEFAULT_GRAPH_BASE
    graph_version: str = DEFAULT_GRAPH_VERSION
    reply_window_h: float = DEFAULT_REPLY_WINDOW_H
    max_body_bytes: int = 1 << 20
    http_timeout_s: float = 10.0

    @classmethod
    def from_table(
        cls, file: str, table: object, name: str = "channels.facebook"
    ) -> FacebookSettings:
        """Settings from the ``[channels.facebook]`` table of ``file``; errors name the field."""
        f = channel_fields(file, name, table, (x.name for x in fields(cls)))
        version = f.text("graph_version", DEFAULT_GRAPH_VERSION)
        if not re.fullmatch(r"v\d{1,3}\.\d{1,3}", version):
            raise f.err("graph_version", 'must look like "v23.0"')
        return cls(
            app_secret_file=secret_field(f, "app_secret_file"),
            verify_token_file=secret_field(f, "verify_token_file"),
            page_token_file=secret_field(f, "page_token_file"),
            graph_base=url_field(f, "graph_base", DEFAULT_GRAPH_BASE),
            graph_version=version,
            reply_window_h=f.number("reply_window_h", DEFAULT_REPLY_WINDOW_H, 0, 8_760),
            max_body_bytes=f.whole("max_body_bytes", cls.max_body_bytes, 1024, 64 << 20),
            http_timeout_s=f.number("http_timeout_s", cls.http_timeout_s, 0.1, 300),
        )
