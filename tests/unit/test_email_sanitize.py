"""safe_html: what a page may show of a mail's HTML (allow-list), and html_to_text."""

from __future__ import annotations

import pytest

from channels.email.sanitize import html_to_text, safe_html


@pytest.mark.parametrize(
    "attack",
    [
        "<script>alert(1)</script>",
        "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
        '<img src=x onerror="alert(1)">',
        '<a href="javascript:alert(1)">x</a>',
        '<a href=" JaVa&#x09;ScRiPt:alert(1)">x</a>',
        '<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>',
        '<a href="vbscript:msgbox(1)">x</a>',
        '<div style="background:url(javascript:alert(1))">x</div>',
        "<style>@import 'http://evil.example/x.css';</style>",
        '<iframe src="https://evil.example"></iframe>',
        '<svg onload="alert(1)"><script>alert(1)</script></svg>',
        '<p onclick="alert(1)" onmouseover="alert(2)">x</p>',
        '<form action="https://evil.example"><input name="p"></form>',
        "<object data=x></object><embed src=x>",
        '<meta http-equiv="refresh" content="0;url=https://evil.example">',
        '<base href="https://evil.example/">',
        '<link rel="stylesheet" href="https://evil.example/x.css">',
        "<<script>script>alert(1)<</script>/script>",
        '<img src="https://tracker.example/p.gif">',
        '<a title="&quot;><script>alert(1)</script>">x</a>',
    ],
)
def test_given_an_attack_then_nothing_active_survives(attack: str) -> None:
    out = safe_html(f"<p>trước</p>{attack}<p>sau</p>").lower()
    for bad in (
        "<script",
        "javascript:",
        "vbscript:",
        "data:",
        "onerror",
        "onclick",
        "onload",
        "onmouseover",
        "<iframe",
        "<style",
        "style=",
        "<form",
        "<input",
        "<object",
        "<embed",
        "<meta",
        "<base",
        "<link",
        "<svg",
        "evil.example",
        "tracker",
    ):
        assert bad not in out, (bad, out)
    assert "<p>trước</p>" in out and "<p>sau</p>" in out


def test_given_ordinary_formatting_then_it_is_kept() -> None:
    src = (
        '<div dir="ltr"><p>Kính gửi <b>Tổng đài</b>,</p><ul><li>một</li><li>hai</li></ul>'
        '<table border="1"><tr><td colspan="2">ô</td></tr></table>'
        '<a href="https://dichvucong.quangnam.gov.vn/ho-so?id=1&amp;x=2">Cổng DVC</a>'
        '<a href="mailto:1022@quangnam.gov.vn">thư</a><img src="cid:part1.abc" alt="ảnh"></div>'
    )
    out = safe_html(src)
    assert "<p>Kính gửi <b>Tổng đài</b>,</p>" in out
    assert "<ul><li>một</li><li>hai</li></ul>" in out
    assert '<td colspan="2">ô</td>' in out
    assert 'href="https://dichvucong.quangnam.gov.vn/ho-so?id=1&amp;x=2"' in out
    assert 'rel="noopener noreferrer nofollow"' in out
    assert 'href="mailto:1022@quangnam.gov.vn"' in out
    assert '<img src="cid:part1.abc" alt="ảnh">' in out  # an attached image may show


def test_given_a_remote_image_then_only_its_alt_text_remains() -> None:
    assert safe_html('<img src="https://x.example/logo.png" alt="Logo UBND">') == "[Logo UBND]"


def test_given_text_that_looks_like_markup_then_it_stays_text() -> None:
    assert safe_html("a &lt;b&gt; &amp; c") == "a &lt;b&gt; &amp; c"
    assert safe_html("1 < 2 > 0") == "1 &lt; 2 &gt; 0"


def test_given_unclosed_tags_then_output_is_balanced() -> None:
    out = safe_html("<p><b>đậm<i>nghiêng")
    assert out == "<p><b>đậm<i>nghiêng</i></b></p>"


def test_html_to_text_keeps_words_and_line_breaks() -> None:
    src = "<p>Xin chào,</p><p>Đèn <b>đường</b> hỏng.<br>Thôn 1</p><script>x()</script>"
    assert html_to_text(src) == "Xin chào,\n\nĐèn đường hỏng.\nThôn 1"
