"""The documented upgrade path from a genuine schema-2 index (with the `newest` and `year`
fields, which schema 3 dropped): the search commands, `info`, `serve` and a plain `ingest`
refuse it with the rebuild message, `export` still reads every post, and `ingest --rebuild`
of that export replaces it with a current index holding the same posts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from whoosh import columns, fields
from whoosh.filedb.filestore import FileStorage
from whoosh.index import FileIndex
from whoosh.util.times import datetime_to_long

from searchsvc.index import seam
from searchsvc.index.analysis import text_analyzer, word_analyzer
from searchsvc.index.fasttext import FastText
from searchsvc.index.schema import SCHEMA_VERSION, build_schema
from searchsvc.index.store import MARKER, IndexStore, Marker
from searchsvc.records import Record, record_from_mapping

# Plainly synthetic posts by fictional authors, each already in the exact form `export`
# writes (known keys in order, then extras), so the export must equal them key for key.
SOURCES: list[dict[str, Any]] = [
    {"id": "lh-log", "title": "Lighthouse keeper's log", "date": "2018-03-04", "author": "Mira Inventa",
     "url": "https://example.org/posts/lh-log", "body": "The lighthouse lamp was cleaned at dusk. Fog over the bay."},
    {"id": "orchard", "title": "Orchard diary", "date": "2019-04-01", "author": "Tomas Ficticio",
     "url": "https://example.org/posts/orchard", "body": "Apple blossoms early this spring.",
     "source": "synthetic"},
    {"id": "lh-storm", "title": "Storm at the cape", "date": "2019-11-20T18:45:00", "author": "Mira Inventa",
     "url": None, "body": "Waves reached the lighthouse steps; the keeper logged the storm.",
     "tags": ["weather", "cape"], "rating": 4},
    {"id": "göl", "title": "Göl kıyısı notları", "date": "2020-06-15", "author": "Bora Kurgusal",
     "url": None, "body": "Sabah göl kıyısında yürüdük; İstanbul'dan uzakta."},
    {"id": "harbour", "title": "Harbour timetable", "date": "2021-01-01T00:00:00Z", "author": "Tomas Ficticio",
     "url": None, "body": "Ferries leave the harbour every hour."},
    {"id": "undated-note", "title": "A note without a date", "date": None, "author": None, "url": None,
     "body": "Found in a drawer: a sketch of a lighthouse."},
    {"id": "undated-postcard", "title": "Undated postcard", "date": None, "author": "Bora Kurgusal",
     "url": None, "body": "Greetings from the coast."},
]  # oldest first, undated last, ties by id: the order `export` writes

OLD_CREATED = "2023-05-06T07:08:09Z"


# Schema 2, exactly as searchsvc/index/schema.py had it before the bump.


def schema_v2() -> fields.Schema:
    analyzer = text_analyzer()
    return fields.Schema(
        id=fields.ID(stored=True, unique=True, sortable=True),
        title=FastText(stored=True, analyzer=analyzer, multitoken_query="phrase"),
        text=FastText(analyzer=analyzer, multitoken_query="phrase"),
        body=fields.STORED(),
        spell=FastText(analyzer=word_analyzer(), phrase=False),
        author=FastText(stored=True, analyzer=word_analyzer()),
        author_key=fields.ID(sortable=True),
        date=fields.DATETIME(stored=True, sortable=True),
        newest=fields.NUMERIC(bits=64, signed=True, sortable=True),
        year=fields.NUMERIC(sortable=True),
        date_text=fields.STORED(),
        url=fields.STORED(),
        extra=fields.STORED(),
        fingerprint=fields.COLUMN(columns.VarBytesColumn()),
    )


UNDATED_NEWEST_V2 = 2**63 - 1


def document_v2(record: Record) -> dict[str, Any]:
    words = record.title + "\n" + record.body
    doc: dict[str, Any] = {
        "id": record.id,
        "title": record.title,
        "text": words,
        "body": record.body,
        "spell": words,
        "fingerprint": record.fingerprint,
        "newest": UNDATED_NEWEST_V2,
    }
    if record.author is not None:
        doc["author"] = record.author
        doc["author_key"] = record.author
    if record.date is not None:
        doc["date"] = record.date.value
        doc["date_text"] = record.date.isoformat()
        doc["newest"] = -datetime_to_long(record.date.value)
        doc["year"] = record.date.value.year
    if record.url is not None:
        doc["url"] = record.url
    if record.extra:
        doc["extra"] = json.dumps(record.extra, ensure_ascii=False)
    return doc


def build_v2_index(index_dir: Path) -> list[Record]:
    """A schema-2 index of SOURCES in generation g000001, written with Whoosh's writer."""
    records = [record_from_mapping(source) for source in SOURCES]
    generation = index_dir / "g000001"
    generation.mkdir(parents=True)
    with seam.whooshs_own_pickles():  # Whoosh's own writer reads back the table of contents it wrote
        ix = FileStorage(str(generation)).create_index(schema_v2())
        with ix.writer() as writer:
            for record in records:
                writer.add_document(**document_v2(record))
    marker = Marker(schema_version=2, generation="g000001", previous=None, created=OLD_CREATED)
    with open(index_dir / MARKER, "w", encoding="utf-8") as f:
        json.dump(marker.to_json(), f, indent=2)
    return records


def on_disk_columns(index_dir: Path, generation: str, *names: str) -> dict[str, bool]:
    """Whether any segment of `generation` has a column file for each name (whatever the schema says)."""
    with seam.whooshs_own_pickles():  # the test's own index, as Whoosh reads it
        ix = FileIndex(FileStorage(str(index_dir / generation)), schema=build_schema())
        reader = ix.reader()
    with reader:
        leaves = [leaf for leaf, _ in reader.leaf_readers()]
        return {name: any(leaf._perdoc.has_column(name) for leaf in leaves) for name in names}


def snapshot(index_dir: Path) -> dict[str, bytes]:
    """Every file of the index directory but the lock."""
    return {str(p.relative_to(index_dir)): p.read_bytes()
            for p in sorted(index_dir.rglob("*")) if p.is_file() and p.name != ".lock"}


def mismatch(index_dir: Path) -> str:
    return (
        f"Error: the index at {index_dir} was built with schema version 2, "
        f"this searchsvc uses version {SCHEMA_VERSION}: "
        "rebuild it with `searchsvc ingest --rebuild PATH...` (or `searchsvc export` first to keep its posts)\n"
    )


def search_ids(searchsvc, *args: str) -> tuple[int, list[str]]:
    result = searchsvc("search", *args, "--per-page", "100", "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    return found["total"], [hit["id"] for hit in found["hits"]]


@pytest.fixture
def v2_index(index_dir: Path) -> Path:
    build_v2_index(index_dir)
    return index_dir


def test_the_fixture_is_a_genuine_schema_2_index(v2_index):
    """The old fields were written, with schema 2's values, under a schema-2 marker."""
    assert json.loads((v2_index / MARKER).read_text()) == {
        "format": "searchsvc-index", "schema_version": 2, "generation": "g000001", "previous": None,
        "created": OLD_CREATED}
    with seam.whooshs_own_pickles():
        ix = FileIndex(FileStorage(str(v2_index / "g000001")))  # the schema pickled by the writer
        reader, schema = ix.reader(), ix.schema
    assert {"newest", "year"} <= set(schema.names())
    with reader:
        ids, newest, year = (reader.column_reader(name) for name in ("id", "newest", "year"))
        values = {ids[d]: (newest[d], year[d]) for d in reader.all_doc_ids()}
    assert values["lh-storm"] == (-datetime_to_long(record_from_mapping(SOURCES[2]).date.value), 2019)
    assert values["undated-note"][0] == UNDATED_NEWEST_V2


def test_old_index_is_refused_by_search_info_ingest_and_serve(searchsvc, v2_index, write, monkeypatch):
    before = snapshot(v2_index)
    for args in (("search", "lighthouse"), ("search",), ("info",), ("info", "--json")):
        result = searchsvc(*args)
        assert (result.exit_code, result.stdout, result.stderr) == (1, "", mismatch(v2_index)), args

    # A plain ingest would mix schema-3 documents into a schema-2 index: it writes nothing.
    new = write("new.jsonl", json.dumps({"id": "new", "title": "New post", "body": "Fresh text."}) + "\n")
    result = searchsvc("ingest", new)
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", mismatch(v2_index))

    # `serve` checks the index before it starts any worker (and never starts one here).
    def never(*args, **kwargs):
        raise AssertionError("serve started on a schema-2 index")

    monkeypatch.setattr("searchsvc.web.server.serve", never)
    result = searchsvc("serve", "--port", "1")
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", mismatch(v2_index))

    assert snapshot(v2_index) == before


def test_export_then_rebuild_upgrades_to_the_current_schema(searchsvc, v2_index, tmp_path):
    # Export reads the old index: every post, field by field as it was written.
    exported = searchsvc.export()
    assert [post["id"] for post in exported] == [source["id"] for source in SOURCES]
    for post, source in zip(exported, SOURCES, strict=True):
        assert list(post) == list(source), source["id"]
        for key, value in source.items():
            assert post[key] == value, (source["id"], key)

    path = tmp_path / "export.jsonl"
    result = searchsvc("export", "--output", path)
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == f"Exported {len(SOURCES)} posts to {path}\n"
    assert [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] == SOURCES

    # The rebuild replaces the schema-2 index in place; its posts count as new.
    result = searchsvc("ingest", "--rebuild", path)
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == (
        f"Rebuilt index from 1 file: {len(SOURCES)} new, 0 updated, 0 unchanged, 0 removed, 0 invalid, "
        "0 skipped files\n")
    marker = json.loads((v2_index / MARKER).read_text())
    assert marker == {"format": "searchsvc-index", "schema_version": 6, "generation": "g000002",
                      "previous": "g000001", "created": OLD_CREATED}

    info = searchsvc.info()
    assert (info["schema_version"], info["current_schema_version"], info["generation"]) == (6, 6, "g000002")
    assert (info["posts"], info["undated"]) == (len(SOURCES), 2)
    assert info["authors"] == {"Bora Kurgusal": 2, "Mira Inventa": 2, "Tomas Ficticio": 2}
    assert info["date_range"] == {"first": "2018-03-04T00:00:00", "last": "2021-01-01T00:00:00"}
    assert searchsvc("info").stdout.splitlines()[1] == "Schema version: 6"

    # The same posts come back out, and ingesting them again changes nothing.
    assert searchsvc.export() == exported
    result = searchsvc("ingest", path)
    assert result.stdout == (
        f"Read 1 file: 0 new, 0 updated, {len(SOURCES)} unchanged, 0 invalid, 0 skipped files\n")

    # Searches work, by relevance, by date, and filtered, with exact totals.
    total, ids = search_ids(searchsvc, "lighthouse", "--sort", "newest")
    assert (total, ids) == (3, ["lh-storm", "lh-log", "undated-note"])
    assert search_ids(searchsvc, "lighthouse", "--author", "Mira Inventa", "--sort", "oldest") == (
        2, ["lh-log", "lh-storm"])
    assert search_ids(searchsvc, "--from", "2019", "--to", "2019") == (2, ["lh-storm", "orchard"])
    assert search_ids(searchsvc, "göl") == (1, ["göl"])
    result = searchsvc("search", "--json", "--per-page", "100")
    everything = json.loads(result.stdout)
    assert everything["total"] == len(SOURCES)
    assert [hit["id"] for hit in everything["hits"]] == [
        "harbour", "göl", "lh-storm", "orchard", "lh-log", "undated-note", "undated-postcard"]
    assert everything["facets"]["year"] == [
        {"value": 2018, "count": 1}, {"value": 2019, "count": 2}, {"value": 2020, "count": 1},
        {"value": 2021, "count": 1}, {"value": None, "count": 2}]


def test_schema_3_has_no_newest_or_year(searchsvc, v2_index, tmp_path):
    """Both fields are gone from the schema, the stored documents and the column files;
    the old generation, kept as the previous one, still has its columns."""
    assert "newest" not in build_schema() and "year" not in build_schema()
    source = tmp_path / "posts.jsonl"
    source.write_text("".join(json.dumps(s, ensure_ascii=False) + "\n" for s in SOURCES), encoding="utf-8")
    # A rebuild straight from the source files, without an export first.
    result = searchsvc("ingest", "--rebuild", source)
    assert (result.exit_code, result.stderr) == (0, "")
    assert IndexStore(v2_index).marker().schema_version == 6

    ix = IndexStore(v2_index).open()
    assert "newest" not in ix.schema and "year" not in ix.schema
    with seam.whooshs_own_pickles():
        written = FileIndex(FileStorage(str(v2_index / "g000002"))).schema  # the schema pickled on disk
    assert "newest" not in written and "year" not in written
    with ix.reader() as reader:
        stored = [reader.stored_fields(d) for d in reader.all_doc_ids()]
    assert len(stored) == len(SOURCES)
    assert all(doc.keys() <= {"id", "title", "author", "date", "date_text", "url", "extra", "body"}
               for doc in stored)
    assert on_disk_columns(v2_index, "g000002", "date", "id", "newest", "year") == {
        "date": True, "id": True, "newest": False, "year": False}
    assert on_disk_columns(v2_index, "g000001", "newest", "year") == {"newest": True, "year": True}
    assert search_ids(searchsvc, "lighthouse", "--sort", "oldest") == (3, ["lh-log", "lh-storm", "undated-note"])
