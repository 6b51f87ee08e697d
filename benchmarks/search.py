"""Search speed: our full answer, in process, against SQLite FTS5 and Tantivy, interleaved, on
the same posts and the same distinct queries.

    python benchmarks/search.py                         # 10,419 posts; every index built in a temporary folder
    python benchmarks/search.py --index /tmp/ixp        # our index there (built there if missing, then reused)
    python benchmarks/search.py --copies 10 --index /tmp/ix100k --peers-dir /tmp/peers100k    # 104,190 posts
    python benchmarks/search.py --copies 100 --index /tmp/ix1m --peers-dir /tmp/peers1m --rounds 1 \\
        --peers tantivy                                 # 1,041,900 posts, against Tantivy only
    python benchmarks/search.py --smoke                 # 300 posts, 3 queries a class, one round: checks it runs
    python benchmarks/search.py --json

Queries: `--per-class` (30) distinct searches in each of ten classes (rare word, common word,
2- and 3-word AND, phrase, word + date range, date range newest first, word newest first,
2-word OR, prefix*), made from the corpus's own words with a fixed seed (_corpus.queries).
Ours: `searchsvc.search.run.search`, warm and in process, with the result cache and the time
limit off (every call really searches, to its end): top 10, exact total, highlighted title and snippet, facets by author
and year (and months). Baselines (_peers.py), each warm and in process:
- FTS5 (porter unicode61) via Python's sqlite3: top 10 by rank with `snippet()` plus a
  `count(*)` for the total; a date column filters and orders by date;
- Tantivy (PyPI `tantivy`): title and body with its English stemmer, a date fast field for
  ranges and newest first; top 10 with `count=True` (the exact total) and a 200-character
  SnippetGenerator snippet of each body.
The baselines count no facets unless `--peer-facets` (FTS5: two GROUP BY queries; Tantivy: a
terms aggregation on author and year).
Each round asks every query of every engine, one after the other (the order rotating from
query to query). A query's time is its median over the rounds; a class's figure is the median
(and p95) of its queries' times, "all" over every query. Indexes the script builds are timed,
and every index's size on disk reported. Post counts differ a little between engines
(different stemmers): the share of queries with the same total as ours is reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _peers
from _corpus import CLASSES, PRESIDENTIAL, SEED, copy_of, load, queries, write_jsonl
from _stats import percentile

from searchsvc.index.store import IndexStore
from searchsvc.ingest.batch import IngestReport, read_batch, write_batch
from searchsvc.search.engine import Engine
from searchsvc.search.request import request_from_params
from searchsvc.search.run import search

PEERS = ("fts5", "tantivy")
NAMES = {"ours": "searchsvc", "fts5": "FTS5", "tantivy": "Tantivy"}


def build_ours(original: list[dict], n_copies: int, index: Path, tmp: Path) -> float:
    """Ingest the copies one batch each, as an archive grows; the seconds it took."""
    started = time.perf_counter()
    for k in range(n_copies):
        source = tmp / f"copy{k}.jsonl"
        write_jsonl(copy_of(original, k), source)
        report = IngestReport()
        write_batch(IndexStore(index), read_batch([str(source)], report), report, rebuild=False, wait=0)
        source.unlink()
    return time.perf_counter() - started


def ratio(a: float, b: float) -> float:
    return round(a / max(b, 1e-6), 2)


def figures(times: dict[str, list[float]], engines: list[str]) -> dict:
    """Median and p95 of each engine's query times, and ours over each peer's median."""
    row: dict = {"queries": len(times["ours"])}
    for e in engines:
        row[f"{e}_p50_ms"] = round(statistics.median(times[e]), 2)
        row[f"{e}_p95_ms"] = round(percentile(times[e], 95), 2)
    for e in engines[1:]:
        row[f"ours_per_{e}"] = ratio(row["ours_p50_ms"], row[f"{e}_p50_ms"])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=PRESIDENTIAL)
    parser.add_argument("--index", type=Path, help="our index of the same corpus and copies (built there if missing)")
    parser.add_argument("--peers-dir", type=Path,
                        help="where the FTS5 and Tantivy indexes are kept (built there if missing), for reuse")
    parser.add_argument("--copies", type=int, default=1, help="the corpus this many times (new ids, shifted dates)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-class", type=int, default=30, help="distinct queries per class")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--peers", default=",".join(PEERS), help="baselines to run: fts5, tantivy (comma-separated)")
    parser.add_argument("--peer-facets", action="store_true", help="the baselines count author and year facets too")
    parser.add_argument("--smoke", action="store_true", help="300 documents, 3 queries a class, one round")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    peers = [p for p in args.peers.split(",") if p]
    if set(peers) - set(PEERS):
        parser.error(f"--peers: choose among {', '.join(PEERS)}")
    if args.smoke:
        args.rounds, args.per_class = 1, 3
    engines = ["ours", *peers]

    original = load(args.corpus, 300 if args.smoke else None)
    documents = len(original) * args.copies
    mix = queries(original, args.per_class, args.seed)
    built: dict[str, float | None] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        index = args.index or tmp / "index"
        built["ours"] = None if index.exists() else build_ours(original, args.copies, index, tmp)
        # No time limit: a slow search is timed to its end, not stopped with a 503 as the server would.
        engine = Engine(IndexStore(index), result_cache_size=0, search_timeout=None)
        with engine.reading() as searcher:
            held = searcher.doc_count()
        if held != documents:
            raise SystemExit(f"{index} holds {held} posts, not the {documents} of {args.copies} copies of the corpus")
        folder = args.peers_dir or tmp
        folder.mkdir(parents=True, exist_ok=True)
        run = {"ours": lambda request, params: search(engine, request).total}
        closers = [engine.close]
        if "fts5" in peers:
            db, built["fts5"] = _peers.fts_in(folder, original, args.copies)
            run["fts5"] = lambda request, params: _peers.fts_query(db, params, facets=args.peer_facets)[0]
            closers.append(db.close)
        if "tantivy" in peers:
            tantivy_index, built["tantivy"] = _peers.tantivy_in(folder, original, args.copies)
            run["tantivy"] = lambda request, params: _peers.tantivy_query(tantivy_index, params,
                                                                          facets=args.peer_facets)[0]
        sizes = {"ours": _peers.directory_mb(index)}
        sizes.update({p: _peers.directory_mb(folder / _peers.FILES[p]) for p in peers})

        # Warm every engine with every query; a query one of them refuses is left out (and listed).
        asked, dropped, totals = [], [], []
        for cls, params in mix:
            request = request_from_params(params)
            try:
                totals.append({e: run[e](request, params) for e in engines})
                asked.append((cls, params, request))
            except Exception as e:  # reported, and the query left out of every engine's times
                dropped.append({"class": cls, "params": params, "error": f"{type(e).__name__}: {e}"})
        times: dict[str, list[list[float]]] = {e: [[] for _ in asked] for e in engines}
        for r in range(args.rounds):
            for i, (_, params, request) in enumerate(asked):
                turn = (i + r) % len(engines)
                for e in engines[turn:] + engines[:turn]:
                    started = time.perf_counter()
                    run[e](request, params)
                    times[e][i].append((time.perf_counter() - started) * 1000)
        for close in closers:
            close()

    per_query = {e: [statistics.median(ts) for ts in times[e]] for e in engines}
    classes = {}
    for cls in CLASSES:
        picked = [i for i, (c, _, _) in enumerate(asked) if c == cls]
        if picked:
            row = figures({e: [per_query[e][i] for i in picked] for e in engines}, engines)
            same = {p: sum(totals[i][p] == totals[i]["ours"] for i in picked) for p in peers}
            row["same_total_as_ours"] = {p: round(n / len(picked), 2) for p, n in same.items()}
            classes[cls] = row
    summary = {
        "documents": documents,
        "copies": args.copies,
        "rounds": args.rounds,
        "queries": len(asked),
        "per_class": args.per_class,
        "seed": args.seed,
        "peer_facets": args.peer_facets,
        "dropped": dropped,
        "indexes": {e: {"mb": sizes[e], "build_s": None if built.get(e) is None else round(built[e], 2)}
                    for e in engines},
        "classes": classes,
        "all": figures(per_query, engines),
    }
    summary["all"]["same_total_as_ours"] = {
        p: round(sum(t[p] == t["ours"] for t in totals) / max(1, len(totals)), 2) for p in peers}
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print_table(summary, engines)


def print_table(summary: dict, engines: list[str]) -> None:
    peers = engines[1:]
    print(f"{summary['documents']:,} posts ({summary['copies']} cop{'y' if summary['copies'] == 1 else 'ies'}), "
          f"{summary['queries']} distinct queries ({summary['per_class']} a class, seed {summary['seed']}), "
          f"{summary['rounds']} interleaved round(s); medians of each query's median, ms"
          + ("; the baselines count facets too" if summary["peer_facets"] else ""))
    header = f"{'query class':<20}{'n':>4}{'searchsvc':>11}{'p95':>9}"
    for p in peers:
        header += f"{NAMES[p]:>10}"
    for p in peers:
        header += f"{'ours/' + NAMES[p]:>14}"
    print(header)
    for cls, row in [*summary["classes"].items(), ("all", summary["all"])]:
        line = f"{cls:<20}{row['queries']:>4}{row['ours_p50_ms']:>11}{row['ours_p95_ms']:>9}"
        for p in peers:
            line += f"{row[f'{p}_p50_ms']:>10}"
        for p in peers:
            line += f"{row[f'ours_per_{p}']:>14}"
        print(line)
    a = summary["all"]
    print("p95: " + ", ".join(f"{NAMES[e]} {a[f'{e}_p95_ms']} ms" for e in engines))
    print("indexes: " + ", ".join(
        f"{NAMES[e]} {row['mb']} MB" + (f" (built in {row['build_s']} s)" if row["build_s"] is not None else "")
        for e, row in summary["indexes"].items()))
    if peers:
        print("same total as searchsvc: " + ", ".join(
            f"{NAMES[p]} {round(a['same_total_as_ours'][p] * 100)}% of queries" for p in peers))
    for d in summary["dropped"]:
        print(f"left out ({d['class']}): {d['params']}: {d['error']}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
