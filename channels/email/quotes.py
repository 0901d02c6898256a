"""Trim the quoted history off a reply for display; the full text stays stored.

A citizen's reply usually carries the whole thread below (or, rarely, above) the new words.
``trim_quoted`` cuts at the first line that starts the quote, as mail clients write it:

- the attribution line: ``Vào Th 2, 6 thg 12, 2026 lúc 09:15 ... đã viết:`` (Gmail in
  Vietnamese), ``On Mon, Dec 6, 2026 at 9:15 AM ... wrote:``, possibly wrapped on two lines;
- a run of lines starting with ``>``;
- Outlook's header block: ``From:`` / ``Từ:`` followed within a few lines by ``Sent:`` /
  ``Gửi:`` / ``Date:`` / ``To:`` / ``Subject:`` / ``Tiêu đề:``, or its
  ``-----Original Message-----`` / ``-----Thư gốc-----`` rule.

When nothing is left above the cut (a top-quoted mail, or only a quote), the text is returned
whole: showing too much is better than showing nothing.
"""

from __future__ import annotations

import re

_ATTRIBUTION = [
    re.compile(r"^\s*(vào|vao)\b.*\b(đã viết|da viet|viết)\s*:\s*$", re.IGNORECASE),
    re.compile(r"^\s*on\b.*\bwrote\s*:\s*$", re.IGNORECASE),
    re.compile(r"^\s*le\b.*\ba écrit\s*:\s*$", re.IGNORECASE),
]
#: the first line of a two-line attribution ("On Mon, ... <a@b.c>" + "wrote:")
_ATTRIBUTION_START = re.compile(r"^\s*(on|vào|vao)\s+\S.*$", re.IGNORECASE)
_ATTRIBUTION_END = re.compile(r"^\s*.*\b(wrote|viết|viet)\s*:\s*$", re.IGNORECASE)
_RULE = re.compile(
    r"^\s*-{2,}\s*(original message|thư gốc|thu goc|forwarded message|thư chuyển tiếp)\s*-{2,}\s*$",
    re.IGNORECASE,
)
_OUTLOOK_FROM = re.compile(r"^\s*\**(from|từ|tu)\**\s*:\s*\S", re.IGNORECASE)
_OUTLOOK_NEXT = re.compile(
    r"^\s*\**(sent|date|to|subject|cc|gửi|đã gửi|ngày|đến|tới|tiêu đề|chủ đề)\**\s*:",
    re.IGNORECASE,
)
_OUTLOOK_WINDOW = 4
_UNDERLINE = re.compile(r"^\s*[_-]{8,}\s*$")


def _quote_start(lines: list[str]) -> int | None:
    """Index of the first line of the quoted part, or None."""
    for i, line in enumerate(lines):
        if any(p.match(line) for p in _ATTRIBUTION) or _RULE.match(line):
            return i
        if (
            _ATTRIBUTION_START.match(line)
            and i + 1 < len(lines)
            and _ATTRIBUTION_END.match(lines[i + 1])
            and len(line) + len(lines[i + 1]) < 300
        ):
            return i
        if _OUTLOOK_FROM.match(line) and any(
            _OUTLOOK_NEXT.match(nxt) for nxt in lines[i + 1 : i + 1 + _OUTLOOK_WINDOW]
        ):
            # Outlook draws a rule of underscores above the block
            return i - 1 if i > 0 and _UNDERLINE.match(lines[i - 1]) else i
        if line.lstrip().startswith(">") and _quoted_run(lines, i):
            return i
    return None


def _quoted_run(lines: list[str], start: int) -> bool:
    """True when ``start`` begins a quote that runs (blank lines aside) to the end or to a
    signature; a single ``>`` line inside the citizen's own words is not a quote block."""
    rest = [line for line in lines[start:] if line.strip()]
    quoted = sum(1 for line in rest if line.lstrip().startswith(">"))
    return quoted >= max(1, len(rest) - 3)


def trim_quoted(text: str) -> str:
    """The new words of a reply (see the module docstring); ``text`` itself when unsure."""
    lines = text.replace("\r\n", "\n").split("\n")
    cut = _quote_start(lines)
    if cut is None:
        return text.strip()
    kept = "\n".join(lines[:cut]).rstrip()
    return kept if kept.strip() else text.strip()
