"""The baselines beside searchsvc: SQLite FTS5 and Tantivy, built from the same records and
asked the same searches (top 10 with snippets and the exact total; date ranges; newest first).
Shared by search.py (in process), serving.py (its baseline servers) and ingest.py; imported by
name like _stats.py, with no searchsvc import.

Semantics, as close to ours as each engine allows: bare words are ANDed, "a b" is a phrase,
`a OR b`, `pre*` a prefix; title and body are searched; `from`/`to` are whole years (or
months, days) inclusive; no words, or sort=newest, orders by date, newest first.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import time
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import tantivy
from _corpus import copies, copy_of

SNIPPET_CHARS = 200  # about FTS5's 30 tokens, and our snippet window
FILES = {"fts5": "fts5.db", "tantivy": "tantivy"}  # in a folder of baseline indexes (search.py --peers-dir)


def directory_mb(path: Path) -> float:
    """Megabytes of the files under path (or of the file)."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return round(sum(p.stat().st_size for p in files) / 1e6, 1)


# SQLite FTS5 ----------------------------------------------------------------------------------

def build_fts(records: Iterable[dict], path: Path, *, batch: int = 10_000) -> sqlite3.Connection:
    """The FTS5 baseline (porter unicode61): title and body searched, the rest kept."""
    db = sqlite3.connect(path, check_same_thread=False)
    db.execute("CREATE VIRTUAL TABLE posts USING fts5(id UNINDEXED, title, body, date UNINDEXED, author UNINDEXED, "
               "tokenize='porter unicode61')")
    rows = []
    for r in records:
        rows.append((str(r["id"]), r["title"], r["body"], r.get("date") or "", r.get("author") or ""))
        if len(rows) >= batch:
            db.executemany("INSERT INTO posts VALUES (?, ?, ?, ?, ?)", rows)
            rows = []
    db.executemany("INSERT INTO posts VALUES (?, ?, ?, ?, ?)", rows)
    db.commit()
    return db


def fts_count(db: sqlite3.Connection) -> int:
    return db.execute("SELECT count(*) FROM posts").fetchone()[0]


def fts_query(db: sqlite3.Connection, params: dict, *, facets: bool = False) -> tuple[int, list]:
    """Top 10 with snippets, and the total, as FTS5 users would write it (with `facets`, also
    post counts by author and by year)."""
    where, args = [], []
    if params.get("q"):
        where.append("posts MATCH ?")
        args.append(params["q"])
    if params.get("from"):
        where.append("date >= ?")
        args.append(params["from"])
    if params.get("to"):
        # "1995" -> every date up to "1995~" ('~' sorts after digits and '-'): all of 1995.
        where.append("date <= ?")
        args.append(params["to"] + "~")
    clause = " AND ".join(where) or "1"
    order = "ORDER BY date DESC" if params.get("sort") == "newest" or not params.get("q") else "ORDER BY rank"
    rows = db.execute(f"SELECT id, title, date, snippet(posts, 2, '<mark>', '</mark>', '…', 30) FROM posts "
                      f"WHERE {clause} {order} LIMIT 10", args).fetchall()
    total = db.execute(f"SELECT count(*) FROM posts WHERE {clause}", args).fetchone()[0]
    if facets:
        db.execute(f"SELECT author, count(*) FROM posts WHERE {clause} GROUP BY author", args).fetchall()
        db.execute(f"SELECT substr(date, 1, 4), count(*) FROM posts WHERE {clause} GROUP BY 1", args).fetchall()
    return total, rows


# Tantivy --------------------------------------------------------------------------------------

def tantivy_schema() -> tantivy.Schema:
    """Title and body with tantivy's English stemmer (lower case, Snowball stems, like ours and
    FTS5's porter), stored; the id and author as single terms; the date indexed and a fast field
    (range filters, newest first), and its year as a fast field (year facets)."""
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw")
    builder.add_text_field("title", stored=True, tokenizer_name="en_stem")
    builder.add_text_field("body", stored=True, tokenizer_name="en_stem")
    builder.add_date_field("date", stored=True, indexed=True, fast=True)
    builder.add_integer_field("year", indexed=True, fast=True)
    builder.add_text_field("author", stored=True, fast=True, tokenizer_name="raw")
    return builder.build()


_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


def _date(text: str) -> datetime | None:
    match = _DATE.match(text or "")
    if not match:
        return None
    return datetime(int(match[1]), int(match[2] or 1), int(match[3] or 1), tzinfo=timezone.utc)


def tantivy_document(r: dict) -> tantivy.Document:
    doc = tantivy.Document()
    doc.add_text("id", str(r["id"]))
    doc.add_text("title", r["title"])
    doc.add_text("body", r["body"])
    doc.add_text("author", r.get("author") or "")
    when = _date(str(r.get("date") or ""))
    if when:
        doc.add_date("date", when)
        doc.add_integer("year", when.year)
    return doc


# The writer's memory budget, split between its threads (tantivy picks one per core, at most 8):
# stock Whoosh gets limitmb=256 in ingest.py.
WRITER_HEAP = 256_000_000


def build_tantivy(batches: Iterable[Iterable[dict]], path: Path) -> tantivy.Index:
    """An index at path of every record, one commit per batch (as an archive grows), merges
    finished before it returns."""
    path.mkdir(parents=True, exist_ok=True)
    index = tantivy.Index(tantivy_schema(), path=str(path), reuse=False)
    writer = index.writer(heap_size=WRITER_HEAP)
    for records in batches:
        for r in records:
            writer.add_document(tantivy_document(r))
        writer.commit()
    writer.wait_merging_threads()
    index.reload()
    return index


def open_tantivy(path: Path) -> tantivy.Index:
    return tantivy.Index.open(str(path))


def _bound(text: str, *, end: bool) -> datetime:
    """The first instant of a from-date, or the first instant after a to-date."""
    parts = [int(p) for p in text.split("-")[:3]]
    if not end:
        return datetime(*parts, *[1] * (3 - len(parts)), tzinfo=timezone.utc)
    if len(parts) == 1:
        return datetime(parts[0] + 1, 1, 1, tzinfo=timezone.utc)
    if len(parts) == 2:
        year, month = divmod(parts[0] * 12 + parts[1], 12)  # the month after
        return datetime(year, month + 1, 1, tzinfo=timezone.utc)
    following = date(*parts) + timedelta(days=1)
    return datetime(following.year, following.month, following.day, tzinfo=timezone.utc)


def tantivy_text_query(index: tantivy.Index, q: str) -> tantivy.Query:
    """Our query language as tantivy's: its parser does words (ANDed), phrases and OR; `pre*`
    is a regex query over the stems of both fields (tantivy's parser would drop the star)."""
    q = q.strip()
    if re.fullmatch(r"[a-z]+\*", q):
        schema = index.schema
        return tantivy.Query.boolean_query([
            (tantivy.Occur.Should, tantivy.Query.regex_query(schema, field, re.escape(q[:-1]) + ".*"))
            for field in ("title", "body")
        ])
    return index.parse_query(q, ["title", "body"], conjunction_by_default=True)


def tantivy_query(index: tantivy.Index, params: dict, *, facets: bool = False) -> tuple[int, list]:
    """Top 10 with a snippet of the body each, and the exact total (with `facets`, also post
    counts by author and by year). A prefix gets empty snippets: the SnippetGenerator
    highlights the query's terms, and a regex query has none."""
    schema = index.schema
    searcher = index.searcher()
    text = tantivy_text_query(index, params["q"]) if params.get("q") else None
    parts = [text] if text is not None else []
    if params.get("from") or params.get("to"):
        parts.append(tantivy.Query.range_query(
            schema, "date", tantivy.FieldType.Date,
            _bound(params["from"], end=False) if params.get("from") else None,
            _bound(params["to"], end=True) if params.get("to") else None,
            include_upper=not params.get("to"),
        ))
    if not parts:
        query = tantivy.Query.all_query()
    elif len(parts) == 1:
        query = parts[0]
    else:
        query = tantivy.Query.boolean_query([(tantivy.Occur.Must, p) for p in parts])
    if params.get("sort") == "newest" or text is None:
        found = searcher.search(query, 10, count=True, order_by_field="date", order=tantivy.Order.Desc)
    else:
        found = searcher.search(query, 10, count=True)
    snippets = None
    if text is not None:
        snippets = tantivy.SnippetGenerator.create(searcher, text, schema, "body")
        snippets.set_max_num_chars(SNIPPET_CHARS)
    hits = []
    for _, address in found.hits:
        doc = searcher.doc(address)
        snippet = snippets.snippet_from_doc(doc).to_html() if snippets else ""
        hits.append((doc.get_first("id"), doc.get_first("title"), str(doc.get_first("date")), snippet))
    if facets:
        searcher.aggregate(query, {"author": {"terms": {"field": "author", "size": 100}},
                                   "year": {"terms": {"field": "year", "size": 1000}}})
    return found.count, hits


# Kept in a folder --------------------------------------------------------------------------

def fts_in(folder: Path, original: list[dict], n_copies: int) -> tuple[sqlite3.Connection, float | None]:
    """The FTS5 database in folder (reused when it holds as many posts), and its build time."""
    path = folder / FILES["fts5"]
    if path.exists():
        db = sqlite3.connect(path, check_same_thread=False)
        if fts_count(db) == len(original) * n_copies:
            return db, None
        db.close()
        path.unlink()
    started = time.perf_counter()
    db = build_fts(copies(original, n_copies), path)
    return db, time.perf_counter() - started


def tantivy_in(folder: Path, original: list[dict], n_copies: int) -> tuple[tantivy.Index, float | None]:
    """The Tantivy index in folder (reused when it holds as many posts), and its build time."""
    path = folder / FILES["tantivy"]
    if path.exists():
        index = open_tantivy(path)
        if index.searcher().num_docs == len(original) * n_copies:
            return index, None
        shutil.rmtree(path)
    started = time.perf_counter()
    index = build_tantivy((copy_of(original, k) for k in range(n_copies)), path)
    return index, time.perf_counter() - started
