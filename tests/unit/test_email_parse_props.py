"""Property tests: the mail parser never raises, whatever bytes arrive, and always returns a
message the core can store (an id, a sender, a timezone-aware time)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.email.charsets import decode_bytes, decode_header_value
from channels.email.parse import parse_mail
from channels.email.quotes import trim_quoted
from channels.email.sanitize import html_to_text, safe_html
from conversations.model import InboundMessage

SAMPLES = sorted((Path(__file__).resolve().parent.parent / "mail_samples").glob("*.eml"))
AT = datetime(2026, 12, 6, tzinfo=UTC)
PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_header_names = st.sampled_from(
    [
        "From",
        "To",
        "Subject",
        "Message-ID",
        "References",
        "In-Reply-To",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Content-Disposition",
        "Auto-Submitted",
        "Return-Path",
        "Precedence",
        "X-Bogus",
    ]
)
_header_values = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "=?utf-8?B?",
            "=?windows-1258?Q?=F0=E0i?=",
            "multipart/mixed; boundary=x",
            "text/plain; charset=x-nope",
            "base64",
            "quoted-printable",
            "<>",
            "<a@b>",
            "attachment; filename*=utf-8''%E1%BB",
            "message/rfc822",
            "multipart/report",
        ]
    ),
)


def assert_storable(m: InboundMessage) -> None:
    assert m.external_id and isinstance(m.external_id, str)
    assert "@" in m.sender.value
    assert m.received_at.tzinfo is not None
    assert isinstance(m.text, str)
    for a in m.attachments:
        assert a.filename and "/" not in a.filename and "\\" not in a.filename


@PROPS
@given(st.binary(max_size=4096))
def test_given_arbitrary_bytes_then_parse_never_raises(raw: bytes) -> None:
    assert_storable(parse_mail(raw, AT))


@PROPS
@given(
    st.lists(st.tuples(_header_names, _header_values), max_size=12),
    st.binary(max_size=1024),
)
def test_given_random_headers_and_body_then_parse_never_raises(
    headers: list[tuple[str, str]], body: bytes
) -> None:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers).encode("utf-8", "surrogatepass")
    assert_storable(parse_mail(head + b"\r\n" + body, AT))


@PROPS
@given(
    st.sampled_from(SAMPLES),
    st.lists(st.tuples(st.integers(min_value=0), st.binary(max_size=8)), max_size=8),
)
def test_given_a_corrupted_real_mail_then_parse_never_raises(
    path: Path, edits: list[tuple[int, bytes]]
) -> None:
    raw = bytearray(path.read_bytes())
    for position, patch in edits:
        at = position % (len(raw) + 1)
        raw[at : at + len(patch)] = patch
    assert_storable(parse_mail(bytes(raw), AT))


@PROPS
@given(st.binary(max_size=512), st.one_of(st.none(), st.text(max_size=20)))
def test_given_any_bytes_and_label_then_decode_never_raises(data: bytes, label: str | None) -> None:
    text, how = decode_bytes(data, label)
    assert isinstance(text, str) and how


@PROPS
@given(st.text(max_size=300))
def test_given_any_text_then_header_html_and_quote_helpers_never_raise(text: str) -> None:
    decode_header_value(text)
    trim_quoted(text)
    html_to_text(text)
    out = safe_html(text)
    assert "<script" not in out.lower()
