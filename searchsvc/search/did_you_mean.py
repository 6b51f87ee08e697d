""""Did you mean": a respelled query offered when a search finds few posts."""

from __future__ import annotations

import numpy as np
from whoosh.searching import Searcher

from searchsvc.errors import BadQuery
from searchsvc.search.collect import matching
from searchsvc.search.deadline import Deadline
from searchsvc.search.engine import Engine
from searchsvc.search.query import parse_query, respell_words
from searchsvc.search.request import SearchRequest
from searchsvc.search.results import Suggestion
from searchsvc.search.spelling import Respeller, spelling_index

SUGGEST_BELOW = 3  # offer "did you mean" when fewer hits than this
# Seconds the whole step may take, the search of the respelled query included.
SUGGEST_SECONDS = 0.5


def suggest(engine: Engine, searcher: Searcher, request: SearchRequest, allowed: np.ndarray | None, total: int,
            deadline: Deadline) -> Suggestion | None:
    """Respell words the index does not know (spelling.py), within SUGGEST_SECONDS and what is
    left of the request's time; offer the result only if it finds more of the posts the filters
    allow (`allowed`, None: all). SearchTimeout when the time ran out first: the caller answers
    without a suggestion and says so."""
    index = spelling_index(searcher.reader())  # built once per index version
    left = deadline.remaining()
    budget = Deadline(SUGGEST_SECONDS if left is None else min(SUGGEST_SECONDS, left))
    corrected = respell_words(request.q, Respeller(index, budget))
    budget.check()
    if corrected == request.q:
        return None
    try:
        query = parse_query(corrected, request.operator)
    except BadQuery:  # respelled words may be longer: past 1,000 characters it is no suggestion
        return None
    found_total = len(matching(engine, searcher, query, allowed, budget))
    return Suggestion(corrected, found_total) if found_total > total else None
