"""HTML from mail, made safe for the console's pages, and turned into plain text.

``safe_html`` rebuilds the HTML from an allow-list (stdlib ``html.parser``, no dependency):
only the tags in ``ALLOWED_TAGS`` survive, with only the attributes in ``ALLOWED_ATTRS``;
``script``, ``style``, ``head``, ``title``, ``iframe``, ``object``, ... are dropped with their
content; every ``on*`` handler, ``style`` attribute and ``javascript:``/``data:``/``vbscript:``
URL goes; links keep http(s)/mailto/tel targets and open in a new tab without a referrer;
images are kept only when they point at an attachment (``cid:``): a remote image would tell
the sender when and where the mail was read, so it becomes its ``alt`` text. Text and
attribute values are re-escaped, so the output never contains markup the input smuggled in.

``html_to_text`` keeps the words of an HTML-only mail, with line breaks where blocks end.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


ALLOWED_TAGS = _words(
    "a abbr b blockquote br caption code dd del div dl dt em font h1 h2 h3 h4 h5 h6 hr i img "
    "ins kbd li ol p pre q s small span strike strong sub sup table tbody td tfoot th thead tr "
    "tt u ul"
)
#: dropped with everything inside them
DROPPED_WITH_CONTENT = _words(
    "script style head title iframe object applet noscript template svg math frameset "
    "textarea select button form audio video canvas"
)
VOID_TAGS = frozenset({"br", "hr", "img"})
ALLOWED_ATTRS: dict[str, frozenset[str]] = {
    "*": frozenset({"title", "dir", "lang", "align"}),
    "a": frozenset({"href"}),
    "img": frozenset({"src", "alt", "width", "height"}),
    "td": frozenset({"colspan", "rowspan", "valign"}),
    "th": frozenset({"colspan", "rowspan", "valign"}),
    "ol": frozenset({"start", "type"}),
    "font": frozenset({"color", "size"}),
    "table": frozenset({"border", "cellpadding", "cellspacing", "width"}),
}
_LINK_SCHEMES = ("http:", "https:", "mailto:", "tel:")
_CONTROL_RE = re.compile(r"[\x00-\x20\x7f]+")
#: text breaks after these when converting to plain text
_BLOCKS = _words("p div br tr li h1 h2 h3 h4 h5 h6 blockquote pre table ul ol dl dt dd hr")


def _url_scheme(value: str) -> str:
    """The scheme of a URL as a browser sees it (controls and spaces inside are ignored)."""
    compact = _CONTROL_RE.sub("", html.unescape(value)).lower()
    head, sep, _ = compact.partition(":")
    return head + ":" if sep and "/" not in head else ""


class _Sanitiser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0  # depth inside a dropped-with-content element
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DROPPED_WITH_CONTENT:
            self.skip += 1
            return
        if self.skip or tag not in ALLOWED_TAGS:
            return
        kept = self._attrs(tag, attrs)
        if kept is None:  # a remote image: keep its words only
            alt = dict(attrs).get("alt") or ""
            if alt:
                self.out.append(html.escape(f"[{alt}]", quote=False))
            return
        self.out.append(f"<{tag}{kept}>")
        if tag not in VOID_TAGS:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID_TAGS and tag in ALLOWED_TAGS and not self.skip:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in DROPPED_WITH_CONTENT:
            self.skip = max(0, self.skip - 1)
            return
        if self.skip or tag not in self.open:
            return
        while self.open:  # close what the sender left open inside it
            top = self.open.pop()
            self.out.append(f"</{top}>")
            if top == tag:
                break

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.out.append(html.escape(data, quote=False))

    def _attrs(self, tag: str, attrs: list[tuple[str, str | None]]) -> str | None:
        allowed = ALLOWED_ATTRS["*"] | ALLOWED_ATTRS.get(tag, frozenset())
        parts: list[str] = []
        for name, value in attrs:
            name = name.lower()
            if name not in allowed or value is None:
                continue
            bad_link = _url_scheme(value) not in _LINK_SCHEMES and not value.startswith("#")
            if name == "href" and bad_link:
                continue
            if name == "src" and _url_scheme(value) != "cid:":
                return None
            parts.append(f' {name}="{html.escape(value, quote=True)}"')
        if tag == "a" and any(p.startswith(" href=") for p in parts):
            parts.append(' target="_blank" rel="noopener noreferrer nofollow"')
        if tag == "img" and not any(p.startswith(" src=") for p in parts):
            return None
        return "".join(parts)

    def result(self) -> str:
        self.close()
        while self.open:
            self.out.append(f"</{self.open.pop()}>")
        return "".join(self.out)


def safe_html(source: str) -> str:
    """``source`` reduced to the allow-list: safe to put inside a page as it is."""
    parser = _Sanitiser()
    parser.feed(source)
    return parser.result()


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DROPPED_WITH_CONTENT:
            self.skip += 1
        elif tag in _BLOCKS and not self.skip:
            self.out.append("\n")
        if tag == "li" and not self.skip:
            self.out.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if tag in DROPPED_WITH_CONTENT:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCKS and not self.skip:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.out.append(re.sub(r"\s+", " ", data))


def html_to_text(source: str) -> str:
    """The words of an HTML mail, one block a line, at most one empty line in a row."""
    parser = _TextExtractor()
    parser.feed(source)
    parser.close()
    lines = [line.strip() for line in "".join(parser.out).split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
