"""Feeds: RSS 0.9x/1.0/2.0 and Atom 0.3/1.0 through feedparser, one raw record per entry.

An entry's full content (`content:encoded`, Atom's `<content>`) is its body; an entry with only
a summary (`<description>`, `<summary>`) is a teaser of its post, replaced when the post's page
arrives and never replacing a longer body (ingest/batch.py). HTML content becomes text with
paragraphs kept; content of type text/markdown stays Markdown (`body_format: markdown`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import feedparser

from searchsvc.dates import RFC822_ZONES
from searchsvc.ingest import addresses
from searchsvc.ingest.listing import looks_cut_short
from searchsvc.ingest.pages import html_text, language_tag
from searchsvc.records import BODY_FORMAT, MARKDOWN

# A feed's entries start at these tags: where each entry's line is, for FILE:LINE messages.
_ENTRY = re.compile(rb"<(?:[A-Za-z0-9_]+:)?(?:item|entry)[\s>/]")
_FEED_ROOT = re.compile(rb"<(?:[A-Za-z0-9_]+:)?(?:rss|feed|RDF)[\s>]")
_SITEMAP_ROOT = re.compile(rb"<(?:[A-Za-z0-9_]+:)?(?:urlset|sitemapindex)[\s>]")


@dataclass(frozen=True)
class FeedEntry:
    """A raw record from a feed entry, the line it starts on, and whether its body is a teaser."""

    line: int | None
    data: dict[str, Any]
    teaser: bool


class NotAFeed(Exception):
    """Bytes that feedparser cannot read as a feed."""


def looks_like_feed(content: bytes) -> bool:
    """Whether the start of `content` is an RSS, RDF or Atom root element."""
    return _FEED_ROOT.search(content[:4096]) is not None


def looks_like_sitemap(content: bytes) -> bool:
    """Whether the start of `content` is a sitemap's or a sitemap index's root element."""
    return _SITEMAP_ROOT.search(content[:4096]) is not None


def read_feed(content: bytes, url: str | None = None) -> Iterator[FeedEntry]:
    """The entries of a feed, in the feed's order. Raises NotAFeed for anything else."""
    parsed = feedparser.parse(content, response_headers={"content-location": url} if url else None,
                              sanitize_html=True, resolve_relative_uris=True)
    if not parsed.version and not parsed.entries:
        reason = parsed.get("bozo_exception")
        raise NotAFeed(f"not an RSS or Atom feed ({reason})" if reason else "not an RSS or Atom feed")
    lines = _entry_lines(content)
    language = parsed.feed.get("language")  # RSS's <language>, Atom's xml:lang
    entries = [_entry(entry, lines[n] if n < len(lines) and len(lines) == len(parsed.entries) else None)
               for n, entry in enumerate(parsed.entries)]
    # A link that several entries share (every entry linking the home page) does not name a post:
    # as their url it would make them one post (ids derive from it).
    shared = {u for u, n in Counter(e.data.get("url") for e in entries).items() if u and n > 1}
    for entry, found in zip(parsed.entries, entries, strict=True):
        if found.data.get("url") in shared:
            del found.data["url"]
        entry_language = language_tag(_language(entry) or language)
        if entry_language:
            found.data.setdefault("lang", entry_language)
        yield found


def _entry_lines(content: bytes) -> list[int]:
    """The line each entry starts on, counting the newlines between one entry and the next only
    (counted from the start for each, 120,000 entries took minutes)."""
    lines, line, position = [], 1, 0
    for match in _ENTRY.finditer(content):
        line += content.count(b"\n", position, match.start())
        position = match.start()
        lines.append(line)
    return lines


def _entry(entry: Any, line: int | None) -> FeedEntry:
    data: dict[str, Any] = {"title": _text(entry.get("title_detail"), entry.get("title"))}
    # The fragment is kept: a feed's entries may be anchors of one page (/statements#3), each a post.
    link = addresses.join(None, entry.get("link") or "", fragment=True)
    if link:
        data["url"] = link
    date = _date(entry)
    if date:
        data["date"] = date
    author = entry.get("author")
    if author:
        data["author"] = author
    content = entry.get("content") or []
    full = next((c for c in content if (c.get("value") or "").strip()), None)
    teaser = full is None
    detail = full or entry.get("summary_detail") or {}
    value = detail.get("value") or ("" if full else entry.get("summary", ""))
    kind = (detail.get("type") or "text/html").lower()
    if kind in ("text/markdown", "text/x-markdown"):
        data["body"] = value
        data[BODY_FORMAT] = MARKDOWN
    else:
        data["body"] = html_text(value) if "html" in kind else value
    # Some feeds put an excerpt in the full-content element: "[…] Continue reading →".
    teaser = teaser or looks_cut_short(data["body"])
    return FeedEntry(line, data, teaser)


def _language(entry: Any) -> str | None:
    for detail in (*(entry.get("content") or []), entry.get("summary_detail") or {}, entry.get("title_detail") or {}):
        if detail.get("language"):
            return detail["language"]
    return None


def _text(detail: Any, value: str | None) -> str | None:
    if value is None:
        return None
    if detail and "html" in (detail.get("type") or ""):
        return " ".join(html_text(value).split())
    return value


# RFC 822's zone names (RSS dates are RFC 822 dates) are read by dates.parse_date as their
# offsets; some feeds write them in lower case ("23:30 est"), which dateutil does not see as a zone.
_ZONE_NAME = re.compile(r"(?<=[\s\d])([A-Za-z]{2,3})\s*$")


def _date(entry: Any) -> str | None:
    """The entry's date as written (published, else updated), an RFC 822 zone name in capitals.
    Never feedparser's reading: it makes a date of anything (2021-13-45 becomes 2022-01-01, a
    bare 2021 midnight of 1 January), where records.py calls a date that is not one an invalid
    record, never a guess."""
    for key in ("published", "updated", "created"):
        written = (entry.get(key) or "").strip()
        if written:
            return _ZONE_NAME.sub(lambda m: m[1].upper() if m[1].upper() in RFC822_ZONES else m[1], written)
    return None
