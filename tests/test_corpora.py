"""The real public corpora in ../shared/corpora ingest completely, with nothing invalid."""

from __future__ import annotations

import gzip
import json

from conftest import CORPORA, PRESIDENTIAL, Searchsvc


def test_all_presidential_documents_ingest(presidential):
    searchsvc, result = presidential
    assert result.exit_code == 0, result.stderr[:2000]
    assert result.stderr == ""
    assert result.stdout == "Read 1 file: 10419 new, 0 updated, 0 unchanged, 0 invalid, 0 skipped files\n"
    info = searchsvc.info()
    assert info["posts"] == 10419
    assert info["date_range"] == {"first": "1789-10-03T00:00:00", "last": "2018-03-19T00:00:00"}


def test_presidential_reingest_is_all_unchanged(presidential):
    searchsvc, _ = presidential
    again = searchsvc("ingest", PRESIDENTIAL)
    assert again.exit_code == 0
    assert again.stdout == "Read 1 file: 0 new, 0 updated, 10419 unchanged, 0 invalid, 0 skipped files\n"


def test_presidential_export_keeps_ids_text_and_extra_keys(presidential):
    searchsvc, _ = presidential
    with gzip.open(PRESIDENTIAL, "rt", encoding="utf-8") as f:
        first = json.loads(f.readline())
    exported = {p["id"]: p for p in searchsvc.export()}
    assert len(exported) == 10419
    post = exported[first["id"]]
    assert (post["title"], post["date"], post["author"], post["url"]) == (
        first["title"], first["date"], first["author"], first["url"])
    assert post["body"] == first["body"].strip()
    extra = {k: v for k, v in first.items() if k not in ("id", "title", "date", "author", "url", "body")}
    assert {k: post[k] for k in extra} == extra


def test_scifact_undated_authorless_records(tmp_path):
    searchsvc = Searchsvc(tmp_path / "index")
    result = searchsvc("ingest", CORPORA / "scifact" / "corpus.jsonl")
    assert result.exit_code == 0, result.stderr[:2000]
    assert result.stdout == "Read 1 file: 5183 new, 0 updated, 0 unchanged, 0 invalid, 0 skipped files\n"
    info = searchsvc.info()
    assert (info["posts"], info["undated"], info["authors"]) == (5183, 5183, {})
    assert info["date_range"] == {"first": None, "last": None}


def test_multilingual_corpora(tmp_path):
    searchsvc = Searchsvc(tmp_path / "index")
    result = searchsvc("ingest", CORPORA / "multilingual")
    assert result.exit_code == 0, result.stderr[:2000]
    assert result.stdout == "Read 3 files: 1648 new, 0 updated, 0 unchanged, 0 invalid, 0 skipped files\n"
    info = searchsvc.info()
    assert info["posts"] == 1648
    assert info["undated"] == 154 - 109
