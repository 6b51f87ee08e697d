"""Finding the matches: the one scoring pass that gives the top N, the exact total and the
documents to facet, and the unscored pass for date orders and "did you mean", both timed.

Whoosh facts this module is built around:
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

from whoosh import query as wq
from whoosh.collectors import FilterCollector, TopCollector
from whoosh.matching.wrappers import WrappingMatcher
from whoosh.searching import Searcher

from searchsvc.search.deadline import Deadline
from searchsvc.search.phrases import ExactPhrase


def rank_and_collect(searcher: Searcher, query: wq.Query, allowed: set[int] | None,
                     limit: int, deadline: Deadline) -> tuple[set[int], Any]:
    """Score once: the scoring pass also yields the total and the documents to facet,
    instead of running the query a second time (phrases cost the most twice).
    Past the deadline the search stops with SearchTimeout: a worker is never stuck."""
    inner = _CollectEveryMatch(limit, deadline)
    collector = FilterCollector(inner, allow=allowed) if allowed is not None else inner
    searcher.search_with_collector(timed(query, deadline), collector)
    return set(inner.matched), collector.results()


def matching(searcher: Searcher, query: wq.Query, allowed: set[int] | None, deadline: Deadline) -> set[int]:
    """Every live document number `query` matches among `allowed` (None: all), unscored."""
    if isinstance(query, wq.Every):
        docs = allowed if allowed is not None else set(searcher.reader().all_doc_ids())
        return set(docs)
    found = set()
    for docnum in _live(searcher, searcher.docs_for_query(timed(query, deadline))):
        deadline.tick()
        found.add(docnum)
    return found if allowed is None else found & allowed


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
