"""Search speed: our full API response against SQLite FTS5, interleaved, on the same corpus.

    python benchmarks/search.py                      # builds both indexes from the presidential corpus
    python benchmarks/search.py --index /tmp/ixp     # reuse an index built by `searchsvc ingest`
    python benchmarks/search.py --smoke              # 300 documents, one round: checks it runs
    python benchmarks/search.py --json
    python benchmarks/search.py --copies 10 --index /tmp/ix100k   # ~104,000 posts; builds the index
                                                                  # there if missing (~5 min), then reuses it

Ours: `searchsvc.search.run.search`, warm and in-process, with the result cache off (every call
really searches): top 10, total, highlighted snippets, facets by author and year.
Baseline: FTS5 (porter unicode61) via Python's sqlite3: top 10 by rank with `snippet()`
plus a `count(*)` for the total; a date column filters and orders by date.
Each round runs every query on both, one after the other; medians and p95 per query class.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from _stats import percentile

from searchsvc.index.store import IndexStore
from searchsvc.ingest.batch import IngestReport, read_batch, write_batch
from searchsvc.search.engine import Engine
from searchsvc.search.request import request_from_params
from searchsvc.search.run import search

CORPORA = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora"
PRESIDENTIAL = CORPORA / "us_presidential_documents.jsonl.gz"

# (class, params): the mix the performance issue names.
QUERIES = [
    ("rare word", {"q": "smallpox"}), ("rare word", {"q": "lighthouse"}), ("rare word", {"q": "bison"}),
    ("common word", {"q": "national"}), ("common word", {"q": "president"}), ("common word", {"q": "states"}),
    ("2-word AND", {"q": "national emergency"}), ("2-word AND", {"q": "public lands"}),
    ("2-word AND", {"q": "foreign trade"}),
    ("3-word AND", {"q": "national security council"}), ("3-word AND", {"q": "federal reserve bank"}),
    ("3-word AND", {"q": "armed forces day"}),
    ("phrase", {"q": '"national emergency"'}), ("phrase", {"q": '"public lands"'}),
    ("phrase", {"q": '"executive order"'}),
    ("word + date range", {"q": "war", "from": "1940", "to": "1945"}),
    ("word + date range", {"q": "oil", "from": "1970", "to": "1980"}),
    ("word + date range", {"q": "health", "from": "2000", "to": "2010"}),
    ("date range, newest", {"from": "1990", "to": "1995"}), ("date range, newest", {"from": "1960", "to": "1969"}),
    ("date range, newest", {"from": "2001", "to": "2008"}),
    ("word, newest", {"q": "treaty", "sort": "newest"}), ("word, newest", {"q": "veterans", "sort": "newest"}),
    ("word, newest", {"q": "forest", "sort": "newest"}),
]


def load(corpus: Path, limit: int | None) -> list[dict]:
    with gzip.open(corpus, "rt", encoding="utf-8") as f:
        return [json.loads(line) for n, line in enumerate(f) if limit is None or n < limit]


def copy_of(records: list[dict], k: int) -> list[dict]:
    """The k-th copy of the corpus for the scale run: new ids, dates k days later."""
    if k == 0:
        return records
    out = []
    for r in records:
        r = dict(r, id=f"{r['id']}-copy{k}")
        if r.get("date"):
            shifted = datetime.fromisoformat(r["date"][:10]) + timedelta(days=k)
            r["date"] = shifted.date().isoformat() + r["date"][10:]
        out.append(r)
    return out


def build_fts(records: list[dict], path: Path) -> sqlite3.Connection:
    """The FTS5 baseline (also serving.py's): title and body searched, the rest kept."""
    db = sqlite3.connect(path, check_same_thread=False)
    db.execute("CREATE VIRTUAL TABLE posts USING fts5(id UNINDEXED, title, body, date UNINDEXED, author UNINDEXED, "
               "tokenize='porter unicode61')")
    db.executemany("INSERT INTO posts VALUES (?, ?, ?, ?, ?)",
                   [(str(r["id"]), r["title"], r["body"], r.get("date") or "", r.get("author") or "")
                    for r in records])
    db.commit()
    return db


def fts_query(db: sqlite3.Connection, params: dict) -> tuple[int, list]:
    """Top 10 with snippets, and the total, as FTS5 users would write it."""
    where, args = [], []
    if params.get("q"):
        where.append("posts MATCH ?")
        args.append(params["q"])
    if params.get("from"):
        where.append("date >= ?")
        args.append(params["from"])
    if params.get("to"):
        where.append("date <= ?")
        args.append(params["to"] + "-12-31")
    clause = " AND ".join(where) or "1"
    order = "ORDER BY date DESC" if params.get("sort") == "newest" or not params.get("q") else "ORDER BY rank"
    rows = db.execute(f"SELECT id, title, date, snippet(posts, 2, '<mark>', '</mark>', '…', 30) FROM posts "
                      f"WHERE {clause} {order} LIMIT 10", args).fetchall()
    total = db.execute(f"SELECT count(*) FROM posts WHERE {clause}", args).fetchone()[0]
    return total, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=PRESIDENTIAL)
    parser.add_argument("--index", type=Path, help="a searchsvc index of the same corpus (built there if missing)")
    parser.add_argument("--copies", type=int, default=1, help="the corpus this many times (new ids, shifted dates)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--smoke", action="store_true", help="300 documents, one round")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    limit = 300 if args.smoke else None
    rounds = 1 if args.smoke else args.rounds

    with tempfile.TemporaryDirectory() as tmp:
        original = load(args.corpus, limit)
        records = [r for k in range(args.copies) for r in copy_of(original, k)]
        db = build_fts(records, Path(tmp) / "fts.db")
        index = args.index or Path(tmp) / "index"
        if not index.exists():
            # One ingest per copy, as an archive grows.
            for k in range(args.copies):
                source = Path(tmp) / "corpus.jsonl"
                source.write_text("".join(json.dumps(r) + "\n" for r in copy_of(original, k)), encoding="utf-8")
                report = IngestReport()
                write_batch(IndexStore(index), read_batch([str(source)], report), report, rebuild=False, wait=0)
        engine = Engine(IndexStore(index), result_cache_size=0)
        requests = [(cls, params, request_from_params(params)) for cls, params in QUERIES]
        for _, params, request in requests:  # warm both
            search(engine, request)
            fts_query(db, params)
        ours: dict[str, list[float]] = {}
        theirs: dict[str, list[float]] = {}
        for _ in range(rounds):
            for cls, params, request in requests:
                started = time.perf_counter()
                search(engine, request)
                ours.setdefault(cls, []).append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                fts_query(db, params)
                theirs.setdefault(cls, []).append((time.perf_counter() - started) * 1000)
        engine.close()
        db.close()

    every_ours = [t for ts in ours.values() for t in ts]
    every_theirs = [t for ts in theirs.values() for t in ts]
    def ratio(a: list[float], b: list[float]) -> float:
        return round(statistics.median(a) / max(statistics.median(b), 1e-6), 1)

    summary = {
        "documents": len(records),
        "rounds": rounds,
        "classes": {cls: {"ours_p50_ms": round(statistics.median(ours[cls]), 1),
                          "fts5_p50_ms": round(statistics.median(theirs[cls]), 2),
                          "ratio_p50": ratio(ours[cls], theirs[cls])}
                    for cls in ours},
        "all": {"ours_p50_ms": round(statistics.median(every_ours), 1),
                "ours_p95_ms": round(percentile(every_ours, 95), 1),
                "fts5_p50_ms": round(statistics.median(every_theirs), 2),
                "fts5_p95_ms": round(percentile(every_theirs, 95), 2),
                "ratio_p50": ratio(every_ours, every_theirs)},
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"{summary['documents']} documents, {rounds} interleaved rounds, medians in ms")
    print(f"{'query class':<22}{'searchsvc':>11}{'FTS5':>9}{'ratio':>8}")
    for cls, row in summary["classes"].items():
        print(f"{cls:<22}{row['ours_p50_ms']:>11}{row['fts5_p50_ms']:>9}{row['ratio_p50']:>8}")
    a = summary["all"]
    print(f"{'all':<22}{a['ours_p50_ms']:>11}{a['fts5_p50_ms']:>9}{a['ratio_p50']:>8}")
    print(f"p95: searchsvc {a['ours_p95_ms']} ms, FTS5 {a['fts5_p95_ms']} ms")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
