"""The report page is assembled from executed outputs: safe whatever they hold, no machine paths."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import pytest

from analysis.report.html import (CONTENT_SECURITY_POLICY, add_contents, markdown_to_html, notebook_body, page,
                                  sanitize)
from analysis.report.render import shown_parameters, to_html

PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201a8a9a0a60000000049454e44ae426082")).decode()

#: markup through every kind of value a page shows: prose, a table cell, a heading, an attribute
HOSTILE = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(2)">',
    '<td onmouseover="alert(3)">depression</td>',
    '<a href="javascript:alert(4)">link</a>',
    '<iframe src="https://example.org"></iframe>',
    '<svg onload="alert(5)"><circle/></svg>',
    '<style>@import url(https://example.org/x.css); td { background: url(http://example.org/p.png) }</style>',
    '<p style="background:url(https://example.org/q.png)">x</p>',
    '"><script>alert(6)</script>',
    "<!--<script>alert(7)</script>-->",
    '<math><mi xlink:href="javascript:alert(8)">x</mi></math>',
]


class _Markup(HTMLParser):
    """The tags, attributes and style text of a document, as a browser parses them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.styles: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    def handle_data(self, data):
        if self.lasttag == "style":
            self.styles.append(data)


def assert_inert(document: str) -> None:
    """Nothing that runs or fetches, as parsed: no script-capable tag, no event handler, no
    javascript: or remote link or source, no remote URL or @import in a style."""
    parsed = _Markup()
    parsed.feed(document)
    parsed.close()
    for tag, attrs in parsed.tags:
        assert tag not in {"script", "iframe", "svg", "math", "object", "embed", "link", "base", "form"}, tag
        for name, value in attrs:
            value = (value or "").strip().lower()
            assert not name.startswith("on"), (tag, name)
            if name in ("href", "src", "xlink:href", "action", "srcset"):
                assert not value.startswith(("javascript:", "http:", "https:", "//")), (tag, name, value)
                if name == "src":
                    assert value.startswith("data:image/"), (tag, value)
            if name == "style":
                assert "url(" not in value and "expression(" not in value, (tag, value)
        if tag == "meta":
            assert dict(attrs).get("http-equiv", "").lower() in ("", "content-security-policy"), attrs
    for style in parsed.styles:
        assert "@import" not in style and not re.search(r"url\(\s*['\"]?(https?:|//)", style), style


@pytest.mark.parametrize("markup", HOSTILE)
def test_markup_in_html_outputs_is_shown_as_text(markup):
    cleaned = sanitize(f"<table><tr><td>{markup}</td></tr></table>")
    assert_inert(cleaned)
    assert cleaned.startswith("<table><tr><td>")


@pytest.mark.parametrize("markup", HOSTILE)
def test_markup_in_markdown_is_shown_as_text(markup):
    assert_inert(markdown_to_html(f"## Site {markup}\n\nA site named {markup} has 12 patients."))


def test_what_a_report_needs_passes_unchanged():
    table = ('<table class="ko-table"><caption>Patients by site</caption><thead><tr><th scope="col">site</th>'
             '<th colspan="2">patients</th></tr></thead><tbody><tr><td>site_A &amp; B</td><td>&lt;11</td><td>40</td>'
             '</tr></tbody></table>')
    assert sanitize(table) == table
    figure = f'<figure><img alt="Relapse" src="data:image/png;base64,{PNG}"><figcaption>KM</figcaption></figure>'
    assert sanitize(figure) == figure
    assert sanitize('<a href="#sec-data">Data</a> <a href="site_A/report.html">A</a>') == \
        '<a href="#sec-data">Data</a> <a href="site_A/report.html">A</a>'
    assert sanitize("<section id=\"sec-a\"><h2>A</h2><p>x<br>y</p></section>") == \
        '<section id="sec-a"><h2>A</h2><p>x<br>y</p></section>'
    # what pandas' Styler writes (its <style> block and ids) stays, minus anything fetched
    assert sanitize('<style type="text/css">#T_1 th { color: red }</style>') == \
        '<style type="text/css">#T_1 th { color: red }</style>'


def test_unbalanced_fragments_are_closed():
    assert sanitize("<table><tr><td>x") == "<table><tr><td>x</td></tr></table>"
    assert sanitize("</div>text") == "&lt;/div&gt;text"


def hostile_notebook(markup: str) -> dict:
    return {"cells": [
        {"cell_type": "markdown", "source": f"# Report {markup}\n\nIntro {markup}"},
        {"cell_type": "code", "source": "x", "metadata": {}, "outputs": [
            {"output_type": "display_data", "data": {"text/markdown": f"## Site {markup}\n\ntext"}},
            {"output_type": "display_data", "data": {"text/html": f"<table><tr><td>{markup}</td></tr></table>"}},
            {"output_type": "display_data", "data": {"image/png": PNG, "text/plain": "<Figure>"}},
            {"output_type": "display_data", "data": {"image/svg+xml": f"<svg>{markup}</svg>"}},
            {"output_type": "execute_result", "data": {"text/plain": f"{{'site': '{markup}'}}"}},
            {"output_type": "stream", "name": "stdout", "text": markup},
            {"output_type": "error", "ename": "ValueError", "evalue": markup, "traceback": [markup]},
        ]},
        {"cell_type": "raw", "source": markup},
    ]}


@pytest.mark.parametrize("markup", HOSTILE)
def test_a_page_of_hostile_outputs_and_parameters_is_inert(markup):
    provenance = {"package_version": "0", "git": {"commit": markup}, "notebook": {"path": markup, "sha256": markup},
                  "data": {"sha256": {markup: "0" * 64}},
                  "parameters": {"title": markup, "sites": [markup], "data": "/home/someone/secret/clinic"},
                  "python": "3", "platform": markup, "dependencies": {"x": markup}, "timings_seconds": {"total": 1}}
    doc = to_html(hostile_notebook(markup), provenance, title=markup)
    head, rest = doc.split("<body>", 1)
    assert f'content="{CONTENT_SECURITY_POLICY}"' in head
    assert_inert(doc)
    assert "/home/someone" not in doc and "data=&#x27;clinic&#x27;" in doc
    assert doc.count("data:image/png;base64,") == 1 and doc.count("data:image/svg+xml;base64,") == 1


def test_no_policy_allows_a_script_or_a_fetch():
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["default-src"] == "'none'" and "script-src" not in directives
    assert directives["img-src"] == "data:" and directives["style-src"] == "'unsafe-inline'"


def test_stderr_warnings_lose_their_folders():
    body = notebook_body([{"cell_type": "code", "outputs": [
        {"output_type": "stream", "name": "stderr",
         "text": "/work/main/src/analysis/x.py:12: UserWarning: few patients\n  warnings.warn(...)\n"}]}])
    assert body == '<pre class="stderr">x.py:12: UserWarning: few patients\n  warnings.warn(...)\n</pre>'


def test_contents_link_every_section_once():
    body = ("<h1>Cohort report</h1><section id='sec-t'><h2>Cohort report</h2></section>"
            "<section id='sec-a'><h2>Data <code>summary</code></h2></section><h2>Table 1</h2><h3>Men</h3>")
    out = add_contents(body)
    nav = re.search(r'<nav id="contents".*?</nav>', out).group(0)
    assert re.findall(r'href="#([^"]+)"', nav) == ["data-summary", "table-1"]
    assert out.index("<nav") < out.index("<section id='sec-a'>") and out.index("<nav") > out.index("sec-t")
    assert '<h3 id="men">' in out
    assert add_contents(out) == out, "a page with contents gets no second table"


def test_shown_parameters_hide_machine_paths():
    literals = {"data": "/srv/clinics/north/export", "output_dir": "/tmp/.partial-x-1", "html_path": "/tmp/r.html",
                "title": "T"}
    assert shown_parameters(literals) == {"data": "export", "title": "T"}


def test_page_escapes_title_and_footer():
    doc = page("<h2>x</h2>", title="</title><script>alert(1)</script>",
               footer=[("parameters", "title='<b onmouseover=x>'")])
    assert "<script" not in doc and "onmouseover=x>" not in doc
    assert "&lt;/title&gt;&lt;script&gt;" in doc


@pytest.mark.parametrize("markup", [m for m in HOSTILE if not m.startswith("<!--")])
def test_the_inertness_check_catches_each_markup_raw(markup):
    with pytest.raises(AssertionError):
        assert_inert(markup)
