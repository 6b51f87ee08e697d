"""The blog listing format of the seed: posts as a scraped listing page shows them.

    Title of the post
    Sa, 12/29/2020 - 13:24 -- Kanat
    First paragraph of the body ...

The line above each date line is the title; the body runs to the next post's title.
Everything before the first title and the page chrome (site heading, "Subscribe to ...",
"Read more", pager links) is not part of any post.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# A listing page is read whole and split into lines, which take up to 50 times their text when
# short (a str object each): so a bound of its own. The seed's page is 2 KB; a blog's whole
# archive of teasers, scraped into one file, is a few MB.
MAX_LISTING_BYTES = 5_000_000

# "Sa, 12/29/2020 - 13:24 -- Kanat": the day's abbreviation may be Turkish ("Per", "Çar").
DATE_LINE = re.compile(
    r"^\s*(?:[^\W\d_]{1,12}\.?,\s*)?"
    r"(?P<date>\d{1,2}/\d{1,2}/\d{4}(?:\s*-\s*\d{1,2}:\d{2})?)"
    r"\s*--\s*(?P<author>\S.*?)\s*$"
)
CHROME = re.compile(
    r"^\s*(?:Subscribe to .*"
    r"|Read more(?: about .*)?"
    r"|(?:Log in|Login) or register to post comments"
    r"|Add new comment"
    r"|(?:« first|‹ previous|next ›|last »|\d{1,4})(?:\s+(?:« first|‹ previous|next ›|last »|\d{1,4}))*"
    r")\s*$"
)


@dataclass(frozen=True)
class ListingPost:
    """A post found in a listing: the raw record and the line its title is on."""

    line: int
    data: dict[str, Any]


@dataclass(frozen=True)
class ListingProblem:
    """A date line with no title above it."""

    line: int
    message: str


def parse_listing(text: str) -> Iterator[ListingPost | ListingProblem]:
    """Split a listing page into raw post records (validated later, like any other)."""
    lines = [line.rstrip() for line in text.splitlines()]
    date_lines = [i for i, line in enumerate(lines) if DATE_LINE.match(line)]
    titles: dict[int, int | None] = {}
    for i in date_lines:
        above = _previous_content(lines, i)
        titles[i] = above if above is not None and above not in date_lines else None

    for n, i in enumerate(date_lines):
        title_at = titles[i]
        if title_at is None:
            yield ListingProblem(i + 1, "date line without a title above it")
            continue
        if n + 1 < len(date_lines):
            following = date_lines[n + 1]
            end = titles[following] if titles[following] is not None else following
        else:
            end = len(lines)
        match = DATE_LINE.match(lines[i])
        assert match is not None
        yield ListingPost(
            title_at + 1,
            {
                "title": lines[title_at].strip(),
                "date": match["date"],
                "author": match["author"],
                "body": _body(lines[i + 1 : end]),
            },
        )


def _previous_content(lines: list[str], i: int) -> int | None:
    for j in range(i - 1, -1, -1):
        if lines[j].strip():
            return j
    return None


def _body(lines: list[str]) -> str:
    """Paragraphs separated by one blank line, page chrome dropped."""
    paragraphs: list[list[str]] = [[]]
    for line in lines:
        if not line.strip():
            if paragraphs[-1]:
                paragraphs.append([])
        elif not CHROME.match(line):
            paragraphs[-1].append(line.strip())
    return "\n\n".join("\n".join(p) for p in paragraphs if p)


def is_text_of(listed: str, text: str) -> bool:
    """Whether a listing's body is the whole of `text` (a Markdown post's text as its page
    shows it), spacing aside: the same post, of which the listing knows no Markdown."""
    return " ".join(listed.split()) == " ".join(text.split())


# How an excerpt ends: "...", "…", WordPress's "[…]" and "[&hellip;]", "(...)", then maybe a
# "Continue reading" or "Read more" link's words.
_CUT_SHORT = re.compile(r"(?:(?:\.\.\.|…|&hellip;)[\])]?|\[(?:\.\.\.|…|&hellip;)\])\s*"
                        r"(?:(?:continue reading|read more|read the rest|more)\b[^\n]{0,80})?\s*$"
                        r"|(?:continue reading|read more)\b[^\n]{0,80}$", re.IGNORECASE)


def looks_cut_short(text: str) -> bool:
    """Whether a text ends the way excerpts do (an ellipsis, "Continue reading →"): the start of
    a post, not all of it."""
    return _CUT_SHORT.search(text[-200:]) is not None
