"""Our exact-phrase checks (the matcher in phrases.py, the position merge in vectors.py) find
exactly what Whoosh's span matching finds, with the same scores."""

from __future__ import annotations

import pytest
from whoosh import query as wq

from searchsvc.index.store import IndexStore
from searchsvc.search.collect import rank_and_collect, rank_with_matchers
from searchsvc.search.deadline import Deadline
from searchsvc.search.engine import Engine
from searchsvc.search.phrases import ExactPhrase
from searchsvc.search.query import parse_query


def _whoosh_phrases(q):
    if isinstance(q, wq.Phrase):
        return wq.Phrase(q.fieldname, q.words, slop=q.slop, boost=q.boost)
    return q if q.is_leaf() else q.apply(_whoosh_phrases)


@pytest.fixture(scope="module")
def engine(presidential):
    searchsvc, _ = presidential
    engine = Engine(IndexStore(searchsvc.index), result_cache_size=0, search_timeout=None)
    yield engine
    engine.close()


@pytest.mark.parametrize("text", [
    '"executive order"', '"united states of america"', '"national emergency"', 'title:"day of prayer"',
    '"armed forces day" OR "flag day"', '"very very"', '"of the of"', '"emergency national"',
    # Proximity (issue 22): Whoosh's SpanNear2 reading of a slop, by our merge of reachable ends.
    '"united states"~3', '"executive order"~2', '"president congress"~8', '"of the of"~3', '"states united"~4',
    'title:"day prayer"~3', '"national emergency"~5 OR "flag day"~2', '"very very"~4',
])
def test_same_matches_and_scores_as_whoosh(engine, text):
    searcher = engine.searcher()
    ours = parse_query(text)
    assert any(isinstance(leaf, ExactPhrase) for leaf in ours.leaves())
    theirs = _whoosh_phrases(ours)
    assert not any(isinstance(leaf, ExactPhrase) for leaf in theirs.leaves())
    matched_a, top_a = rank_with_matchers(searcher, ours, None, 30, Deadline(None))
    matched_b, top_b = rank_with_matchers(searcher, theirs, None, 30, Deadline(None))
    with engine.reading(searcher):
        matched_c, top_c = rank_and_collect(engine, searcher, ours, None, 30, Deadline(None))  # vectorised
    assert matched_a.tolist() == matched_b.tolist() == matched_c.tolist()
    assert top_a == top_b == top_c
    if text in ('"executive order"', '"national emergency"', '"united states"~3', '"president congress"~8'):
        assert len(matched_a) > 100
