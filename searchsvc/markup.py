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

# Our marks travel through the cleaner as two private-use characters, taken out of the source
# first: `mark` is not on the allow-list, so a post's own <mark> is dropped like any other tag.
_OPEN, _CLOSE = "\ue000", "\ue001"
_NO_PLACEHOLDERS = {ord(_OPEN): None, ord(_CLOSE): None}


def render_markdown(source: str, marked: Marker | None = None) -> str:
    """`source` as safe HTML; with `marked`, the spans it gives in each run of text are in <mark>.

    Headings move one level down (`#` is <h2>): the page's <h1> is the post's title.
    """
    env: dict[str, Any] = {"marked": marked}
    html = _parser().render(source.translate(_NO_PLACEHOLDERS), env)
    clean = _cleaner().clean(html)
    if marked is not None:
        clean = clean.replace(_OPEN, "<mark>").replace(_CLOSE, "</mark>")
    return clean


def plain_text(source: str) -> str:
    """The words a reader of the rendered `source` sees: link text kept, URLs and markup
    dropped, paragraphs (headings, list items' lists, code blocks) apart by a blank line."""
    reader = _TextReader()
    reader.feed(render_markdown(source))
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
    parser.add_render_rule("text", _render_text)
    parser.add_render_rule("image", _render_image)
    return parser


def _headings_down(state: Any) -> None:
    for token in state.tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1]) + 1, 6)}"


def _render_text(self: Any, tokens: Sequence[Any], idx: int, options: Any, env: dict[str, Any]) -> str:
    from markdown_it.common.utils import escapeHtml

    content = tokens[idx].content
    marked = env.get("marked")
    if marked is None:
        return escapeHtml(content)
    out: list[str] = []
    position = 0
    for start, end in marked(content):
        out += [escapeHtml(content[position:start]), _OPEN, escapeHtml(content[start:end]), _CLOSE]
        position = end
    out.append(escapeHtml(content[position:]))
    return "".join(out)


def _render_image(self: Any, tokens: Sequence[Any], idx: int, options: Any, env: dict[str, Any]) -> str:
    """A link to the image, its alt text as the link's text (the cleaner checks the URL)."""
    from markdown_it.common.utils import escapeHtml

    token = tokens[idx]
    alt = self.renderInline(token.children or [], options, env) or "image"
    return f'<a href="{escapeHtml(token.attrGet("src") or "")}">{alt}</a>'
