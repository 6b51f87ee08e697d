"""What a search returns: one SearchResult, rendered as JSON by the API and the CLI, as HTML by
the pages and as text in a terminal. Titles and snippets are `Highlighted` (plain text and
spans); each edge renders them itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from searchsvc.search.request import SearchRequest
from searchsvc.search.snippets import Highlighted


@dataclass(frozen=True)
class Hit:
    """One matching post, with its title and a snippet of its body highlighted."""

    id: str
    title: str
    date: str | None
    author: str | None
    url: str | None
    score: float | None
    title_highlighted: Highlighted
    snippet: Highlighted
    matched_terms: tuple[str, ...]

    @property
    def title_html(self) -> Markup:
        return self.title_highlighted.html()

    @property
    def snippet_html(self) -> Markup:
        return self.snippet.html()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "date": self.date,
            "author": self.author,
            "url": self.url,
            "score": self.score,
            "title_highlighted": str(self.title_html),
            "snippet": str(self.snippet_html),
            "matched_terms": list(self.matched_terms),
        }


@dataclass(frozen=True)
class FacetValue:
    value: Any
    count: int


@dataclass(frozen=True)
class Suggestion:
    """A respelled query that finds more posts."""

    q: str
    total: int


@dataclass(frozen=True)
class SearchResult:
    """Everything one search returns."""

    request: SearchRequest
    understood: str
    total: int
    hits: list[Hit]
    facets: dict[str, list[FacetValue]]
    months: dict[str, int]  # "YYYY-MM" -> matches: the timeline's data (not in the JSON)
    did_you_mean: Suggestion | None
    # Optional parts left out to answer within the time limit ("did_you_mean").
    skipped: tuple[str, ...] = ()
    took_ms: float = 0.0  # set by run.search for each answer, cached or not
    commit: str | None = None  # the index commit that answered (Engine.commit), set by run.search

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.request.per_page))

    def to_json(self) -> dict[str, Any]:
        return {
            "query": {**self.request.to_json(), "understood": self.understood},
            "total": self.total,
            "page": self.request.page,
            "per_page": self.request.per_page,
            "pages": self.pages,
            "hits": [hit.to_json() for hit in self.hits],
            "facets": {name: [{"value": f.value, "count": f.count} for f in values]
                       for name, values in self.facets.items()},
            "did_you_mean": ({"q": self.did_you_mean.q, "total": self.did_you_mean.total}
                             if self.did_you_mean else None),
            "skipped": list(self.skipped),
            "took_ms": self.took_ms,
            "commit": self.commit,
        }
