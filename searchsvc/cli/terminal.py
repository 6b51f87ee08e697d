"""Search results as plain text for people at a terminal."""

from __future__ import annotations

from collections.abc import Iterator

import click

from searchsvc.search.results import SearchResult
from searchsvc.search.snippets import Highlighted


def plain(highlighted: Highlighted, *, color: bool) -> str:
    """The text, its matches in bold on a terminal, else unmarked."""
    return highlighted.render(lambda part: click.style(part, bold=True) if color else part)


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
        yield f"{n}. {plain(hit.title_highlighted, color=color)}"
        details = [hit.date[:10] if hit.date else "undated", hit.author or "no author", f"id {hit.id}"]
        if hit.score is not None:
            details.append(f"score {hit.score:.2f}")
        yield "   " + " · ".join(details)
        yield "   " + plain(hit.snippet, color=color)
