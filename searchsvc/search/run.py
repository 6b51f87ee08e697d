"""Search: one request in, one SearchResult out, rendered as JSON by the API and the CLI
and as HTML by the web pages.

Whoosh facts this module is built around:
- Filters are sets of document numbers (from per-version arrays), applied with a
  FilterCollector; an And with a constant score query gave wrong totals on a
  multi-segment index.
- When a filter matches nothing, Whoosh searches unfiltered (an empty set is falsy), so
  an empty filter is answered here, without searching.
- `len(results)` re-runs the query; the total and the facets come instead from the one
  scoring pass, which keeps every matching document number.
"""

from __future__ import annotations

import bisect
import itertools
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from markupsafe import Markup
from whoosh import query as wq
from whoosh.collectors import FilterCollector, TopCollector
from whoosh.matching.wrappers import WrappingMatcher
from whoosh.searching import Searcher
from whoosh.util.times import datetime_to_long, long_to_datetime

from searchsvc.dates import period_end
from searchsvc.errors import BadQuery, PostNotFound, SearchTimeout
from searchsvc.index.analysis import text_analyzer
from searchsvc.index.columns import UNDATED, column
from searchsvc.index.schema import DEFAULT_FIELDS, record_from_stored
from searchsvc.records import Record
from searchsvc.search.deadline import Deadline
from searchsvc.search.engine import Engine
from searchsvc.search.phrases import ExactPhrase
from searchsvc.search.query import check_expansions, describe, parse_query, respell_words
from searchsvc.search.request import SearchRequest
from searchsvc.search.snippets import highlight, mark, match_spans, snippet_from_spans
from searchsvc.search.spelling import SUGGEST_SECONDS, Respeller, spelling_index

_ANALYZER = text_analyzer()
SUGGEST_BELOW = 3  # offer "did you mean" when fewer hits than this
EXPORT_BATCH = 100  # stored posts an export reads per hold of the engine's lock


@dataclass(frozen=True)
class Hit:
    """One matching post, with its title and a snippet highlighted (safe HTML)."""

    id: str
    title: str
    date: str | None
    author: str | None
    url: str | None
    score: float | None
    title_html: Markup
    snippet_html: Markup
    matched_terms: tuple[str, ...]

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
    took_ms: float
    # Optional parts left out to answer within the time limit ("did_you_mean").
    skipped: tuple[str, ...] = ()

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
        }


def search(engine: Engine, request: SearchRequest) -> SearchResult:
    """Run a search (or answer it from the engine's cache of results for this index version).

    Raises BadQuery for a malformed query, and the index errors of Engine.
    """
    started = time.perf_counter()
    with engine.reading():  # one searcher, used by one thread at a time (see engine.py)
        result = engine.cached_result(("search", request), lambda: _search(engine, request))
    # The cached result may come from an equal request typed differently ("Dec 2020" vs
    # "2020-12"): links must reproduce this one.
    return replace(result, request=request, took_ms=round((time.perf_counter() - started) * 1000, 1))


def _search(engine: Engine, request: SearchRequest) -> SearchResult:
    started = time.perf_counter()
    deadline = Deadline(engine.search_timeout)  # one budget for every step below
    searcher = engine.searcher()
    query = _query(engine, request, deadline)
    matching, ranked = _ranked(engine, searcher, query, request, request.page * request.per_page, deadline)
    facets, months = _facets(doc_values(engine), matching)
    terms = query_terms(searcher, query) if not isinstance(query, wq.Every) else set()
    deadline.check()
    hits = _hits(searcher, terms, ranked, request, deadline)
    suggestion, skipped = None, ()
    if len(matching) < SUGGEST_BELOW and request.q.strip():
        # The answer is complete without a suggestion: past the deadline, say it was skipped.
        try:
            deadline.check()
            suggestion = _suggest(engine, searcher, request, len(matching), deadline)
        except SearchTimeout:
            skipped = ("did_you_mean",)
    return SearchResult(
        request=request,
        understood=describe(query),
        total=len(matching),
        hits=hits,
        facets=facets,
        months=months,
        did_you_mean=suggestion,
        took_ms=round((time.perf_counter() - started) * 1000, 1),
        skipped=skipped,
    )


def iter_matches(engine: Engine, request: SearchRequest) -> tuple[int, str, Iterator[tuple[Record, float | None]]]:
    """(total, query as understood, every matching post in the request's order): for exports.

    The posts are read in batches, each under the engine's lock, never the whole stream:
    a client reading an export slowly must not hold up searches in its process.
    """
    with engine.reading() as searcher:
        deadline = Deadline(engine.search_timeout)  # for finding the matches; the stream may take long
        query = _query(engine, request, deadline)
        matching, ranked = _ranked(engine, searcher, query, request, None, deadline)

    def records() -> Iterator[tuple[Record, float | None]]:
        for start in range(0, len(ranked), EXPORT_BATCH):
            batch = ranked[start:start + EXPORT_BATCH]
            with engine.reading(searcher):  # the searcher that found them, even after a commit
                stored = [searcher.stored_fields(docnum) for docnum, _ in batch]
            for fields, (_, score) in zip(stored, batch, strict=True):
                yield record_from_stored(fields), score

    return len(matching), describe(query), records()


def get_post(engine: Engine, post_id: str) -> tuple[Record, int]:
    """The stored post and its document number; PostNotFound if there is none."""
    with engine.reading() as searcher:
        docnum = searcher.document_number(id=post_id)
        if docnum is None:
            raise PostNotFound(f"no post with id {post_id!r}")
        return record_from_stored(searcher.stored_fields(docnum)), docnum


def highlighted_post(engine: Engine, record: Record, q: str) -> tuple[Markup, Markup]:
    """The title and the whole body with the words of query `q` marked."""
    deadline = Deadline(engine.search_timeout)
    with engine.reading() as searcher:
        terms: set[str] = set()
        if q.strip():
            query = parse_query(q, engine.parser())
            check_expansions(query, searcher.reader(), deadline)  # `w1*` marked 5 MB of a body
            terms = query_terms(searcher, query)
        deadline.check()
        return highlight(record.title, terms, _ANALYZER), highlight(record.body, terms, _ANALYZER)


def similar_posts(engine: Engine, post_id: str, limit: int = 10) -> list[Hit]:
    """Posts most like this one (Whoosh's key-term "more like this" over title and body)."""
    with engine.reading() as searcher:
        record, docnum = get_post(engine, post_id)
        results = searcher.more_like(docnum, "text", text=record.title + "\n" + record.body, top=limit)
        return [_hit(searcher, h.docnum, round(h.score, 4), set()) for h in results]


@dataclass(frozen=True)
class ArchiveSummary:
    """What the archive holds: shown on an empty search and used for the author filter."""

    posts: int
    first_date: str | None
    last_date: str | None
    authors: tuple[str, ...]


def archive_summary(engine: Engine) -> ArchiveSummary:
    """What the archive holds, from the per-version document values."""
    values = doc_values(engine)
    first = long_to_datetime(values.dates[0]).date().isoformat() if values.dates else None
    last = long_to_datetime(values.dates[-1]).date().isoformat() if values.dates else None
    authors = tuple(sorted(values.docs_by_author, key=str.casefold))
    return ArchiveSummary(len(values.newest_first), first, last, authors)


# Building blocks


def _ranked(engine: Engine, searcher: Searcher, query: wq.Query, request: SearchRequest,
            limit: int | None, deadline: Deadline) -> tuple[set[int], list[tuple[int, float | None]]]:
    """Every matching document number, and the first `limit` of them (None: all) in the
    request's order with their scores (None when ordered by date)."""
    allowed = _filter_docs(engine, searcher, request)
    if allowed is not None and not allowed:
        return set(), []  # Whoosh would search unfiltered on an empty filter
    if request.effective_sort == "relevance" and not isinstance(query, wq.Every):
        top = searcher.doc_count_all() if limit is None else limit
        matching, results = _rank_and_collect(searcher, query, allowed, top, deadline)
        return matching, [(results.docnum(n), round(results.score(n), 4)) for n in range(results.scored_length())]
    matching = _matching(searcher, query, allowed, deadline)
    order = _in_date_order(doc_values(engine), request.effective_sort, matching, limit)
    return matching, [(docnum, None) for docnum in order]


def _query(engine: Engine, request: SearchRequest, deadline: Deadline) -> wq.Query:
    if not request.q.strip():
        return wq.Every()
    query = parse_query(request.q, engine.parser(request.operator))
    check_expansions(query, engine.searcher().reader(), deadline)
    return query


def _filter_docs(engine: Engine, searcher: Searcher, request: SearchRequest) -> set[int] | None:
    """Document numbers the filters allow (None: no filter), from the per-version arrays:
    a bisection over the dates instead of a Whoosh DateRange (150 ms at 10k posts)."""
    if not (request.date_from or request.date_to or request.authors):
        return None
    values = doc_values(engine)
    allowed: set[int] | None = None
    if request.date_from or request.date_to:
        low = datetime_to_long(request.date_from.value) if request.date_from else -1
        high = datetime_to_long(period_end(request.date_to)) if request.date_to else UNDATED - 1
        start = bisect.bisect_left(values.dates, low)
        end = bisect.bisect_right(values.dates, high)
        allowed = set(values.dated_docs[start:end])
    if request.authors:
        by_author = {d for a in request.authors for d in values.docs_by_author.get(a, ())}
        allowed = by_author if allowed is None else allowed & by_author
    return allowed or set()


def _matching(searcher: Searcher, query: wq.Query, allowed: set[int] | None, deadline: Deadline) -> set[int]:
    if isinstance(query, wq.Every):
        docs = allowed if allowed is not None else set(searcher.reader().all_doc_ids())
        return set(docs)
    found = set()
    for docnum in _live(searcher, searcher.docs_for_query(_timed(query, deadline))):
        deadline.tick()
        found.add(docnum)
    return found if allowed is None else found & allowed


def _live(searcher: Searcher, docnums: Iterable[int]) -> Iterator[int]:
    reader = searcher.reader()
    if not reader.has_deletions():
        return iter(docnums)
    return (d for d in docnums if not reader.is_deleted(d))


@dataclass(frozen=True)
class DocValues:
    """Author and month of every document number, read from the columns once per index
    version: facets over thousands of matches are then plain list lookups."""

    authors: list[str | None]
    months: list[str | None]  # "YYYY-MM", None when undated
    dates: list[int]  # the raw dates of dated documents, ascending ...
    dated_docs: list[int]  # ... and their document numbers, in the same order
    docs_by_author: dict[str, list[int]]
    newest_first: list[int]  # every document, newest first, undated last, ties by id
    oldest_first: list[int]  # every document, oldest first, undated last, ties by id


def doc_values(engine: Engine) -> DocValues:
    def compute(searcher: Searcher) -> DocValues:
        reader = searcher.reader()
        total = reader.doc_count_all()
        if reader.doc_count() == 0:
            return DocValues([None] * total, [None] * total, [], [], {}, [], [])
        authors_column = column(reader, "author_key")
        dates_column = column(reader, "date")
        live = set(reader.all_doc_ids())  # deleted documents are in no order or index
        authors = [authors_column[d] or None for d in range(total)]
        raw_dates = [dates_column[d] if d in live else UNDATED for d in range(total)]
        months = [None if raw == UNDATED else _month(long_to_datetime(raw)) for raw in raw_dates]
        dated = sorted((raw, d) for d, raw in enumerate(raw_dates) if raw != UNDATED)
        by_author: dict[str, list[int]] = {}
        for d, author in enumerate(authors):
            if author and d in live:
                by_author.setdefault(author, []).append(d)
        ids = column(reader, "id")
        id_of = [ids[d] for d in range(total)]
        undated = sorted((d for d in live if raw_dates[d] == UNDATED), key=id_of.__getitem__)
        newest = sorted((d for _, d in dated), key=lambda d: (-raw_dates[d], id_of[d])) + undated
        oldest = sorted((d for _, d in dated), key=lambda d: (raw_dates[d], id_of[d])) + undated
        return DocValues(authors, months, [raw for raw, _ in dated], [d for _, d in dated], by_author,
                         newest, oldest)

    return engine.memo("doc_values", compute)


def _month(value: datetime) -> str:
    """"0999-06": strftime("%Y") does not pad years before 1000 on Linux ("999-06")."""
    return f"{value.year:04d}-{value.month:02d}"


def _facets(values: DocValues, matching: set[int]) -> tuple[dict[str, list[FacetValue]], dict[str, int]]:
    """Counts by author and by year over all matches (posts without one count under null),
    and by month for the timeline."""
    if not matching:
        return {"author": [], "year": []}, {}
    authors: Counter[str | None] = Counter(values.authors[d] for d in matching)
    all_months: Counter[str | None] = Counter(values.months[d] for d in matching)
    undated = all_months.pop(None, 0)
    months: Counter[str] = Counter(all_months)  # type: ignore[arg-type]
    years: Counter[int | None] = Counter()
    for month, n in months.items():
        years[int(month[:4])] += n
    if undated:
        years[None] = undated
    by_author = sorted(authors.items(), key=lambda kv: (-kv[1], kv[0] is None, kv[0] or ""))
    by_year = sorted(years.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))
    facets = {
        "author": [FacetValue(a, n) for a, n in by_author],
        "year": [FacetValue(y, n) for y, n in by_year],
    }
    return facets, dict(sorted(months.items()))


class _CollectEveryMatch(TopCollector):
    """The top N by score, and every matching document number, in one pass.

    Nothing prunes this pass, so the total and the facets are exact: block-quality skipping
    is off, and so is Whoosh's matcher replacement (`replace=0`): once the page is full,
    `matcher.replace(minscore)` turns an OR of fields into something narrower, and totals then
    depended on the page size (government: 386 at 1 a page, 483 at 10, 4,475 in truth).
    Past the deadline it stops the search with SearchTimeout (Whoosh's
    TimeLimitCollector would bypass the date and author filter).
    """

    def __init__(self, limit: int, deadline: Deadline):
        super().__init__(limit=limit, usequality=False, replace=0)
        self.matched: list[int] = []
        self.deadline = deadline

    def _collect(self, global_docnum: int, score: float) -> Any:
        self.deadline.tick()
        self.matched.append(global_docnum)
        return super()._collect(global_docnum, score)


class _TimedMatcher(WrappingMatcher):
    """A matcher that looks at the deadline as it moves."""

    def __init__(self, child: Any, deadline: Deadline, boost: float = 1.0):
        super().__init__(child, boost)
        self.deadline = deadline

    def _replacement(self, newchild: Any) -> _TimedMatcher:
        return _TimedMatcher(newchild, self.deadline, self.boost)

    def copy(self) -> _TimedMatcher:
        return _TimedMatcher(self.child.copy(), self.deadline, self.boost)

    def next(self) -> Any:
        self.deadline.tick()
        return self.child.next()

    def skip_to(self, id: int) -> Any:
        self.deadline.tick()
        return self.child.skip_to(id)


class _Timed(wq.WrappingQuery):
    """A prefix or fuzzy word whose matcher looks at the deadline. An AND of such words is
    worked out while Whoosh builds the matchers, before any document reaches the collector:
    32 fuzzy words ran 6.6 s past a 5 s limit that only the collector looked at."""

    def __init__(self, child: wq.Query, deadline: Deadline):
        super().__init__(child)
        self.deadline = deadline

    def _rewrap(self, child: wq.Query) -> _Timed:
        return _Timed(child, self.deadline)

    def matcher(self, searcher: Any, context: Any = None) -> Any:
        return _TimedMatcher(self.child.matcher(searcher, context), self.deadline)


def _timed(query: wq.Query, deadline: Deadline) -> wq.Query:
    """`query` with its expanding words and phrases timed (a copy: the query itself is
    described and highlighted)."""
    if isinstance(query, wq.MultiTerm):
        return _Timed(query, deadline)
    if isinstance(query, ExactPhrase):
        return query.timed(deadline)
    if query.is_leaf():
        return query
    return query.apply(lambda child: _timed(child, deadline))


def _rank_and_collect(searcher: Searcher, query: wq.Query, allowed: set[int] | None,
                      limit: int, deadline: Deadline) -> tuple[set[int], Any]:
    """Score once: the scoring pass also yields the total and the documents to facet,
    instead of running the query a second time (phrases cost the most twice).
    Past the deadline the search stops with SearchTimeout: a worker is never stuck."""
    inner = _CollectEveryMatch(limit, deadline)
    collector = FilterCollector(inner, allow=allowed) if allowed is not None else inner
    searcher.search_with_collector(_timed(query, deadline), collector)
    return set(inner.matched), collector.results()


def _in_date_order(values: DocValues, sort: str, matching: set[int], limit: int | None) -> list[int]:
    """The first `limit` matches, newest or oldest first, undated last, ties by id: from the
    per-version orders, instead of a Whoosh sort that reads a column for every match."""
    order = values.newest_first if sort == "newest" else values.oldest_first
    return list(itertools.islice((d for d in order if d in matching), limit))


def _hits(searcher: Searcher, terms: set[str], ranked: list[tuple[int, float | None]],
          request: SearchRequest, deadline: Deadline) -> list[Hit]:
    """Hits for this page of `ranked` (docnum, score) pairs; `terms` are the query's index
    terms. Whoosh records matched terms only for score-sorted searches; the words the
    highlighter finds in the title and body are the matched terms in every order."""
    start = (request.page - 1) * request.per_page
    hits = []
    for docnum, score in ranked[start:start + request.per_page]:
        deadline.check()  # a hundred long posts to highlight is work too
        hits.append(_hit(searcher, docnum, score, terms))
    return hits


def _hit(searcher: Searcher, docnum: int, score: float | None, terms: set[str]) -> Hit:
    stored = searcher.stored_fields(docnum)
    title_spans = match_spans(stored["title"], terms, _ANALYZER)
    body_spans = match_spans(stored["body"], terms, _ANALYZER)
    return Hit(
        id=stored["id"],
        title=stored["title"],
        date=stored.get("date_text"),
        author=stored.get("author"),
        url=stored.get("url"),
        score=score,
        title_html=mark(stored["title"], title_spans),
        snippet_html=snippet_from_spans(stored["body"], body_spans),
        matched_terms=tuple(sorted({term for _, _, term in title_spans + body_spans})),
    )


def query_terms(searcher: Searcher, query: wq.Query) -> set[str]:
    """The index terms of the title and body fields that `query` can match, prefixes
    and fuzzy terms expanded (what highlighting looks for)."""
    terms = query.existing_terms(searcher.reader(), phrases=True, expand=True)
    return {t.decode("utf-8") if isinstance(t, bytes) else t for f, t in terms if f in DEFAULT_FIELDS}


def _suggest(engine: Engine, searcher: Searcher, request: SearchRequest, total: int,
             deadline: Deadline) -> Suggestion | None:
    """Respell words the index does not know (suggest.py), within SUGGEST_SECONDS and what is
    left of the request's time; offer the result only if it finds more. SearchTimeout when the
    time ran out first: the caller answers without a suggestion and says so."""
    index = spelling_index(searcher.reader())  # built once per index version
    left = deadline.remaining()
    budget = Deadline(SUGGEST_SECONDS if left is None else min(SUGGEST_SECONDS, left))
    corrected = respell_words(request.q, Respeller(index, budget))
    budget.check()
    if corrected == request.q:
        return None
    try:
        query = parse_query(corrected, engine.parser(request.operator))
    except BadQuery:  # respelled words may be longer: past 1,000 characters it is no suggestion
        return None
    found_total = len(_matching(searcher, query, _filter_docs(engine, searcher, request), budget))
    return Suggestion(corrected, found_total) if found_total > total else None
