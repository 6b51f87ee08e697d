"""Search results as plain text for people at a terminal."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import click

from searchsvc.search.run import SearchResult

_MARK = re.compile(r"<mark>(.*?)</mark>", re.S)


def plain(fragment: str, *, color: bool) -> str:
    """An HTML fragment of ours as text: marks in bold on a terminal, else left unmarked."""
    text = _MARK.sub(lambda m: click.style(m.group(1), bold=True) if color else m.group(1), fragment)
    return html.unescape(text)


def format_result(result: SearchResult, *, color: bool = False) -> Iterator[str]:
    """The lines `searchsvc search` prints."""
    request = result.request
    what = f'"{request.q}" (understood as: {result.understood})' if request.q.strip() else "all posts"
    noun = "post matches" if result.total == 1 else "posts match"
    yield (f"{result.total} {noun} {what}, page {request.page} of {result.pages}, "
           f"sorted by {request.effective_sort}, {result.took_ms} ms")
    if result.did_you_mean:
        found = result.did_you_mean.total
        yield f"Did you mean: {result.did_you_mean.q} ({found} {'post' if found == 1 else 'posts'})?"
    for n, hit in enumerate(result.hits, start=(request.page - 1) * request.per_page + 1):
        yield ""
        yield f"{n}. {plain(str(hit.title_html), color=color)}"
        details = [hit.date[:10] if hit.date else "undated", hit.author or "no author", f"id {hit.id}"]
        if hit.score is not None:
            details.append(f"score {hit.score:.2f}")
        yield "   " + " · ".join(details)
        yield "   " + plain(str(hit.snippet_html), color=color)
