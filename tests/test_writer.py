"""Our fast writer writes what Whoosh's own writer and analysers write, and its parallel
path gives the same index as its serial one."""

from __future__ import annotations

import gzip
import itertools
import json

import pytest
from conftest import CORPORA, PRESIDENTIAL, Searchsvc
from whoosh import fields
from whoosh.filedb.filestore import FileStorage
from whoosh.writing import SegmentWriter

from searchsvc.index import seam
from searchsvc.index.fasttext import FastText
from searchsvc.index.schema import build_schema, document_from_record
from searchsvc.index.store import IndexStore
from searchsvc.index.writer import PostWriter, split_by_size
from searchsvc.records import record_from_mapping

PHRASE_FIELDS = ("title", "text", "author")


def _records():
    """300 presidential documents and 40 of each multilingual corpus (Uyghur, Turkish, Chinese)."""
    lines = []
    with gzip.open(PRESIDENTIAL, "rt", encoding="utf-8") as f:
        lines += list(itertools.islice(f, 300))
    for path in sorted((CORPORA / "multilingual").glob("*.jsonl")):
        with path.open(encoding="utf-8") as f:
            lines += list(itertools.islice(f, 40))
    return [record_from_mapping(json.loads(line)) for line in lines]


def _build(path, records, writer_class):
    path.mkdir()
    if writer_class is PostWriter:  # ours commits durably, into a generation of an index of ours
        _, ix = IndexStore(path).new_generation()
    else:
        ix = FileStorage(str(path)).create_index(build_schema())
    writer = writer_class(ix)
    for record in records:
        writer.add_document(**document_from_record(record))
    writer.commit()
    return ix


@pytest.fixture(scope="module")
def both(tmp_path_factory, request):
    records = _records()
    base = tmp_path_factory.mktemp("writers")
    # Whoosh's own writer and index, reading back the table of contents it wrote.
    with pytest.MonkeyPatch.context() as mp, seam.whooshs_own_pickles():
        mp.setattr(FastText, "index", fields.TEXT.index)  # Whoosh's token pipeline
        stock = _build(base / "stock", records, SegmentWriter)
        a = stock.reader()
    fast = _build(base / "fast", records, PostWriter)
    with a, fast.reader() as b:
        yield a, b


def test_same_terms_and_postings_as_whoosh(both):
    stock, fast = both
    terms = list(stock.all_terms())
    assert terms == list(fast.all_terms())
    assert len(terms) > 20_000
    for fieldname, term in terms:
        if fieldname in PHRASE_FIELDS:
            assert list(stock.postings(fieldname, term).all_items()) == list(
                fast.postings(fieldname, term).all_items()
            ), (fieldname, term)


def test_spelling_words_keep_their_frequencies(both):
    stock, fast = both
    words = [t for f, t in stock.all_terms() if f == "spell"]
    assert len(words) > 10_000
    for word in words:
        assert fast.frequency("spell", word) == stock.frequency("spell", word)
        assert fast.doc_frequency("spell", word) >= 1
    # One posting per word in the segment, instead of one per post.
    assert sum(fast.doc_frequency("spell", w) for w in words) == len(words)


def test_same_lengths_and_stored_fields(both):
    stock, fast = both
    assert stock.doc_count() == fast.doc_count() == 420
    for fieldname in PHRASE_FIELDS:
        assert stock.field_length(fieldname) == fast.field_length(fieldname)
        assert [stock.doc_field_length(d, fieldname) for d in range(420)] == [
            fast.doc_field_length(d, fieldname) for d in range(420)
        ]
    assert list(stock.iter_docs()) == list(fast.iter_docs())


def test_split_by_size_keeps_order_and_balances():
    records = _records()
    parts = split_by_size(records, 2)
    assert [r.id for part in parts for r in part] == [r.id for r in records]
    sizes = [sum(len(r.body) + len(r.title) for r in part) for part in parts]
    assert len(parts) == 2 and min(sizes) > 0.4 * sum(sizes)
    assert split_by_size(records[:1], 4) == [records[:1]]


@pytest.mark.slow  # real processes: kept out of the fast tier, run by CI
def test_parallel_ingest_equals_serial_ingest(tmp_path, monkeypatch):
    """A batch big enough for helper processes (lowered threshold) gives the same posts,
    in the same order, with the same search results, as one process."""
    source = tmp_path / "posts.jsonl"
    with gzip.open(PRESIDENTIAL, "rt", encoding="utf-8") as f:
        source.write_text("".join(itertools.islice(f, 400)), encoding="utf-8")
    serial = Searchsvc(tmp_path / "serial")
    assert serial("ingest", source).exit_code == 0
    parallel = Searchsvc(tmp_path / "parallel")
    monkeypatch.setattr("searchsvc.index.writer.PARALLEL_MIN_CHARS", 100_000)
    result = parallel("ingest", source)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Read 1 file: 400 new, 0 updated, 0 unchanged, 0 invalid, 0 skipped files\n"
    assert parallel.export() == serial.export()
    segments = [p.name for p in (tmp_path / "parallel").glob("g*/*.seg")]
    assert len(segments) >= 2
    for query in ("treaty", "national emergency", '"armed forces"', "proclamation -thanksgiving"):
        a = serial("search", query, "--json", "--per-page", "20")
        b = parallel("search", query, "--json", "--per-page", "20")
        ja, jb = json.loads(a.stdout), json.loads(b.stdout)
        for j in (ja, jb):
            j.pop("took_ms")
            j.pop("commit")  # two indexes, two commits: the answers must be the same all the same
        assert ja == jb, query
    # Updating posts written by a helper replaces them (no duplicates).
    again = parallel("ingest", source)
    assert again.stdout == "Read 1 file: 0 new, 0 updated, 400 unchanged, 0 invalid, 0 skipped files\n"
    # A segment holds at most SEGMENT_MAX_CHARS of text (its inversion is in memory): more
    # parts than processes, the same posts and answers.
    capped = Searchsvc(tmp_path / "capped")
    monkeypatch.setattr("searchsvc.index.writer.SEGMENT_MAX_CHARS", 300_000)
    assert capped("ingest", source).exit_code == 0
    assert len(list((tmp_path / "capped").glob("g*/*.seg"))) >= 4
    assert capped.export() == serial.export()
    for query in ("treaty", '"armed forces"'):
        a, c = (json.loads(x("search", query, "--json", "--per-page", "20").stdout) for x in (serial, capped))
        for j in (a, c):
            j.pop("took_ms")
            j.pop("commit")
        assert a == c, query


@pytest.mark.slow  # ten ingests and three deletes: CI runs it
def test_postings_after_ingests_deletes_and_merges_are_the_analysis_of_the_stored_posts(tmp_path):
    """Ground truth: an index grown by ten ingests, updates and deletes (Whoosh merges its
    segments along the way, from their arrays) holds, for every live post, exactly the terms,
    frequencies and positions the analyser gives its stored text, and no posting of a deleted
    or replaced post."""
    from whoosh.codec.whoosh3 import W3Codec

    from searchsvc.index.codec import open_segment_postings

    records = _records()[:200]
    searchsvc = Searchsvc(tmp_path / "index")
    for part in range(10):
        batch = records[part * 20:(part + 1) * 20]
        if part >= 2:  # updates of earlier posts, with changed text
            batch += [record_from_mapping({**r.to_json(), "body": r.body + " revised lighthouse"})
                      for r in records[(part - 2) * 20:(part - 2) * 20 + 3]]
        source = tmp_path / f"part{part}.jsonl"
        source.write_text("".join(json.dumps(r.to_json()) + "\n" for r in batch), encoding="utf-8")
        assert searchsvc("ingest", source).exit_code == 0
        if part % 3 == 2:
            assert searchsvc("delete", records[part * 20].id).exit_code == 0
    ix = IndexStore(searchsvc.index).open()
    schema = build_schema()
    with ix.reader() as reader:
        leaves = reader.leaf_readers()
        assert len(leaves) < 10  # some segments were merged
        expected: dict[tuple[str, int], dict[bytes, list[int]]] = {}
        found: dict[tuple[str, int], dict[bytes, list[int]]] = {}
        live = set(reader.all_doc_ids())
        for docnum in live:
            stored = reader.stored_fields(docnum)
            values = {"title": stored["title"], "text": stored["title"] + "\n" + stored["body"],
                      "author": stored.get("author")}
            for fieldname in PHRASE_FIELDS:
                if values[fieldname]:
                    items = schema[fieldname].index(values[fieldname])
                    expected[(fieldname, docnum)] = {
                        term: list(schema[fieldname].format.decode_positions(value)) for term, _, _, value in items}
        for segreader, offset in leaves:
            assert isinstance(segreader.segment().codec(), W3Codec)
            arrays = open_segment_postings(segreader)
            deleted = set(segreader.segment().deleted_docs())
            for fieldname in PHRASE_FIELDS:
                field = arrays.fields[fieldname]
                ends = field.term_ends.tolist()
                for number, (start, end) in enumerate(zip([0, *ends[:-1]], ends, strict=True)):
                    term = bytes(field.terms[start:end])
                    docs, _, first, last = field.postings(number)
                    for posting, doc in zip(range(first, last), docs.tolist(), strict=True):
                        if doc in deleted:
                            continue
                        found.setdefault((fieldname, offset + doc), {})[term] = field.positions_of(posting).tolist()
    assert found == expected
    titles = {reader_doc["id"] for reader_doc in ix.searcher().documents()}
    assert len(titles) == len(live)


def test_small_segments_are_merged_and_big_ones_never(tmp_path, monkeypatch):
    """Many small ingests do not pile up segments (at MERGE_AT small ones they are merged into
    the next), and a merge never takes more than MERGE_MAX_WORDS: the merged segment is
    inverted in memory (Whoosh's policy once merged 300,000 posts in one go, a 9.8 GB peak)."""
    monkeypatch.setattr("searchsvc.index.writer.MERGE_MAX_WORDS", 3_000)
    monkeypatch.setattr("searchsvc.index.writer.MERGE_SMALL_WORDS", 1_000)
    searchsvc = Searchsvc(tmp_path / "index")
    records = _records()[:60]

    def segments() -> list[int]:
        with IndexStore(searchsvc.index).open().reader() as reader:
            return sorted(leaf.field_length("text") for leaf, _ in reader.leaf_readers())

    for n, record in enumerate(records[:12]):  # short posts, one ingest each
        source = tmp_path / f"small{n}.jsonl"
        short = {**record.to_json(), "body": " ".join(record.body.split()[:40])}
        source.write_text(json.dumps(short) + "\n", encoding="utf-8")
        assert searchsvc("ingest", source).exit_code == 0
        assert len([words for words in segments() if words <= 1_000]) <= 4  # merged at the fourth
    big = tmp_path / "big.jsonl"  # posts of several thousand words each: segments over the limits
    big.write_text("".join(json.dumps(r.to_json()) + "\n" for r in records[12:]), encoding="utf-8")
    assert searchsvc("ingest", big).exit_code == 0
    before = segments()
    for n in range(4):
        source = tmp_path / f"late{n}.jsonl"
        source.write_text(json.dumps({"id": f"late-{n}", "title": "Late", "body": "A short synthetic note."}) + "\n",
                          encoding="utf-8")
        assert searchsvc("ingest", source).exit_code == 0
    after = segments()
    assert [w for w in before if w > 3_000] == [w for w in after if w > 3_000]  # big segments untouched
    assert len(searchsvc.export()) == 64
