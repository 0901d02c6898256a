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

from channels.webhooks import Table

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
        t = Table(file, name, table, (f.name for f in fields(cls)))
        version = t.text("graph_version", DEFAULT_GRAPH_VERSION)
        if not re.fullmatch(r"v\d{1,3}\.\d{1,3}", version):
            raise t.error("graph_version", 'must look like "v23.0"')
        return cls(
            app_secret_file=t.secret_file("app_secret_file"),
            verify_token_file=t.secret_file("verify_token_file"),
            page_token_file=t.secret_file("page_token_file"),
            graph_base=t.url("graph_base", DEFAULT_GRAPH_BASE),
            graph_version=version,
            reply_window_h=t.number("reply_window_h", DEFAULT_REPLY_WINDOW_H),
            max_body_bytes=t.integer("max_body_bytes", cls.max_body_bytes, minimum=1024),
            http_timeout_s=t.number("http_timeout_s", cls.http_timeout_s, minimum=0.1),
        )
