"""``[channels.email]``: where the province's mailbox is read (IMAP) and answered from (SMTP).

``EmailChannelSettings.from_table(file, table)`` validates the table as read from
``tongdai.toml``; every problem is a ``ConfigError`` naming the file and the field
(``channels.email.imap_url``). Passwords are never in the file: ``password_file`` and
``smtp_password_file`` name files holding them (relative paths against the project home).

URLs say where and how to connect:

- ``imaps://host:993`` IMAP over TLS, ``imap://host:143`` plain IMAP (loopback or a trusted
  network only: the IMAP client, aioimaplib, has no STARTTLS);
- ``smtps://host:465`` SMTP over TLS, ``smtp://host:587?starttls`` submission upgraded with
  STARTTLS, ``smtp://host:25`` plain.

A ``cafile`` query parameter (``imaps://host:993?cafile=/etc/ssl/local-ca.pem``) trusts a
private CA instead of the system store (the lab's self-signed certificate).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from channels.webhooks import channel_fields, check_secret_file, secret_field
from tongdai.config_file import Fields
from tongdai.errors import ConfigError
from tongdai.settings import home_path

SECTION = "channels.email"
_PORTS = {"imap": 143, "imaps": 993, "smtp": 25, "smtps": 465}
_QUERY_KEYS = {"starttls", "cafile"}


@dataclass(frozen=True)
class Endpoint:
    """A parsed ``imap[s]://`` or ``smtp[s]://`` URL."""

    scheme: str
    host: str
    port: int
    tls: bool  # TLS from the first byte (imaps, smtps)
    starttls: bool  # plain connection upgraded with STARTTLS
    cafile: str | None = None

    def ssl_context(self) -> ssl.SSLContext | None:
        """The context for TLS or STARTTLS (certificate and host name verified), else None."""
        if not (self.tls or self.starttls):
            return None
        return ssl.create_default_context(cafile=self.cafile)


def parse_endpoint(file: str, field: str, url: str, kinds: tuple[str, str]) -> Endpoint:
    """Parse ``url`` whose scheme must be one of ``kinds`` (plain, TLS)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(file, field, f"not a valid URL: {exc}") from None
    plain, secure = kinds
    if parts.scheme not in (plain, secure):
        raise ConfigError(file, field, f"must start with {plain}:// or {secure}://, got {url!r}")
    if not parts.hostname:
        raise ConfigError(file, field, f"no host in {url!r}")
    if parts.username or parts.password:
        raise ConfigError(file, field, "put no user or password in the URL (use the *_file keys)")
    if parts.path not in ("", "/"):
        raise ConfigError(file, field, f"unexpected path {parts.path!r} in {url!r}")
    query = parse_qs(parts.query, keep_blank_values=True)
    for key in query:
        if key not in _QUERY_KEYS:
            raise ConfigError(
                file, field, f"unknown URL parameter {key!r} (known: starttls, cafile)"
            )
    starttls = "starttls" in query
    if starttls and plain == "imap":
        raise ConfigError(file, field, "the IMAP client has no STARTTLS: use imaps://")
    if starttls and parts.scheme == secure:
        raise ConfigError(file, field, f"{secure}:// is TLS already: drop ?starttls")
    cafile = query.get("cafile", [None])[-1] or None
    if cafile is not None and not Path(cafile).is_file():
        raise ConfigError(file, field, f"cafile {cafile} does not exist")
    return Endpoint(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port or _PORTS[parts.scheme],
        tls=parts.scheme == secure,
        starttls=starttls,
        cafile=cafile,
    )


def read_secret(path: str, *, file: str, field: str) -> str:
    """The password kept in ``path`` (one line; surrounding whitespace dropped). The file must
    exist and not be readable by every user (``channels.webhooks.check_secret_file``)."""
    p = home_path(path)
    check_secret_file(p, file, field)
    try:
        secret = p.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, field, f"cannot read {p}: {exc}") from None
    if not secret:
        raise ConfigError(file, field, f"{p} is empty")
    return secret


def _optional_text(f: Fields, key: str) -> str:
    return f.text(key).strip() if key in f.raw else ""


@dataclass(frozen=True)
class EmailChannelSettings:
    imap_url: str = "imaps://127.0.0.1:993"
    username: str = ""
    password_file: str = "var/email-imap.secret"
    #: the folder read (ASCII name; ``INBOX`` unless the province files 1022 mail elsewhere)
    mailbox: str = "INBOX"
    smtp_url: str = "smtp://127.0.0.1:587?starttls"
    #: empty: the IMAP user (most providers use one account for both)
    smtp_username: str = ""
    #: empty: the IMAP password file
    smtp_password_file: str = ""
    #: the province mailbox replies come from, e.g. ``1022@quangnam.gov.vn``
    from_address: str = ""
    #: the right-hand side of the Message-IDs we make, e.g. ``quangnam.gov.vn``
    domain: str = ""
    #: seconds between two looks at the mailbox when the server has no IDLE
    poll_s: float = 30.0
    #: use IMAP IDLE when the server has it (else poll every ``poll_s``)
    idle: bool = True
    #: mails fetched per IMAP FETCH (at most 200: aioimaplib handles a response's lines
    #: recursively, and its FETCH bookkeeping grows with the square of the batch)
    batch: int = 50
    #: seconds any single network wait may take
    timeout_s: float = 30.0
    #: seconds of one IDLE before it is renewed (servers drop IDLE after ~30 min)
    idle_renew_s: float = 300.0
    #: a display name for ``From`` (e.g. ``Tổng đài 1022 Quảng Nam``)
    from_name: str = ""
    #: the acknowledgement template the province edits (empty: the built-in ``ack_vi.toml``)
    ack_file: str = ""
    #: hours: a mail whose Date is older than this when read opens its ticket unacknowledged
    #: (a first start on a mailbox of old mail answers none of it); 0: acknowledge every mail
    ack_max_age_h: float = 72.0
    #: the file these settings came from (named in errors about the password files)
    source: str = field(default="<defaults>", compare=False)

    @property
    def imap(self) -> Endpoint:
        return parse_endpoint(self.source, f"{SECTION}.imap_url", self.imap_url, ("imap", "imaps"))

    @property
    def smtp(self) -> Endpoint:
        return parse_endpoint(self.source, f"{SECTION}.smtp_url", self.smtp_url, ("smtp", "smtps"))

    def imap_password(self) -> str:
        return read_secret(self.password_file, file=self.source, field=f"{SECTION}.password_file")

    def smtp_login(self) -> tuple[str, str]:
        """User and password for SMTP AUTH (the IMAP ones when not set apart)."""
        user = self.smtp_username or self.username
        path = self.smtp_password_file or self.password_file
        key = "smtp_password_file" if self.smtp_password_file else "password_file"
        return user, read_secret(path, file=self.source, field=f"{SECTION}.{key}")

    @classmethod
    def from_table(cls, file: str, table: object, name: str = SECTION) -> EmailChannelSettings:
        """Settings from the ``[channels.email]`` table of ``file``: unknown keys, wrong types,
        bad URLs and missing or world-readable password files name the field."""
        f = channel_fields(file, name, table, (x.name for x in fields(cls) if x.name != "source"))
        plain = cls()
        settings = cls(
            imap_url=f.text("imap_url", plain.imap_url).strip(),
            username=f.text("username").strip(),
            password_file=secret_field(f, "password_file"),
            mailbox=f.text("mailbox", plain.mailbox),
            smtp_url=f.text("smtp_url", plain.smtp_url).strip(),
            smtp_username=_optional_text(f, "smtp_username"),
            smtp_password_file=(
                secret_field(f, "smtp_password_file") if f.raw.get("smtp_password_file") else ""
            ),
            from_address=f.text("from_address").strip(),
            from_name=_optional_text(f, "from_name"),
            ack_file=_optional_text(f, "ack_file"),
            ack_max_age_h=f.number("ack_max_age_h", plain.ack_max_age_h, 0, 24 * 366),
            domain=f.text("domain").strip(),
            poll_s=f.number("poll_s", plain.poll_s, 0.1, 3600),
            idle=f.flag("idle", plain.idle),
            batch=f.whole("batch", plain.batch, 1, 200),
            timeout_s=f.number("timeout_s", plain.timeout_s, 0.5, 600),
            idle_renew_s=f.number("idle_renew_s", plain.idle_renew_s, 10, 1740),
            source=file,
        )
        settings._check(f)
        return settings

    def _check(self, f: Fields) -> None:
        parse_endpoint(f.file, f"{f.prefix}imap_url", self.imap_url, ("imap", "imaps"))
        parse_endpoint(f.file, f"{f.prefix}smtp_url", self.smtp_url, ("smtp", "smtps"))
        if not self.mailbox.isascii() or not self.mailbox.isprintable():
            raise f.err("mailbox", "must be a printable ASCII folder name")
        if '"' in self.mailbox or "\\" in self.mailbox:
            raise f.err("mailbox", 'must not contain " or \\')
        if self.from_address.count("@") != 1 or any(c in self.from_address for c in " <>\t"):
            raise f.err(
                "from_address",
                f"must be a bare address like 1022@example.gov.vn, got {self.from_address!r}",
            )
        if "@" in self.domain or any(c in self.domain for c in " <>\t"):
            raise f.err("domain", f"must be a domain like quangnam.gov.vn, got {self.domain!r}")
