"""Text out of mail bytes, whatever the charset says: never raises, never loses a letter silently.

Mail in Vietnam arrives as UTF-8, windows-1258 (``cp1258``: Vietnamese with combining tone
marks), latin-1 / windows-1252 from old clients, or mislabelled (``us-ascii`` on UTF-8 bytes,
a charset Python does not know). ``decode_bytes`` tries the declared charset strictly, then
UTF-8, then windows-1258, and only then decodes with replacement characters; the result is
NFC-normalised so that a windows-1258 "ộ" (o + combining marks) equals the UTF-8 one.

``decode_header_value`` decodes RFC 2047 encoded words (``=?utf-8?B?...?=``) and raw 8-bit
header bytes (RFC 6532) the same way.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from email.errors import HeaderParseError
from email.header import decode_header

#: tried, in order, after the declared charset fails
FALLBACKS = ("utf-8", "cp1258")
#: labels that mean "no charset" rather than a real one
_MEANINGLESS = {"unknown-8bit", "x-unknown", "unknown", "8bit", "default"}
_FOLD_RE = re.compile(r"\r?\n[ \t]")


def known_charset(label: str | None) -> str | None:
    """Python's codec name for a MIME charset label, or None when Python has no such codec."""
    if not label:
        return None
    label = label.strip().strip('"').lower()
    if not label or label in _MEANINGLESS:
        return None
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):
        return None
    # a MIME charset is a text encoding: refuse codecs such as "base64" or "rot13"
    if not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def decode_bytes(data: bytes, charset: str | None) -> tuple[str, str]:
    """``(text, how)``: ``how`` is the codec used, with ``"+replace"`` when bytes were lost."""
    declared = known_charset(charset)
    tried: list[str] = []
    for candidate in (declared, *FALLBACKS):
        if candidate is None or candidate in tried:
            continue
        tried.append(candidate)
        try:
            return _nfc(data.decode(candidate)), candidate
        except (UnicodeDecodeError, LookupError):
            continue
    last = declared or "utf-8"
    return _nfc(data.decode(last, errors="replace")), f"{last}+replace"


def decode_header_value(value: str) -> str:
    """A header as a person reads it: unfolded, encoded words decoded, 8-bit bytes decoded.

    ``value`` is the raw header string as ``email`` keeps it (undecodable bytes as
    surrogate escapes)."""
    value = _FOLD_RE.sub(" ", value).replace("\r", "").replace("\n", "")
    value = _undo_surrogates(value)
    if "=?" not in value:
        return _nfc(value).strip()
    try:
        chunks = decode_header(value)
    except (HeaderParseError, ValueError, LookupError, AssertionError):
        return _nfc(value).strip()
    out: list[str] = []
    for chunk, label in chunks:
        if isinstance(chunk, str):
            out.append(chunk)
        else:
            out.append(decode_bytes(chunk, label)[0])
    decoded = _nfc("".join(out)).strip()
    # a broken encoded word can decode to nothing: then the raw header says more
    return decoded or _nfc(value).strip()


def _undo_surrogates(value: str) -> str:
    """Raw 8-bit header bytes come through ``email`` as surrogate escapes: decode them."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    raw = value.encode("utf-8", errors="surrogateescape")
    return decode_bytes(raw, None)[0]


def _nfc(text: str) -> str:
    text = text.replace("\x00", "")
    return unicodedata.normalize("NFC", text)
