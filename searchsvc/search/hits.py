"""A page of hits: each matching post's stored fields, its title highlighted and a snippet cut
from its body around the query's words."""

from __future__ import annotations

from whoosh import query as wq
from whoosh.searching import Searcher

from searchsvc.index.analysis import text_analyzer
from searchsvc.index.schema import DEFAULT_FIELDS, stored_body_text
from searchsvc.search.deadline import Deadline
from searchsvc.search.request import SearchRequest
from searchsvc.search.results import Hit
from searchsvc.search.snippets import highlight, match_spans, snippet

ANALYZER = text_analyzer()  # the index's analysis: a word is marked when its term matched


def query_terms(searcher: Searcher, query: wq.Query) -> set[str]:
    """The index terms of the title and body fields that `query` can match, prefixes
    and fuzzy terms expanded (what highlighting looks for)."""
    if isinstance(query, wq.Every):
        return set()
    terms = query.existing_terms(searcher.reader(), phrases=True, expand=True)
    return {t.decode("utf-8") if isinstance(t, bytes) else t for f, t in terms if f in DEFAULT_FIELDS}


def page_hits(searcher: Searcher, terms: set[str], ranked: list[tuple[int, float | None]],
              request: SearchRequest, deadline: Deadline) -> list[Hit]:
    """Hits for this page of `ranked` (docnum, score) pairs; `terms` are the query's index
    terms. Whoosh records matched terms only for score-sorted searches; the words the
    highlighter finds in the title and body are the matched terms in every order."""
    start = (request.page - 1) * request.per_page
    hits = []
    for docnum, score in ranked[start:start + request.per_page]:
        deadline.check()  # a hundred long posts to highlight is work too
        hits.append(make_hit(searcher, docnum, score, terms, deadline))
    return hits


def make_hit(searcher: Searcher, docnum: int, score: float | None, terms: set[str],
             deadline: Deadline | None = None) -> Hit:
    """A hit with its title highlighted and its snippet; SearchTimeout past `deadline` (one
    body of megabytes took seconds to highlight, past a request's limit)."""
    deadline = deadline or Deadline(None)
    stored = searcher.stored_fields(docnum)
    title_spans = match_spans(stored["title"], terms, ANALYZER, deadline)
    body = stored_body_text(stored)  # a Markdown post's words, not its markup
    body_spans = match_spans(body, terms, ANALYZER, deadline)
    return Hit(
        id=stored["id"],
        title=stored["title"],
        date=stored.get("date_text"),
        author=stored.get("author"),
        url=stored.get("url"),
        score=score,
        title_highlighted=highlight(stored["title"], title_spans),
        snippet=snippet(body, body_spans, deadline=deadline),
        matched_terms=tuple(sorted({term for _, _, term in title_spans + body_spans})),
    )
