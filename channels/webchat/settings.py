"""``[channels.webchat]``: the portal's live chat widget (``/chat``, ``/chat/ws``).

    [channels.webchat]
    # pages allowed to embed the chat and to open its socket (besides this site itself);
    # "*" allows any origin (a test setting, not for production)
    allowed_origins = ["https://dichvucong.quangnam.gov.vn"]
    # the key that signs visitor tokens (absent: one is made in the state folder at start)
    secret_file = "var/webchat/secret"
    max_message_chars = 2000        # a longer message is refused with a clear error
    max_frame_bytes = 16384         # a larger WebSocket frame / HTTP body closes / is 413
    rate_per_minute = 20            # messages per visitor and per client address
    burst = 5                       # messages allowed at once before the rate applies

A visitor needs no login: the browser keeps an unguessable token (``channels.webchat.token``)
that names its visitor id; a forged or altered token is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from channels.webhooks import channel_fields, secret_field

ORIGIN_RE = re.compile(r"^(\*|https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?)$")


@dataclass(frozen=True)
class WebchatSettings:
    allowed_origins: tuple[str, ...] = ()
    #: empty: a key is generated under the state folder (``webchat_secret``) at start
    secret_file: str = ""
    max_message_chars: int = 2000
    max_frame_bytes: int = 16 * 1024
    rate_per_minute: float = 20.0
    burst: int = 5
    #: an agent's reply not yet seen by an absent visitor is offered again this often (s)
    absent_retry_s: float = 3600.0

    @classmethod
    def from_table(
        cls, file: str, table: object, name: str = "channels.webchat"
    ) -> WebchatSettings:
        f = channel_fields(file, name, table, (x.name for x in fields(cls)))
        origins = f.text_list("allowed_origins", ORIGIN_RE, "origins like https://host[:port]")
        return cls(
            allowed_origins=tuple(o.rstrip("/").lower() for o in origins),
            secret_file=secret_field(f, "secret_file") if "secret_file" in f.raw else "",
            max_message_chars=f.whole("max_message_chars", cls.max_message_chars, 1, 20_000),
            max_frame_bytes=f.whole("max_frame_bytes", cls.max_frame_bytes, 1024, 1 << 20),
            rate_per_minute=f.number("rate_per_minute", cls.rate_per_minute, 0.1, 6000),
            burst=f.whole("burst", cls.burst, 1, 1000),
            absent_retry_s=f.number("absent_retry_s", cls.absent_retry_s, 1, 3600),
        )
