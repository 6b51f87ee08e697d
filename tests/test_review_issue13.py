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
    _ingest(searchsvc, tmp_path, "a.jsonl", [{"id": "a1", "title": "Hello", "body": "alpha beta", "author": "Ann Smith"}])
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
