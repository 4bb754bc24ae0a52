"""shared/render/sanitize.py, exactly: what the allow-list keeps and drops, heading demotion,
Markdown escaping at the start of a line, plain text, URLs and cutting at a word boundary.
(The renderers' hostile-input tests are in test_render_outputs.py; these pin each tool's output, so a
loosened allow-list or an off-by-one fails here: see docs/MUTATION.md.)"""
from __future__ import annotations

import pytest

from shared.render.sanitize import clean_html, cut, md_escape, plain, safe_url, summary_html

FRAGMENT = ('<p><a href="http://x.org/" title="t" onclick="y">a</a> <img src="x.png"> <u>u</u> '
            '<span style="c">s</span> <!-- note --> <a href="mailto:a@b.org">m</a> <a href="HTTP://X.ORG/">up</a> '
            '<a href="ftp://x">f</a> <a href="https://y.org/">s</a></p>'
            '<table><tr><td align="left" class="k" colspan="2">c</td></tr></table><ol start="3" type="a"><li>i</li></ol>')


def test_clean_html_keeps_only_the_allow_list():
    assert clean_html(FRAGMENT) == (
        '<p><a href="http://x.org/" title="t" rel="noopener noreferrer">a</a>  u s  '
        '<a rel="noopener noreferrer">m</a> <a href="HTTP://X.ORG/" rel="noopener noreferrer">up</a> '
        '<a rel="noopener noreferrer">f</a> <a href="https://y.org/" rel="noopener noreferrer">s</a></p>'
        '<table><tbody><tr><td align="left">c</td></tr></tbody></table><ol start="3"><li>i</li></ol>')


def test_summary_html_demotes_headings_and_drops_control_characters():
    assert summary_html("# A\n\n## B\n\n### C\n\ntext\x00more\x07") == \
        "<h3>A</h3>\n<h4>B</h4>\n<h3>C</h3>\n<p>textmore</p>\n"
    assert summary_html("") == "" and summary_html(None) == ""
    assert summary_html("<b>raw</b> [x](javascript:alert(1))") == \
        "<p>&lt;b&gt;raw&lt;/b&gt; [x](javascript:alert(1))</p>\n"


@pytest.mark.parametrize("text, escaped", [
    ("# heading", "\\# heading"), ("## heading", "\\## heading"), ("--- rule", "\\--- rule"),  # one backslash, first
    ("+ item", "\\+ item"), ("- item", "\\- item"), ("= rule", "\\= rule"),
    ("1. item", "1\\. item"), ("12) item", "12\\) item"), ("  3. indented", "3\\. indented"),
    ("a & b <c> [l](u) *e* `c` |t| ~s~ !i _u_ {b}", "a &amp; b &lt;c&gt; \\[l\\](u) \\*e\\* \\`c\\` \\|t\\| \\~s\\~ "
                                                    "\\!i \\_u\\_ \\{b\\}"),
    ("line one\nline two", "line one line two"), ("", ""), (None, ""),
])
def test_md_escape(text, escaped):
    assert md_escape(text) == escaped


def test_plain():
    assert plain("a\x01b  c\n\t d\x7f") == "ab c d"
    assert plain(None) == "" and plain("") == ""


def test_safe_url():
    assert safe_url("HTTPS://Example.org/x") == "HTTPS://Example.org/x"
    assert safe_url(" http://a.b/c ") == "http://a.b/c"
    for bad in ("javascript:alert(1)", "data:text/html,x", "http://a b", 'http://a"b', "//a.b/c", "", None):
        assert safe_url(bad) is None, bad


@pytest.mark.parametrize("args, out", [
    (("a" * 300,), "a" * 300),                         # exactly the limit: not cut
    (("a" * 301,), "a" * 300 + "..."),                 # one over the default limit of 300
    (("word " * 100, 20), "word word word word..."),
    (("abc defghijklmnopqrstuvwxyz", 10), "abc defghi..."),  # the only space is too early: cut mid-word
    (("xxxxx " + "y" * 10, 10), "xxxxx yyyy..."),      # a space at exactly half the limit is too early
    (("aaaaa " + "b" * 20, 12), "aaaaa bbbbbb..."),    # before half the limit: too early
    (("one two, three", 9), "one two..."),             # trailing punctuation dropped before "..."
    (("abc WORDX more", 9), "abc WORDX..."),
    ((" short  text ",), "short text"),
])
def test_cut(args, out):
    assert cut(*args) == out
