"""The HTML report page, assembled directly from an executed notebook's outputs.

No nbconvert exporter (its template machinery costs more than the rest of the page): each
markdown cell and each output is turned into HTML here, in order, code never shown.

Safety, whatever the data hold (a site named ``<script>alert(1)</script>``, a diagnosis
with an ``onmouseover`` attribute, a ``-p title`` with markup):

* Markdown is rendered with raw HTML escaped (mistune, ``escape=True``).
* Every HTML fragment, from a Markdown rendering or a cell output (pandas Styler does not
  escape its values), is re-serialised through an allow-list (:func:`sanitize`): allowed
  tags and attributes pass, anything else appears as text, so an injected ``<script>`` is
  shown, not run. Event-handler attributes are dropped, links keep only in-page, relative or
  http(s) targets, images only ``data:`` PNG/JPEG/GIF sources.
* The page carries a content-security policy (:data:`CONTENT_SECURITY_POLICY`) that
  forbids every script and every fetch: only inline styles and ``data:`` images load.

The page has a table of contents of its ``<h2>`` sections (each heading gets an id) unless
the content already holds one (an element with id ``contents``).
"""

from __future__ import annotations

import base64
import binascii
import html
import html.entities
import re
from collections.abc import Iterable, Mapping, Sequence
from html.parser import HTMLParser
from typing import Any

__all__ = ["CONTENT_SECURITY_POLICY", "sanitize", "markdown_to_html", "notebook_body", "add_contents", "page",
           "footer_rows"]

#: no scripts, no fetches of any kind: inline styles and images embedded as data: URIs only
CONTENT_SECURITY_POLICY = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
                           "form-action 'none'")

_ALLOWED_TAGS = frozenset(
    "a abbr b blockquote br caption code col colgroup dd del div dl dt em figcaption figure h1 h2 h3 h4 h5 h6 hr i "
    "img li nav ol p pre s section small span strong style sub sup table tbody td tfoot th thead tr u ul".split())
_VOID_TAGS = frozenset({"br", "col", "hr", "img"})
_ALLOWED_ATTRIBUTES = frozenset(
    "id class colspan rowspan scope title alt width height align style href src start type headers aria-label".split())
_IMAGE_SOURCE = re.compile(r"data:image/(png|jpeg|gif);base64,[A-Za-z0-9+/=\s]*\Z")
# only url(data:...) may stay in CSS: anything else would be a fetch (the policy blocks it, but
# the browser then logs an error)
_CSS_FETCH = re.compile(r"@import|url\(\s*(?!['\"]?data:)[^)]*\)|expression\s*\(", re.IGNORECASE)


def _safe_href(value: str) -> bool:
    target = value.strip()
    if target.startswith("#") or re.match(r"https?://", target, re.IGNORECASE):
        return True
    # relative links (a batch index to its reports), but nothing with a scheme (javascript:, data:, file:)
    return ":" not in target.split("/", 1)[0] and not target.startswith("//")


class _Sanitizer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.out: list[str] = []
        self.open: list[str] = []

    def _attributes(self, tag: str, attrs: Sequence[tuple[str, str | None]]) -> str:
        kept = []
        for name, value in attrs:
            name = name.lower()
            value = "" if value is None else value
            if name not in _ALLOWED_ATTRIBUTES:
                continue
            if name == "href" and (tag != "a" or not _safe_href(value)):
                continue
            if name == "src" and (tag != "img" or not _IMAGE_SOURCE.match(value)):
                continue
            if name == "style" and _CSS_FETCH.search(value):
                continue
            kept.append(f' {name}="{html.escape(value, quote=True)}"')
        return "".join(kept)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _ALLOWED_TAGS or (tag == "img" and not any(n == "src" and v and _IMAGE_SOURCE.match(v)
                                                                  for n, v in attrs)):
            self.out.append(html.escape(self.get_starttag_text() or f"<{tag}>"))
            return
        self.out.append(f"<{tag}{self._attributes(tag, attrs)}>")
        if tag not in _VOID_TAGS:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in self.open and tag not in _VOID_TAGS and self.open[-1] == tag:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag not in _ALLOWED_TAGS or tag in _VOID_TAGS or tag not in self.open:
            if tag not in _VOID_TAGS:
                self.out.append(html.escape(f"</{tag}>"))
            return
        while self.open:  # close what was left open inside it
            top = self.open.pop()
            self.out.append(f"</{top}>")
            if top == tag:
                break

    def handle_data(self, data: str) -> None:
        if self.open and self.open[-1] == "style":
            self.out.append(_CSS_FETCH.sub("", data).replace("</", "<\\/"))
        else:
            self.out.append(html.escape(data, quote=False))

    def handle_entityref(self, name: str) -> None:
        self.out.append(f"&{name};" if f"{name};" in html.entities.html5 else html.escape(f"&{name}"))

    def handle_charref(self, name: str) -> None:
        self.out.append(f"&#{name};")

    def handle_comment(self, data: str) -> None:
        pass  # comments are dropped (conditional comments are markup)

    def handle_decl(self, decl: str) -> None:
        pass

    def handle_pi(self, data: str) -> None:
        pass

    def unknown_decl(self, data: str) -> None:
        self.out.append(html.escape(data))

    def result(self) -> str:
        self.close()
        return "".join(self.out) + "".join(f"</{tag}>" for tag in reversed(self.open))


def sanitize(fragment: str) -> str:
    """An HTML fragment with only allowed tags and attributes as markup; the rest as text.

    Examples
    --------
    >>> from analysis.report.html import sanitize
    >>> sanitize('<td onmouseover="steal()">site_<b>A</b></td><script>alert(1)</script>')
    '<td>site_<b>A</b></td>&lt;script&gt;alert(1)&lt;/script&gt;'
    >>> sanitize('<a href="javascript:alert(1)">x</a> <img src="https://example.org/a.png">')
    '<a>x</a> &lt;img src=&quot;https://example.org/a.png&quot;&gt;'
    """
    parser = _Sanitizer()
    parser.feed(fragment)
    return parser.result()


_MARKDOWN = None


def markdown_to_html(text: str) -> str:
    """Markdown as safe HTML: raw HTML in the text is shown as text.

    Examples
    --------
    >>> from analysis.report.html import markdown_to_html
    >>> markdown_to_html("## Site <script>x</script>\\n\\nCounts below 11 show as <11.")
    '<h2>Site &lt;script&gt;x&lt;/script&gt;</h2>\\n<p>Counts below 11 show as &lt;11.</p>\\n'
    """
    global _MARKDOWN
    if _MARKDOWN is None:
        import mistune

        _MARKDOWN = mistune.create_markdown(escape=True, plugins=["table", "strikethrough", "footnotes"])
    return sanitize(_MARKDOWN(text))


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# "/any/absolute/folder/file.py:12: UserWarning: ..." -> "file.py:12: UserWarning: ..."
_WARNING_PATH = re.compile(r"(?m)^(?:[A-Za-z]:)?[/\\](?:[^\s:]*[/\\])?([^/\\\s:]+):(\d+):")


def _image(mime: str, data: str, alt: str) -> str:
    payload = re.sub(r"\s+", "", data)
    try:
        base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"notebook output: {mime} image is not valid base64 ({exc})") from None
    return (f'<figure><img src="data:{mime};base64,{payload}" alt="{html.escape(alt, quote=True)}">'
            f"</figure>")


def _output_html(output: Mapping[str, Any], alt: str) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        text = _ANSI.sub("", "".join(output.get("text", "")))
        if output.get("name") == "stderr":
            text = _WARNING_PATH.sub(r"\1:\2:", text)
        return f'<pre class="{html.escape(output.get("name", "stdout"))}">{html.escape(text)}</pre>'
    if kind == "error":
        return (f'<pre class="error">{html.escape(str(output.get("ename", "")))}: '
                f'{html.escape(_ANSI.sub("", str(output.get("evalue", ""))))}\n'
                f"(the traceback is in the executed notebook)</pre>")
    data = output.get("data", {})
    if "text/html" in data:
        return f'<div class="output">{sanitize("".join(data["text/html"]))}</div>'
    for mime in ("image/png", "image/jpeg", "image/gif"):
        if mime in data:
            return _image(mime, "".join(data[mime]), alt)
    if "image/svg+xml" in data:  # as an image: an SVG document inline could carry scripts
        svg = "".join(data["image/svg+xml"]).encode()
        return (f'<figure><img src="data:image/svg+xml;base64,{base64.b64encode(svg).decode()}" '
                f'alt="{html.escape(alt, quote=True)}"></figure>')
    if "text/markdown" in data:
        return markdown_to_html("".join(data["text/markdown"]))
    if "text/plain" in data:
        return f"<pre>{html.escape(_ANSI.sub('', ''.join(data['text/plain'])))}</pre>"
    return ""


_HEADING = re.compile(r"<(h[1-6])([^>]*)>(.*?)</\1>", re.DOTALL)


def _text_of(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def notebook_body(cells: Iterable[Mapping[str, Any]]) -> str:
    """The HTML of a notebook's markdown cells and code outputs, in order, code hidden.

    ``cells`` are nbformat cells (dicts). Images are embedded as ``data:`` URIs with the
    current section's heading as their alternative text.

    Examples
    --------
    >>> from analysis.report.html import notebook_body
    >>> cells = [{"cell_type": "markdown", "source": "## Response"},
    ...          {"cell_type": "code", "source": "print(1)", "outputs": [
    ...              {"output_type": "stream", "name": "stdout", "text": "1\\n"}]}]
    >>> notebook_body(cells)
    '<h2>Response</h2>\\n<pre class="stdout">1\\n</pre>'
    """
    parts: list[str] = []
    section = "Figure"
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            fragment = markdown_to_html("".join(cell.get("source", "")))
        elif cell.get("cell_type") == "code":
            fragment = ""
            for output in cell.get("outputs", []):
                piece = _output_html(output, f"Figure: {section}")
                fragment += piece
                headings = _HEADING.findall(piece)
                if headings:
                    section = _text_of(headings[-1][2]) or section
        else:
            continue
        headings = _HEADING.findall(fragment)
        if headings:
            section = _text_of(headings[-1][2]) or section
        if fragment:
            parts.append(fragment)
    return "".join(parts)


def _slug(text: str, taken: set[str]) -> str:
    base = re.sub(r"[^\w\- ]", "", text.lower()).strip().replace(" ", "-") or "section"
    slug, i = base, 1
    while slug in taken:
        i += 1
        slug = f"{base}-{i}"
    taken.add(slug)
    return slug


def add_contents(body: str) -> str:
    """``body`` with an id on every ``<h2>`` and ``<h3>`` that has none and a table of contents
    linking its ``<h2>`` sections, placed before the first one listed. The title is not
    listed: an ``<h2>`` that repeats an ``<h1>``, or without an ``<h1>`` the first ``<h2>``.

    Left without contents when it already has an element with id ``contents`` or would list
    fewer than two sections.

    Examples
    --------
    >>> from analysis.report.html import add_contents
    >>> print(add_contents("<h2>Report</h2><h2>Data</h2><h2>Data</h2>"))
    <h2 id="report">Report</h2><nav id="contents" aria-label="Contents"><p class="contents-title">Contents</p><ol><li><a href="#data">Data</a></li><li><a href="#data-2">Data</a></li></ol></nav><h2 id="data">Data</h2><h2 id="data-2">Data</h2>
    """
    taken = set(re.findall(r'\sid="([^"]*)"', body))
    entries: list[tuple[str, str]] = []

    def with_id(match: re.Match) -> str:
        tag, attributes, inner = match.groups()
        if tag not in ("h2", "h3"):
            return match.group(0)
        found = re.search(r'\sid="([^"]*)"', attributes)
        ident = found.group(1) if found else _slug(_text_of(inner), taken)
        if tag == "h2":
            entries.append((ident, inner))
        return match.group(0) if found else f'<{tag} id="{ident}"{attributes}>{inner}</{tag}>'

    body = _HEADING.sub(with_id, body)
    titles = {_text_of(inner) for tag, _, inner in _HEADING.findall(body) if tag == "h1"}
    if titles:
        entries = [(ident, inner) for ident, inner in entries if _text_of(inner) not in titles]
    else:
        entries = entries[1:]  # the first <h2> is the title
    if 'id="contents"' in body or len(entries) < 2:
        return body
    links = "".join(f'<li><a href="#{html.escape(ident, quote=True)}">{sanitize(re.sub(r"<a[^>]*>|</a>", "", inner))}'
                    f"</a></li>" for ident, inner in entries)
    nav = f'<nav id="contents" aria-label="Contents"><p class="contents-title">Contents</p><ol>{links}</ol></nav>'
    first = body.find(f'<h2 id="{entries[0][0]}"')
    # before the <section> that holds the first listed heading, if it starts right before it
    opening = body.rfind("<section", 0, first)
    if opening >= 0 and not body[body.find(">", opening) + 1:first].strip():
        first = opening
    return body[:first] + nav + body[first:]


_STYLE = """
*, *::before, *::after { box-sizing: border-box; }
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; max-width: 60em; margin: 2em auto;
       padding: 0 1em; color: #1d2733; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.85em; max-width: 100%; }
th, td { border-bottom: 1px solid #d5dde6; padding: 0.25em 0.5em; text-align: right; vertical-align: top; }
th { overflow-wrap: anywhere; }
th:first-child, td:first-child { text-align: left; }
figure { margin: 1em 0; }
img { max-width: 100%; height: auto; }
h1, h2 { color: #24466b; }
nav#contents { background: #f3f6f9; padding: 0.5em 1em; border-radius: 4px; }
nav#contents ol { margin: 0.2em 0; columns: 2; column-gap: 2em; }
.contents-title { font-weight: bold; margin: 0.2em 0; }
footer { margin-top: 3em; padding-top: 1em; border-top: 1px solid #d5dde6; font-size: 0.8em; color: #55626f;
         overflow-wrap: anywhere; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; }
pre.stderr, pre.error { color: #8a1f11; }
"""


def footer_rows(provenance: Mapping[str, Any], parameters: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The provenance footer as (label, text) rows: inputs by file name and SHA-256, the
    parameters as given, never an absolute path of the machine that rendered it."""
    git = provenance.get("git", {})
    notebook = provenance.get("notebook", {})
    notebook_name = re.split(r"[/\\]", str(notebook.get("path", "")))[-1]
    return [
        ("package", f"ketamine-outcomes {provenance.get('package_version')}"),
        ("git commit", f"{git.get('commit') or 'unknown'}{' (uncommitted changes)' if git.get('dirty') else ''}"),
        ("notebook", f"{notebook_name} sha256 {str(notebook.get('sha256', ''))[:16]}…"),
        ("data", "; ".join(f"{n} {h[:12]}…" for n, h in provenance.get("data", {}).get("sha256", {}).items())),
        ("parameters", ", ".join(f"{k}={v!r}" for k, v in sorted(parameters.items()))),
        ("python", f"{provenance.get('python')} on {provenance.get('platform')}"),
        ("dependencies", ", ".join(f"{k} {v}" for k, v in provenance.get("dependencies", {}).items() if v)),
        ("rendered in", f"{provenance.get('timings_seconds', {}).get('total', 0):.1f} s"),
    ]


def page(body: str, *, title: str, footer: Sequence[tuple[str, str]]) -> str:
    """The whole HTML document: head with the content-security policy, ``body`` (already safe
    HTML) with its table of contents, and the provenance ``footer`` rows (escaped here).

    Examples
    --------
    >>> from analysis.report.html import page
    >>> doc = page("<h2>Report</h2>", title="<b>T</b>", footer=[("package", "ketamine-outcomes 0.1")])
    >>> "Content-Security-Policy" in doc, "<title>&lt;b&gt;T&lt;/b&gt;</title>" in doc, "<script" in doc
    (True, True, False)
    """
    rows = "".join(f"<div><strong>{html.escape(k)}</strong>: {html.escape(str(v))}</div>" for k, v in footer)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CONTENT_SECURITY_POLICY}\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>\n<main>\n"
            f"{add_contents(body)}\n</main>\n<footer><h3>Provenance</h3>{rows}</footer></body></html>\n")
