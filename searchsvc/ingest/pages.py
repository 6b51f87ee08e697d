"""Web pages: a saved or fetched HTML page is one post, or a listing of teasers of many.

A post page goes through trafilatura (main text without menus, sidebars and footers; title,
author; the date through htmldate). A listing page (a blog's front page, a Drupal view, a
WordPress archive) would come out of trafilatura as its first teaser only, so it is recognised
first, by its shape: two or more blocks (`<article>`, or Drupal's and WordPress's teaser and
row classes), each with a heading that links to the post. Each block is a teaser of its post:
a record whose body is only the start of the post (`teaser=True`), replaced when the post's own
page arrives (ingest/batch.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import lxml.etree
import lxml.html

from searchsvc.dates import reads_as_date
from searchsvc.ingest import addresses
from searchsvc.ingest.listing import CHROME, DATE_LINE

# Blocks of a listing: each one post's teaser. Class names of Drupal (node-teaser, views-row),
# WordPress (type-post, hentry) and microformats (h-entry).
_BLOCK_CLASSES = {"node-teaser", "teaser", "views-row", "type-post", "hentry", "h-entry", "post-teaser",
                  "entry", "post", "node"}
_HEADINGS = ("h1", "h2", "h3", "h4")
# Parts of a teaser block that are not its text: the byline and date, links, comment counts.
_NOT_TEXT_CLASSES = {"submitted", "links", "meta", "byline", "author", "date", "entry-meta", "post-meta",
                     "node-readmore", "tags", "field-name-field-tags", "entry-footer", "comments", "post-card-meta"}
_BLOCK_TAGS = {"p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "tr", "article",
               "section", "header", "footer", "ul", "ol", "table", "dd", "dt", "figcaption", "br"}


@dataclass(frozen=True)
class PageRecord:
    """A raw post record read from a page, and whether its body is only a teaser."""

    data: dict[str, Any]
    teaser: bool = False
    line: int | None = None  # where a listing's teaser starts in the page


@dataclass
class ReadPage:
    """What a page held: posts (one, or a listing's teasers), and the links a crawler follows."""

    records: list[PageRecord] = field(default_factory=list)
    listing: bool = False
    post_links: list[str] = field(default_factory=list)  # each teaser's post page
    next_pages: list[str] = field(default_factory=list)  # the listing's pager


class NotAPage(Exception):
    """HTML with no text to read."""


def read_page(content: bytes | str, url: str | None = None, *, charset: str | None = None,
              expect_listing: bool = False) -> ReadPage:
    """The posts of an HTML page; `url` is where it came from (links are resolved against it),
    `charset` what its HTTP header says (which wins over the page's own <meta>, as in browsers),
    `expect_listing` that a listing's pager led here (its last page may hold a single teaser)."""
    if isinstance(content, bytes) and charset:
        try:
            content = content.decode(charset, "replace")
        except LookupError:
            pass  # a charset Python does not know: the page's <meta>, or libxml2's guess
    if isinstance(content, str):
        # XHTML's `<?xml ... encoding="utf-8"?>`: lxml refuses text that names its encoding, and the
        # header's charset has been applied already.
        content = _XML_DECLARATION.sub("", content, count=1)
    try:
        tree = lxml.html.document_fromstring(content)
    except (lxml.etree.ParserError, ValueError) as e:
        raise NotAPage(f"not an HTML page: {e or 'empty'}") from None
    base = _base_url(tree, url)
    blocks = _listing_blocks(tree)
    if len(blocks) >= 2 or (blocks and (expect_listing or _is_teaser(blocks[0][0]))):
        page = _read_listing(blocks, base)
    else:
        page = ReadPage(records=[_read_post(tree, url, base)])
    language = page_language(tree)
    if language:
        for record in page.records:
            record.data.setdefault("lang", language)
    return page


_XML_DECLARATION = re.compile(r"\A\ufeff?\s*<\?xml\b[^>]*\?>")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")


def language_tag(declared: str | None) -> str | None:
    """A declared language ("tr", "tr-TR", " en_GB ") as a post's `lang`; None unless it is one."""
    declared = (declared or "").strip()
    return declared if _LANGUAGE.fullmatch(declared) else None


def page_language(tree: Any) -> str | None:
    """The language the page declares (`<html lang="tr">`, or a Content-Language meta tag): what
    picks a post's analysis (Turkish stems for "tr")."""
    declared = tree.get("lang") or tree.get("{http://www.w3.org/XML/1998/namespace}lang")
    if not declared:
        for meta in tree.iter("meta"):
            if (meta.get("http-equiv") or "").lower() == "content-language":
                declared = (meta.get("content") or "").split(",")[0]
                break
    return language_tag(declared)


def _base_url(tree: lxml.html.HtmlElement, url: str | None) -> str | None:
    for element in tree.iter("base"):
        href = element.get("href")
        if href:
            return addresses.join(url, href) or url
    return url


# -- a post page -------------------------------------------------------------------------------

def _read_post(tree: lxml.html.HtmlElement, url: str | None, base: str | None) -> PageRecord:
    import trafilatura  # with htmldate and jusText, a fifth of a second to import: only for a post page

    canonical = _canonical(tree, base)
    document = trafilatura.bare_extraction(
        tree, url=url, with_metadata=True, include_comments=False, include_tables=True, favor_precision=True,
        date_extraction_params={"outputformat": "%Y-%m-%dT%H:%M:%S", "original_date": True,
                                "extensive_search": False},
    )
    if document is None or not (document.text or "").strip():
        raise NotAPage("no text found in the page")
    title = (document.title or "").strip()
    lines = [line.strip() for line in document.text.split("\n") if line.strip()]
    # trafilatura keeps the post's own heading and Drupal's "submitted" line at the top of the text.
    if lines and title and _same_text(lines[0], title):
        lines.pop(0)
    if lines and DATE_LINE.match(lines[0]):
        lines.pop(0)
    data: dict[str, Any] = {"title": title or None, "body": "\n\n".join(lines)}
    # htmldate writes a date it found without a time (in the address, in the text) at midnight:
    # that midnight is not in the page, so only the day is kept.
    date = _published(tree) or (document.date.removesuffix("T00:00:00") if document.date else None)
    if date:
        data["date"] = date
    if document.author:
        data["author"] = document.author
    # A canonical address on another site is not taken: the id derives from the url, and a page
    # must not be able to stand in for another site's post (and replace it in the index).
    if canonical and url and addresses.site(canonical) != addresses.site(url):
        canonical = None
    page_url = canonical or (addresses.clean(url) if url and addresses.is_url(url) else None)
    if page_url:
        data["url"] = page_url
    return PageRecord(data)


# Where a page states when it was published, as written (an offset kept, so it becomes UTC): the
# Open Graph article tag, Dublin Core and other meta names, schema.org's itemprop, a <time>.
_DATE_META = {"article:published_time", "og:published_time", "dc.date", "dc.date.issued", "dcterms.date",
              "dcterms.issued", "date", "pubdate", "publishdate", "publish-date", "sailthru.date",
              "parsely-pub-date"}


def _published(tree: lxml.html.HtmlElement) -> str | None:
    """The publication date a page's own markup states, as written; None to let htmldate look
    (which drops a written offset: 23:30 at -05:00 would be stored as 23:30)."""
    for meta in tree.iter("meta"):
        name = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").strip().lower()
        if (name in _DATE_META or name == "datepublished") and reads_as_date(meta.get("content")):
            return meta.get("content").strip()
    return _stated_date(tree, times=False)


def _stated_date(root: Any, *, times: bool) -> str | None:
    """The first date stated for machines in `root`: schema.org's datePublished, Drupal's `dc:date`
    and, with `times`, a `<time datetime>` (a teaser's own; in a whole page one may date anything)."""
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        candidates = []
        if times and element.tag == "time":
            candidates.append(element.get("datetime"))
        if element.get("itemprop") == "datePublished":
            candidates += [element.get("datetime"), element.get("content")]
        if "dc:date" in (element.get("property") or "").split():
            candidates.append(element.get("content"))
        stated = next((c for c in candidates if c), None)
        if reads_as_date(stated):
            return stated.strip()
    return None


def _canonical(tree: lxml.html.HtmlElement, base: str | None) -> str | None:
    """The page's `<link rel="canonical">`, if it is an http(s) address."""
    for element in tree.iter("link"):
        if "canonical" in (element.get("rel") or "").lower().split() and element.get("href"):
            found = addresses.join(base, element.get("href"))
            # Every page naming the home page as its canonical address is a misconfigured plugin, not
            # one post: taken, it would make every post one id.
            if found and (urlsplit(found).path.strip("/") or not base or not urlsplit(base).path.strip("/")):
                return found
    return None


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


# -- a listing ---------------------------------------------------------------------------------

def _classes(element: lxml.html.HtmlElement) -> set[str]:
    return set((element.get("class") or "").split())


def _listing_blocks(tree: lxml.html.HtmlElement) -> list[tuple[lxml.html.HtmlElement, lxml.html.HtmlElement]]:
    """(block, its heading link) of each teaser, outermost blocks first dropped for innermost.

    In time linear in the page: what is asked of an element's ancestors (the nearest block, whether
    it sits in an aside) is worked out once per element, and each element's heading links are
    counted (up to two) in one pass. Asked again for each heading, by scanning the blocks found or
    walking every ancestor, a page of 100,000 teasers took minutes."""
    found = []
    taken: set[Any] = set()  # the blocks in `found` (elements hash by identity)
    nearest: dict[Any, Any] = {}
    aside: dict[Any, bool] = {}
    for heading in tree.iter(*_HEADINGS):
        link = next((a for a in heading.iter("a") if a.get("href")), None)
        if link is None:  # Ghost's cards: the heading inside the link
            link = next((up for up in heading.iterancestors("a") if up.get("href")), None)
        if link is None:
            continue
        block = _upwards(heading.getparent(), nearest, _block_here)
        if block is None or _upwards(block, aside, _aside_here):
            continue  # "related posts", "recent posts" beside a post are not a listing
        if block not in taken:
            taken.add(block)
            found.append((block, link))
    # A page whose one article holds headings of its own (a post with linked sub-headings) is not a
    # listing: every block must hold one heading link only.
    links = _heading_links(tree) if found else {}
    blocks = [(b, a) for b, a in found if links.get(b) == 1]
    hrefs = {a.get("href") for _, a in blocks}
    return blocks if len(hrefs) == len(blocks) else []


def _block_here(element: Any) -> Any:
    return element if element.tag == "article" or _classes(element) & _BLOCK_CLASSES else None


def _aside_here(element: Any) -> bool | None:
    if element.tag in ("aside", "nav", "footer") or _ASIDE.search(" ".join(
            filter(None, (element.get("class"), element.get("id"))))):
        return True
    return None


def _upwards(element: Any, known: dict[Any, Any], here: Any) -> Any:
    """The first answer of `here` (not None) on `element` or its ancestors, None if there is none;
    every element passed is remembered in `known` with it, so no ancestor is asked twice."""
    passed = []
    answer = None
    while element is not None:
        if element in known:
            answer = known[element]
            break
        passed.append(element)
        answer = here(element)
        if answer is not None:
            break
        element = element.getparent()
    for seen in passed:
        known[seen] = answer
    return answer


def _heading_links(tree: Any) -> dict[Any, int]:
    """element -> how many headings with a link it holds, counted to two ("more than one"). A walk
    up from a heading stops at an element already at two: its ancestors are at two already."""
    counts: dict[Any, int] = {}
    for heading in tree.iter(*_HEADINGS):
        if _heading_link(heading) is None:
            continue
        element = heading
        while element is not None and counts.get(element, 0) < 2:
            counts[element] = counts.get(element, 0) + 1
            element = element.getparent()
    return counts


# A block that says it is a teaser: the last page of a listing may hold only one.
_TEASER_CLASSES = {"node-teaser", "teaser", "views-row", "post-teaser", "post-card"}
# Where a listing's excerpt sits: WordPress's entry-summary (entry-content is a whole post), Ghost's.
_EXCERPT_CLASSES = {"entry-summary", "post-card-excerpt", "excerpt", "post-excerpt", "summary"}
_READ_MORE = re.compile(r"^\s*(read more|continue reading|more)\b", re.IGNORECASE)


def _is_teaser(block: Any) -> bool:
    if _classes(block) & _TEASER_CLASSES or any(_classes(up) & _TEASER_CLASSES for up in block.iterancestors()):
        return True
    if any(isinstance(e.tag, str) and _classes(e) & _EXCERPT_CLASSES for e in block.iter()):
        return True
    return any(_READ_MORE.match(a.text_content() or "") for a in block.iter("a"))


_ASIDE = re.compile(r"related|recent|sidebar|widget|popular|more-posts|read-next|footer|menu", re.IGNORECASE)


def _heading_link(heading: Any) -> Any:
    return heading.find(".//a[@href]") if heading.find(".//a[@href]") is not None else next(
        (up for up in heading.iterancestors("a") if up.get("href")), None)


def _read_listing(blocks: list[tuple[Any, Any]], base: str | None) -> ReadPage:
    page = ReadPage(listing=True)
    for block, link in blocks:
        href = addresses.join(base, link.get("href"))
        heading = next(block.iter(*_HEADINGS))
        title = heading if link in heading.iterancestors() else link
        data: dict[str, Any] = {"title": " ".join(title.text_content().split()) or None}
        if href:
            data["url"] = href
            page.post_links.append(href)
        text = block_text(block)
        date, author = _byline(block)
        if date:
            data["date"] = date
        if author:
            data["author"] = author
        lines = [line for line in text.split("\n\n") if not DATE_LINE.match(line)
                 and not _same_text(line, data["title"] or "") and not CHROME.match(line)]
        data["body"] = "\n\n".join(lines)
        page.records.append(PageRecord(data, teaser=True, line=block.sourceline))
    page.next_pages = _pager(blocks[0][0].getroottree().getroot(), base)
    return page


def _byline(block: Any) -> tuple[str | None, str | None]:
    """The teaser's date and author. The date the markup states for machines first (`<time
    datetime>`, Drupal's `dc:date`, schema.org's datePublished: with its offset, as the post's page
    gives it), else Drupal's visible "date -- author" line; the author from that line, else an
    author link."""
    date = _stated_date(block, times=True)
    author = None
    for element in block.iter():
        if isinstance(element.tag, str) and _classes(element) & _NOT_TEXT_CLASSES:
            match = DATE_LINE.match(" ".join(element.text_content().split()))
            if match:
                return date or match["date"], match["author"]
    if date is None:
        for element in block.iter("time"):
            date = element.text_content().strip() or None
            break
    for element in block.iter("a", "span"):
        if element.get("rel") == "author" or _classes(element) & {"username", "author", "fn", "p-author"}:
            author = " ".join(element.text_content().split()) or None
            break
    return date, author


# Pager links by class, in any language: WordPress's "next page-numbers", its older themes'
# "nav-previous" (older posts), Drupal's "pager-next" item, Ghost's "older-posts".
_NEXT_CLASSES = {"next", "pager-next", "pager__item--next", "nav-previous", "older-posts", "pagination-next",
                 "next-page", "nextpostslink"}


def _pager(root: Any, base: str | None) -> list[str]:
    """The listing's next page: a `rel="next"` link, a link classed as the pager's next (itself or
    its list item), or a pager link reading "next"."""
    found: dict[str, None] = {}  # an ordered set: a page of 100,000 "next" links is no list to scan
    for element in root.iter("a", "link"):
        rel = (element.get("rel") or "").lower().split()
        label = " ".join(element.text_content().split()).lower() if element.tag == "a" else ""
        classes = _classes(element) | (_classes(element.getparent()) if element.getparent() is not None else set())
        if element.get("href") and ("next" in rel or classes & _NEXT_CLASSES
                                    or re.match(r"^(next|older)\b|^next ›|›$|»$", label)):
            if label in ("last »", "»") or "prev" in rel:
                continue
            href = addresses.join(base, element.get("href"))
            if href:
                found[href] = None
    return list(found)


def block_text(element: Any) -> str:
    """The text of an element as paragraphs separated by blank lines, without the parts of a
    teaser that are not its text (headings, bylines, link lists), scripts and styles."""
    parts: list[str] = []
    current: list[str] = []

    def flush() -> None:
        line = " ".join("".join(current).split())
        if line:
            parts.append(line)
        current.clear()

    def walk(node: Any, top: bool) -> None:
        if not isinstance(node.tag, str) or node.tag in ("script", "style", "noscript", "template"):
            if node.tail and not top:
                current.append(node.tail)
            return
        skip = _classes(node) & _NOT_TEXT_CLASSES or node.tag in ("nav", "form", "footer")
        block = node.tag in _BLOCK_TAGS
        if block:
            flush()
        if not skip:
            if node.text:
                current.append(node.text)
            for child in node:
                walk(child, False)
        if block:
            flush()
        if node.tail and not top:
            current.append(node.tail)

    walk(element, True)
    flush()
    return "\n\n".join(parts)


def html_text(fragment: str) -> str:
    """The text of an HTML fragment (a feed's content), paragraphs separated by blank lines."""
    if not fragment.strip():
        return ""
    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (lxml.etree.ParserError, ValueError):
        return fragment
    return block_text(root)
