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

from channels.webhooks import channel_fields, secret_field, url_field

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
        f = channel_fields(file, name, table, (x.name for x in fields(cls)))
        return cls(
            app_id=f.text("app_id").strip(),
            oa_id=f.text("oa_id").strip(),
            oa_secret_key_file=secret_field(f, "oa_secret_key_file"),
            app_secret_file=secret_field(f, "app_secret_file"),
            access_token_file=secret_field(f, "access_token_file"),
            refresh_token_file=secret_field(f, "refresh_token_file"),
            api_base=url_field(f, "api_base", cls.api_base),
            oauth_base=url_field(f, "oauth_base", cls.oauth_base),
            replay_window_s=f.number("replay_window_s", cls.replay_window_s, 1, 86_400),
            reply_window_h=f.number("reply_window_h", cls.reply_window_h, 0, 8_760),
            max_body_bytes=f.whole("max_body_bytes", cls.max_body_bytes, 1024, 64 << 20),
            http_timeout_s=f.number("http_timeout_s", cls.http_timeout_s, 0.1, 300),
        )
