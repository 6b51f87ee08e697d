"""Markdown bodies: the sanitised HTML a post page shows, and the plain text that is searched.

A Markdown body is parsed by markdown-it-py (CommonMark, with tables and strikethrough) and its
HTML is cleaned by nh3 (Rust's ammonia) with an allow-list, whatever the parser produced. Raw
HTML in the Markdown is let through the parser and cleaned with the rest: blog posts hold
`<!-- more -->`, `<br>`, `<sup>`, which a reader should see as the blog did, not as literal tags;
the allow-list decides what survives, not the parser. What never survives: scripts, styles (the
element and the attribute), event handlers, frames, objects, forms, images, and any link that is
not an absolute http(s) or mailto URL (no `javascript:`, `data:`, relative or scheme-relative
`//host` links, which would point into this site or at whatever host the post names).

Images are shown as links to them: the page's Content-Security-Policy allows images from this
site only, and a picture from the post's host would tell that host who reads what.

The plain text is the text of that same HTML: what a reader sees, link text without its URL,
paragraphs apart by blank lines. It is what the index holds and snippets are cut from.

Rendering is bounded: markdown-it-py takes up to 24 us a character (a long list of one-word
items; a wide table 13 us), so a body longer than MAX_SOURCE_CHARS is not rendered; and a few
kilobytes of references to a long link can render to megabytes of HTML, so neither is a body
whose HTML would be longer than MAX_HTML_CHARS (counted on the parser's tokens before any HTML
is written, and on the cleaned HTML). Such a body is shown and searched as plain text. The
index stores the HTML, rendered once at ingest: a view only reads it, and marks a query's words
in its text (`mark_html`, linear in the HTML).

markdown-it-py is imported on first use: it takes 0.1 s to import, which every command would
pay at start.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import nh3

# Spans of a run of text to mark (a query's words), as (start, end) character offsets in order.
Marker = Callable[[str], Iterable[tuple[int, int]]]

ALLOWED_TAGS = frozenset({
    "p", "br", "hr", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "code",
    "em", "strong", "i", "b", "del", "s", "sub", "sup",
    "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td",
})
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "*": set()}  # "*": not even ammonia's lang, title
# Elements whose content goes with them: their text is code, fallback or markup, never prose.
DROPPED_WITH_CONTENT = frozenset({
    "script", "style", "iframe", "frame", "frameset", "object", "embed", "applet", "noscript", "noembed",
    "noframes", "template", "svg", "math", "textarea", "select", "title", "head", "xmp", "plaintext",
})
LINK_REL = "nofollow noopener noreferrer"
_SCHEMES = frozenset({"http", "https", "mailto"})

# The bounds of one rendering (ARCHITECTURE.md, "Markdown posts", has the measurements). The
# index stores what they decide: changing them needs a new SCHEMA_VERSION.
MAX_SOURCE_CHARS = 250_000
MAX_HTML_CHARS = 2_500_000


class _TooLong(Exception):
    """The HTML of a source would be longer than MAX_HTML_CHARS."""


def render_markdown(source: str) -> str | None:
    """`source` as safe HTML; None when rendering it is not bounded: longer than
    MAX_SOURCE_CHARS, or with HTML longer than MAX_HTML_CHARS.

    Headings move one level down (`#` is <h2>): the page's <h1> is the post's title.
    """
    if len(source) > MAX_SOURCE_CHARS:
        return None
    try:
        html = _parser().render(source)
    except _TooLong:
        return None
    clean = _cleaner().clean(html)
    return clean if len(clean) <= MAX_HTML_CHARS else None


def clean_stored(html: str) -> str:
    """HTML read back from an index, cleaned again by the same allow-list before it is shown: an
    index, a snapshot or a replica someone else wrote (its checksums recomputed) must not put
    its own markup on our pages or in the API's `body_html`. Cleaning our own HTML again gives
    it back unchanged (nh3 is idempotent), in about 20 ms a MB."""
    return _cleaner().clean(html)


def mark_html(html: str, marked: Marker) -> str:
    """HTML from `render_markdown` with the spans `marked` gives of its text in <mark>.

    `marked` reads the HTML with every tag and character reference blanked out, so its offsets
    are the HTML's own and a mark is put only around characters of text: nothing of the
    cleaned HTML is parsed again or re-escaped. A tag parts words, as it did when the marks were
    made while rendering (`*em*phasis` is two runs of text). Linear in the HTML: a regular
    expression finds the tags, and the query's words are found as in a plain post.
    """
    shadow = _MARKUP.sub(_blank, html)
    out: list[str] = []
    position = 0
    for start, end in marked(shadow):
        if shadow[start:end] != html[start:end]:  # never: a word holds no blanked character
            continue
        out += [html[position:start], "<mark>", html[start:end], "</mark>"]
        position = end
    out.append(html[position:])
    return "".join(out)


# A tag as nh3 writes it (every attribute value in double quotes, `"` in it as &quot;), or a
# character reference (it writes only &amp; &lt; &gt; &quot; &nbsp;, none of them a word's).
_MARKUP = re.compile(r'<[^>"]*(?:"[^"]*"[^>"]*)*>|&#?\w+;')


def _blank(match: re.Match[str]) -> str:
    return " " * (match.end() - match.start())


def plain_text(source: str) -> str:
    """The words a reader of the rendered `source` sees (`html_text`); `source` itself when it
    is too long to render."""
    html = render_markdown(source)
    return source if html is None else html_text(html)


def html_text(html: str) -> str:
    """The words a reader of HTML from `render_markdown` sees: link text kept, URLs and markup
    dropped, paragraphs (headings, list items' lists, code blocks) apart by a blank line."""
    reader = _TextReader()
    reader.feed(html)
    reader.close()
    text = "".join(reader.parts)
    text = "\n".join(line.strip(" ") for line in _SPACES.sub(" ", text).split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_PARAGRAPH = "\n\n"
_BREAKS = {
    **dict.fromkeys(("p", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "ul", "ol", "table", "hr"), _PARAGRAPH),
    **dict.fromkeys(("li", "tr", "br"), "\n"),
    **dict.fromkeys(("td", "th"), " "),
}


class _TextReader(HTMLParser):
    """The text of cleaned HTML (only allowed tags, no attributes that hold text to read)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.in_pre = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.parts.append(_BREAKS.get(tag, ""))
        self.in_pre += tag == "pre"

    def handle_endtag(self, tag: str) -> None:
        self.parts.append(_BREAKS.get(tag, ""))
        self.in_pre -= tag == "pre" and self.in_pre > 0

    def handle_data(self, data: str) -> None:
        # A line break in a paragraph is a space on the page; in a code block it is a line.
        self.parts.append(data if self.in_pre else data.replace("\n", " "))


def _href_filter(tag: str, attribute: str, value: str) -> str | None:
    """Only absolute http(s) URLs with a host, and mailto: ammonia keeps "http:evil", which a
    browser resolves as a path on this site."""
    if attribute != "href":
        return value
    parts = urlsplit(value.strip())
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES or (scheme != "mailto" and not parts.netloc):
        return None
    return value


@cache
def _cleaner() -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=set(ALLOWED_TAGS), clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_href_filter, url_schemes=set(_SCHEMES), url_relative="deny",
        link_rel=LINK_REL, strip_comments=True,
    )


@cache
def _parser() -> Any:
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    parser.core.ruler.push("searchsvc_headings", _headings_down)
    parser.core.ruler.push("searchsvc_bounded", _bounded_output)
    parser.add_render_rule("image", _render_image)
    return parser


def _headings_down(state: Any) -> None:
    for token in state.tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1]) + 1, 6)}"


# What a token's tags add to its text, at the least ("<p>" and "</p>\n").
_TAG_CHARS = 4


def _bounded_output(state: Any) -> None:
    """_TooLong when the HTML would be longer than MAX_HTML_CHARS, before any of it is written:
    a reference to a link is its whole URL (and title) again at each use. (6% of a parse.)"""
    size = 0
    for token in state.tokens:
        for leaf in token.children or (token,):
            size += _TAG_CHARS + len(leaf.content)
            if leaf.attrs:
                size += sum(len(str(value)) for value in leaf.attrs.values())
        if size > MAX_HTML_CHARS:
            raise _TooLong


def _render_image(self: Any, tokens: Sequence[Any], idx: int, options: Any, env: dict[str, Any]) -> str:
    """A link to the image, its alt text as the link's text (the cleaner checks the URL)."""
    from markdown_it.common.utils import escapeHtml

    token = tokens[idx]
    alt = self.renderInline(token.children or [], options, env) or "image"
    return f'<a href="{escapeHtml(token.attrGet("src") or "")}">{alt}</a>'
