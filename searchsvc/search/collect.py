"""Finding the matches: the one scoring pass that gives the top N, the exact total and the
documents to facet, and the unscored pass for date orders and "did you mean", both timed.

Both run over the postings arrays (vectors.py) when every segment has them and the query has
only parts they answer; otherwise over Whoosh's matchers, with the same matches and scores.
Matches are an ascending array of document numbers; a filter is a bool per document number.

Whoosh facts the matcher path is built around:
- Filters are sets of document numbers (docvalues.py), applied with a FilterCollector; an And
  with a constant score query gave wrong totals on a multi-segment index. When a filter
  allows nothing, Whoosh searches unfiltered (an empty set is falsy): callers answer that
  case without searching.
- `len(results)` re-runs the query; the total comes instead from the one scoring pass,
  which keeps every matching document number.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from whoosh import query as wq
from whoosh.collectors import FilterCollector, TopCollector
from whoosh.matching.wrappers import WrappingMatcher
from whoosh.searching import Searcher

from searchsvc.search import vectors
from searchsvc.search.deadline import Deadline
from searchsvc.search.engine import Engine
from searchsvc.search.phrases import ExactPhrase

Ranked = list[tuple[int, float]]  # (document number, score rounded to 4 places), best first


def rank_and_collect(engine: Engine, searcher: Searcher, query: wq.Query, allowed: np.ndarray | None,
                     limit: int | None, deadline: Deadline) -> tuple[np.ndarray, Ranked]:
    """Every match, and the best `limit` (None: all) by score, ties by document number.
    One scoring pass gives the top N, the total and the documents to facet. Past the
    deadline it stops with SearchTimeout: a worker is never stuck."""
    found = _vectorised(engine, searcher, query, allowed, deadline)
    if found is not None:
        docs, scores = found
        return docs, top_by_score(docs, scores, limit)
    return rank_with_matchers(searcher, query, allowed, limit, deadline)


def rank_with_matchers(searcher: Searcher, query: wq.Query, allowed: np.ndarray | None,
                       limit: int | None, deadline: Deadline) -> tuple[np.ndarray, Ranked]:
    """rank_and_collect by Whoosh's matchers: for any query."""
    inner = _CollectEveryMatch(searcher.doc_count_all() if limit is None else limit, deadline)
    collector = FilterCollector(inner, allow=_as_set(allowed)) if allowed is not None else inner
    searcher.search_with_collector(timed(query, deadline), collector)
    results = collector.results()
    ranked = [(results.docnum(n), round(results.score(n), 4)) for n in range(results.scored_length())]
    return np.asarray(sorted(inner.matched), dtype=np.int64), ranked


def matching(engine: Engine, searcher: Searcher, query: wq.Query, allowed: np.ndarray | None,
             deadline: Deadline) -> np.ndarray:
    """Every live document number `query` matches among `allowed` (None: all), ascending."""
    if isinstance(query, wq.Every):
        if allowed is not None:
            return np.flatnonzero(allowed)
        return np.asarray(sorted(searcher.reader().all_doc_ids()), dtype=np.int64)
    found = _vectorised(engine, searcher, query, allowed, deadline)
    if found is not None:
        return found[0]
    return match_with_matchers(searcher, query, allowed, deadline)


def match_with_matchers(searcher: Searcher, query: wq.Query, allowed: np.ndarray | None,
                        deadline: Deadline) -> np.ndarray:
    """matching by Whoosh's matchers (not for Every: `matching` answers it)."""
    docs = []
    for docnum in _live(searcher, searcher.docs_for_query(timed(query, deadline))):
        deadline.tick()
        docs.append(docnum)
    result = np.unique(np.asarray(docs, dtype=np.int64))
    return result if allowed is None else result[allowed[result]]


def top_by_score(docs: np.ndarray, scores: np.ndarray, limit: int | None) -> Ranked:
    """The best `limit` of `docs` by `scores` (None: all), ties by document number as Whoosh's
    collector orders them: a partial sort, the ties at the cut included before ordering."""
    if limit is not None and limit < len(docs):
        if limit <= 0:
            return []
        cut = np.partition(scores, len(docs) - limit)[len(docs) - limit]
        keep = np.flatnonzero(scores >= cut)
        docs, scores = docs[keep], scores[keep]
    order = np.lexsort((docs, -scores))[:limit]
    return [(int(d), round(float(s), 4)) for d, s in zip(docs[order].tolist(), scores[order].tolist(), strict=True)]


def _vectorised(engine: Engine, searcher: Searcher, query: wq.Query, allowed: np.ndarray | None,
                deadline: Deadline) -> tuple[np.ndarray, np.ndarray] | None:
    """(matches, their scores) from the postings arrays, or None when they cannot answer."""
    arrays = engine.kept("vectors")
    if arrays is None:
        arrays = vectors.open_vectors(searcher) or False  # False: this version has none
        engine.keep("vectors", arrays)
    if arrays is False:
        return None
    try:
        docs, scores = vectors.evaluate(arrays, searcher, query, deadline)
    except vectors.NotVectorised:
        return None
    if allowed is not None:
        keep = allowed[docs]
        docs, scores = docs[keep], scores[keep]
    return docs, scores


def _as_set(allowed: np.ndarray) -> set[int]:
    return set(np.flatnonzero(allowed).tolist())


def _live(searcher: Searcher, docnums: Iterable[int]) -> Iterator[int]:
    reader = searcher.reader()
    if not reader.has_deletions():
        return iter(docnums)
    return (d for d in docnums if not reader.is_deleted(d))


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
        self._deleted: set[int] | None = None

    def set_subsearcher(self, subsearcher: Any, offset: int) -> None:
        super().set_subsearcher(subsearcher, offset)
        segment = subsearcher.reader().segment() if subsearcher.reader().has_deletions() else None
        self._deleted = {offset + d for d in segment.deleted_docs()} if segment is not None else None

    def _collect(self, global_docnum: int, score: float) -> Any:
        self.deadline.tick()
        if self._deleted is not None and global_docnum in self._deleted:
            # An OR with a NOT (`a OR -b`) offers deleted posts: Whoosh's InverseMatcher skips
            # them only while it leads the union.
            return None
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


def timed(query: wq.Query, deadline: Deadline) -> wq.Query:
    """`query` with its expanding words and phrases timed (a copy: the query itself is
    described and highlighted)."""
    if isinstance(query, wq.MultiTerm):
        return _Timed(query, deadline)
    if isinstance(query, ExactPhrase):
        return query.timed(deadline)
    if query.is_leaf():
        return query
    return query.apply(lambda child: timed(child, deadline))
