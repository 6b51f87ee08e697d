"""Review of issue 13 (postings as arrays, vectorised search): cases found wrong."""

from __future__ import annotations

import json

import pytest


def _ingest(searchsvc, tmp_path, name, posts):
    path = tmp_path / name
    path.write_text("".join(json.dumps(p) + "\n" for p in posts), encoding="utf-8")
    result = searchsvc("ingest", path)
    assert result.exit_code == 0, result.output


def _search(searchsvc, *args):
    result = searchsvc("search", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_field_query_over_a_segment_where_no_post_has_the_field(searchsvc, tmp_path):
    """A segment whose posts have no author has no `author` arrays: an author: query crashed
    with KeyError ('unexpected KeyError: author', exit 1 / HTTP 500)."""
    _ingest(searchsvc, tmp_path, "a.jsonl",
            [{"id": "a1", "title": "Hello", "body": "alpha beta", "author": "Ann Smith"}])
    _ingest(searchsvc, tmp_path, "b.jsonl", [{"id": "b1", "title": "Other", "body": "alpha delta"}])
    for query in ("author:smith", 'author:"ann smith"', "author:smith alpha", "author:smith OR delta"):
        found = _search(searchsvc, query)
        assert "a1" in [hit["id"] for hit in found["hits"]], query


def test_search_an_index_of_no_segments(searchsvc, tmp_path):
    """An ingest that adds nothing (an empty file, or only invalid records) creates an index
    of no segments: every search crashed with "'NoneType' object has no attribute 'codec'"
    (Whoosh's EmptyReader has no segment)."""
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    assert searchsvc("ingest", empty).exit_code == 0
    for query in ("anything", "*", "NOT x", '"a b"', "ab*", "abc~", "author:x"):
        assert _search(searchsvc, query)["total"] == 0, query


def test_highlighting_a_long_body_looks_at_the_deadline(searchsvc, tmp_path):
    """page_hits looked at the deadline only between hits: one body of megabytes was
    highlighted whole past it (`ka* OR lo* OR mi*` over a 6 MB post: 1.9 s for a 0.3 s limit).
    The time runs out after the page starts: highlighting the post must notice."""
    from searchsvc.errors import SearchTimeout
    from searchsvc.index.store import IndexStore
    from searchsvc.search.deadline import Deadline
    from searchsvc.search.engine import Engine
    from searchsvc.search.hits import page_hits
    from searchsvc.search.request import request_from_params

    class RunsOutAfterFirstCheck(Deadline):
        def __init__(self):
            super().__init__(None)
            self.checks = 0

        def check(self):
            self.checks += 1
            if self.checks > 1:
                raise SearchTimeout("out of time")

    _ingest(searchsvc, tmp_path, "long.jsonl", [{"id": "long", "title": "Long", "body": "spam eggs " * 20000}])
    engine = Engine(IndexStore(searchsvc.index), result_cache_size=0, search_timeout=None)
    with engine.reading() as searcher:
        with pytest.raises(SearchTimeout):
            page_hits(searcher, {"en": {"spam"}}, [(0, 1.0)], request_from_params({"q": "spam"}),
                      RunsOutAfterFirstCheck())
    engine.close()


def test_identical_posts_score_the_same_for_a_prefix_whatever_their_segment(searchsvc, tmp_path):
    filler = [{"id": f"f{i}", "title": "Filler", "body": f"plain words number {i}"} for i in range(300)]
    _ingest(searchsvc, tmp_path, "a.jsonl", [{"id": "a", "title": "Same", "body": "presa presa text"}, *filler])
    _ingest(searchsvc, tmp_path, "b.jsonl", [{"id": "b", "title": "Same", "body": "presa presa text"},
                                             {"id": "c", "title": "Other", "body": "presb"},
                                             {"id": "d", "title": "Other", "body": "presc"}])
    scores = {hit["id"]: hit["score"] for hit in _search(searchsvc, "pres*")["hits"]}
    assert scores["a"] == scores["b"], scores
