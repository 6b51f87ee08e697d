"""A search, start to end: one SearchRequest in, one SearchResult out (or every match, for an
export). Each step is its own module, called in order, under one Deadline:

    query.parse_query -> filters.allowed_docs -> collect (rank or match) -> facets.count
    -> hits.page_hits -> did_you_mean.suggest -> results.SearchResult
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
from whoosh import query as wq
from whoosh.searching import Searcher

from searchsvc.errors import SearchTimeout
from searchsvc.index.schema import record_from_stored
from searchsvc.records import Record
from searchsvc.search import collect, did_you_mean, docvalues, facets, filters
from searchsvc.search.deadline import Deadline
from searchsvc.search.engine import Engine
from searchsvc.search.hits import page_hits, query_terms
from searchsvc.search.query import check_expansions, describe, parse_query
from searchsvc.search.request import SearchRequest
from searchsvc.search.results import SearchResult

EXPORT_BATCH = 100  # stored posts an export reads per hold of the engine's lock


def search(engine: Engine, request: SearchRequest) -> SearchResult:
    """Run a search, or answer it from the engine's cache for this index version.

    Raises BadQuery for a malformed query, SearchTimeout past the time limit, and the index
    errors of Engine.
    """
    started = time.perf_counter()
    deadline = Deadline(engine.search_timeout)  # one budget for every step below, the wait for the lock too
    with engine.reading(deadline=deadline) as searcher:  # one searcher, used by one thread at a time (see engine.py)
        key = ("search", request)
        result = engine.cached(key)
        if result is None:
            result = _search(engine, searcher, request, deadline)
            engine.cache(key, result)
        commit, _ = engine.commit()  # of the searcher above: reading() holds it
    # The cached result may come from an equal request typed differently ("Dec 2020" vs
    # "2020-12"): links must reproduce this one.
    return replace(result, request=request, took_ms=round((time.perf_counter() - started) * 1000, 1),
                   commit=commit)


def _search(engine: Engine, searcher: Searcher, request: SearchRequest, deadline: Deadline) -> SearchResult:
    query = _query(searcher, request, deadline)
    values = docvalues.doc_values(engine, searcher)
    allowed = filters.allowed_docs(values, request)
    matching, ranked = _ranked(engine, searcher, values, query, allowed, request,
                               request.page * request.per_page, deadline)
    counts, months = facets.count(values, matching)
    terms = query_terms(searcher, query)
    deadline.check()
    hits = page_hits(searcher, terms, ranked, request, deadline)
    suggestion, skipped = None, ()
    if len(matching) < did_you_mean.SUGGEST_BELOW and request.q.strip():
        # The answer is complete without a suggestion: past the deadline, say it was skipped.
        try:
            deadline.check()
            suggestion = did_you_mean.suggest(engine, searcher, request, allowed, len(matching), deadline)
        except SearchTimeout:
            skipped = ("did_you_mean",)
    return SearchResult(
        request=request,
        understood=describe(query),
        total=len(matching),
        hits=hits,
        facets=counts,
        months=months,
        did_you_mean=suggestion,
        skipped=skipped,
    )


def iter_matches(engine: Engine, request: SearchRequest) -> tuple[int, str, Iterator[tuple[Record, float | None]]]:
    """(total, query as understood, every matching post in the request's order): for exports.

    The posts are read in batches, each under the engine's lock, never the whole stream:
    a client reading an export slowly must not hold up searches in its process.
    """
    deadline = Deadline(engine.search_timeout)  # for finding the matches; the stream may take long
    with engine.reading(deadline=deadline) as searcher:
        query = _query(searcher, request, deadline)
        values = docvalues.doc_values(engine, searcher)
        allowed = filters.allowed_docs(values, request)
        matching, ranked = _ranked(engine, searcher, values, query, allowed, request, None, deadline)

    def records() -> Iterator[tuple[Record, float | None]]:
        for start in range(0, len(ranked), EXPORT_BATCH):
            batch = ranked[start:start + EXPORT_BATCH]
            with engine.reading(searcher):  # the searcher that found them, even after a commit
                stored = [searcher.stored_fields(docnum) for docnum, _ in batch]
            for fields, (_, score) in zip(stored, batch, strict=True):
                yield record_from_stored(fields), score

    return len(matching), describe(query), records()


def _query(searcher: Searcher, request: SearchRequest, deadline: Deadline) -> wq.Query:
    if not request.q.strip():
        return wq.Every()
    query = parse_query(request.q, request.operator)
    check_expansions(query, searcher.reader(), deadline)
    return query


def _ranked(engine: Engine, searcher: Searcher, values: docvalues.DocValues, query: wq.Query,
            allowed: np.ndarray | None, request: SearchRequest, limit: int | None,
            deadline: Deadline) -> tuple[np.ndarray, list[tuple[int, float | None]]]:
    """Every matching document number (ascending), and the first `limit` of them (None: all)
    in the request's order with their scores (None when ordered by date)."""
    if allowed is not None and not allowed.any():
        return np.empty(0, dtype=np.int64), []  # Whoosh would search unfiltered on an empty filter
    if request.effective_sort == "relevance" and not isinstance(query, wq.Every):
        matching, ranked = collect.rank_and_collect(engine, searcher, query, allowed, limit, deadline)
        return matching, list(ranked)
    matching = collect.matching(engine, searcher, query, allowed, deadline)
    order = docvalues.in_date_order(values, request.effective_sort, matching, limit)
    return matching, [(docnum, None) for docnum in order]
