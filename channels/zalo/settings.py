"""``[channels.zalo]``: the Official Account, where its secrets live, the platform's URLs.

Zalo has two secrets: the OA secret key signs webhooks (``oa_secret_key_file``), the app's
secret key authenticates token refreshes (``app_secret_file``, header ``secret_key``). The
access and refresh tokens live in their own files, rewritten by ``channels.zalo.tokens``.
Every secret file must exist and not be readable by every user.

    [channels.zalo]
    app_id = "1234567890123456789"
    oa_id = "9876543210987654321"
    oa_secret_key_file = "var/zalo/oa_secret_key"
    app_secret_file = "var/zalo/app_secret"
    access_token_file = "var/zalo/access_token"
    refresh_token_file = "var/zalo/refresh_token"
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from channels.webhooks import Table

#: Zalo lets an OA send customer-service ("tư vấn") messages for 7 days after the user's last
#: interaction (the API answers -230 "User has not interacted with the OA in the past 7 days")
DEFAULT_REPLY_WINDOW_H = 168.0


@dataclass(frozen=True)
class ZaloSettings:
    app_id: str
    oa_id: str
    oa_secret_key_file: str
    app_secret_file: str
    access_token_file: str
    refresh_token_file: str
    api_base: str = "https://openapi.zalo.me"
    oauth_base: str = "https://oauth.zaloapp.com"
    #: a webhook whose ``timestamp`` is further than this from now (past or future) is refused
    replay_window_s: float = 300.0
    reply_window_h: float = DEFAULT_REPLY_WINDOW_H
    max_body_bytes: int = 1 << 20
    http_timeout_s: float = 10.0

    @classmethod
    def from_table(cls, file: str, table: object, name: str = "channels.zalo") -> ZaloSettings:
        """Settings from the ``[channels.zalo]`` table of ``file``; errors name the field."""
        t = Table(file, name, table, (f.name for f in fields(cls)))
        return cls(
            app_id=t.text("app_id"),
            oa_id=t.text("oa_id"),
            oa_secret_key_file=t.secret_file("oa_secret_key_file"),
            app_secret_file=t.secret_file("app_secret_file"),
            access_token_file=t.secret_file("access_token_file"),
            refresh_token_file=t.secret_file("refresh_token_file"),
            api_base=t.url("api_base", cls.api_base),
            oauth_base=t.url("oauth_base", cls.oauth_base),
            replay_window_s=t.number("replay_window_s", cls.replay_window_s, minimum=1),
            reply_window_h=t.number("reply_window_h", cls.reply_window_h),
            max_body_bytes=t.integer("max_body_bytes", cls.max_body_bytes, minimum=1024),
            http_timeout_s=t.number("http_timeout_s", cls.http_timeout_s, minimum=0.1),
        )
