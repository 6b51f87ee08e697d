"""Ingest speed: `searchsvc ingest` against stock Whoosh and SQLite FTS5, on the same corpus.

    python benchmarks/ingest.py                  # the presidential corpus, one round (~4 minutes)
    python benchmarks/ingest.py --rounds 3       # interleaved rounds, medians
    python benchmarks/ingest.py --skip-serial    # leave out stock Whoosh's single writer (~2 minutes of it)
    python benchmarks/ingest.py --copies 10 --skip-whoosh   # 104,190 posts (405 MB): ours, FTS5, Tantivy
    python benchmarks/ingest.py --smoke --json   # 300 documents: checks it runs

Every variant runs in a fresh process of its own (start-up included), reads the same
uncompressed JSONL file and parses each line, into an empty directory:
- searchsvc: `searchsvc ingest FILE` (validation, fingerprints, our writer), then the same
  command again on the unchanged file (re-ingest);
- stock Whoosh's best writer tuning, `writer(procs=2, multisegment=True, limitmb=256)`, on our
  records, schema and analysers through Whoosh's token pipeline (the like-for-like baseline);
- the same tuning on a minimal schema: a StemmingAnalyzer TEXT title and body (stored; its
  stop list drops about a third of the words), DATETIME date, ID author;
- stock Whoosh, the default single writer, the same schema;
- SQLite FTS5 (porter unicode61) via Python's sqlite3, one transaction;
- Tantivy (PyPI `tantivy`), the schema of benchmarks/_peers.py (title and body with its
  English stemmer, stored; id, author, a date fast field, its year), one writer with a 256 MB
  budget and tantivy's own choice of threads (one per core), one commit, merges waited for.
`--copies N` writes the corpus N times into the file (new ids, dates shifted by a day per copy,
as search.py's copies), so each variant reads N times the posts in one run.
MB/s are of the uncompressed file; "peak MB" is the largest resident set of any one of the
variant's processes (helpers included; Tantivy's threads are in its one process), "all procs"
the largest sum of the resident sets of its processes at one moment (sampled every 20 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _corpus import PRESIDENTIAL, copies, load, write_jsonl
from _stats import processes

VARIANTS = [
    "searchsvc", "searchsvc re-ingest", "whoosh procs=2, our schema", "whoosh procs=2", "whoosh serial", "fts5",
    "tantivy",
]


def run_variant(name: str, source: Path, target: Path) -> None:
    """In a child process: do one variant's work, then print its peak memory (MB)."""
    if name.startswith("searchsvc"):
        from searchsvc.cli import cli

        try:
            cli.main(["ingest", "--quiet", "--index", str(target), str(source)], standalone_mode=False)
        except SystemExit as e:
            if e.code:
                raise
    elif name == "whoosh procs=2, our schema":
        _stock_writer_our_schema(source, target)
    elif name.startswith("whoosh"):
        _stock_whoosh(source, target, parallel=name == "whoosh procs=2")
    elif name == "tantivy":
        _tantivy(source, target)
    else:
        _fts5(source, target)
    usage = resource.getrusage
    peak = max(usage(resource.RUSAGE_SELF).ru_maxrss, usage(resource.RUSAGE_CHILDREN).ru_maxrss)
    print(json.dumps({"peak_mb": round(peak / 1024)}))


def _stock_whoosh(source: Path, target: Path, *, parallel: bool) -> None:
    from dateutil import parser as dateparser
    from whoosh import fields
    from whoosh.analysis import StemmingAnalyzer
    from whoosh.index import create_in

    schema = fields.Schema(
        id=fields.ID(stored=True, unique=True),
        title=fields.TEXT(stored=True, analyzer=StemmingAnalyzer()),
        body=fields.TEXT(stored=True, analyzer=StemmingAnalyzer()),
        date=fields.DATETIME(stored=True, sortable=True),
        author=fields.ID(stored=True),
    )
    target.mkdir()
    ix = create_in(str(target), schema)
    writer = ix.writer(procs=2, multisegment=True, limitmb=256) if parallel else ix.writer(limitmb=256)
    with source.open(encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            doc = {"id": str(r["id"]), "title": r["title"], "body": r["body"], "author": r.get("author") or ""}
            if r.get("date"):
                doc["date"] = dateparser.parse(r["date"])
            writer.add_document(**doc)
    writer.commit()


def _stock_writer_our_schema(source: Path, target: Path) -> None:
    """Our records, schema and analysers, through Whoosh's own token pipeline and its best
    writer tuning: what our writer is measured against."""
    from whoosh import fields
    from whoosh.index import create_in

    from searchsvc.index.fasttext import FastText
    from searchsvc.index.schema import build_schema, document_from_record
    from searchsvc.records import record_from_mapping

    FastText.index = fields.TEXT.index  # the forked writer processes inherit this
    target.mkdir()
    ix = create_in(str(target), build_schema())
    writer = ix.writer(procs=2, multisegment=True, limitmb=256)
    with source.open(encoding="utf-8") as f:
        for line in f:
            writer.add_document(**document_from_record(record_from_mapping(json.loads(line))))
    writer.commit()


def _fts5(source: Path, target: Path) -> None:
    import sqlite3

    target.mkdir()
    db = sqlite3.connect(target / "fts.db")
    db.execute("CREATE VIRTUAL TABLE posts USING fts5(id UNINDEXED, title, body, date UNINDEXED, author, "
               "tokenize='porter unicode61')")
    with source.open(encoding="utf-8") as f:
        rows = ((r["id"], r["title"], r["body"], r.get("date") or "", r.get("author") or "")
                for r in map(json.loads, f))
        db.executemany("INSERT INTO posts VALUES (?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()


def _tantivy(source: Path, target: Path) -> None:
    import _peers  # here, so that the other variants do not load tantivy

    with source.open(encoding="utf-8") as f:
        _peers.build_tantivy([map(json.loads, f)], target)


def timed(name: str, source: Path, target: Path) -> tuple[float, int, int]:
    """Seconds, the largest resident set of one process, and the largest sum of the resident
    sets of the variant's process and its helpers, sampled every 20 ms (what the machine needs)."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, __file__, "--variant", name, str(source), str(target)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    total = 0
    while process.poll() is None:
        total = max(total, _tree_rss_kb(process.pid))
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"{name} failed:\n{stderr}")
    peak = json.loads(stdout.strip().splitlines()[-1])["peak_mb"]
    return seconds, peak, max(peak, round(total / 1024))


def _tree_rss_kb(root: int) -> int:
    """The summed resident sets (kB) of `root` and every process descended from it."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for pid, fields in processes():
        parents[pid] = int(fields.get("PPid", "0"))
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0])
    tree, frontier = {root}, [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier and pid not in tree]
        tree.update(frontier)
    return sum(rss.get(pid, 0) for pid in tree)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=PRESIDENTIAL)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--copies", type=int, default=1, help="the corpus this many times (new ids, shifted dates)")
    parser.add_argument("--skip-serial", action="store_true", help="leave out stock Whoosh's single writer")
    parser.add_argument("--skip-whoosh", action="store_true",
                        help="leave out every stock Whoosh variant (searchsvc, FTS5 and Tantivy only)")
    parser.add_argument("--smoke", action="store_true", help="300 documents, one round")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--variant", nargs=3, metavar=("NAME", "SOURCE", "TARGET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        name, source, target = args.variant
        run_variant(name, Path(source), Path(target))
        return

    variants = [v for v in VARIANTS if not ((args.skip_serial and v == "whoosh serial")
                                            or (args.skip_whoosh and v.startswith("whoosh")))]
    rounds = 1 if args.smoke else args.rounds
    seconds: dict[str, list[float]] = {v: [] for v in variants}
    peaks: dict[str, list[int]] = {v: [] for v in variants}
    totals: dict[str, list[int]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "corpus.jsonl"
        original = load(args.corpus, 300 if args.smoke else None)
        megabytes = write_jsonl(copies(original, args.copies), source) / 1e6
        documents = len(original) * args.copies
        del original
        for r in range(rounds):
            for name in variants:
                # The re-ingest reads into the index the first searchsvc run of this round made.
                target = Path(tmp) / f"r{r}-searchsvc" if name == "searchsvc re-ingest" else Path(tmp) / f"r{r}-{name}"
                s, peak, total = timed(name, source, target)
                seconds[name].append(s)
                peaks[name].append(peak)
                totals[name].append(total)
                if name not in ("searchsvc",):
                    shutil.rmtree(target, ignore_errors=True)

    ours = statistics.median(seconds["searchsvc"])
    summary = {
        "documents": documents,
        "copies": args.copies,
        "megabytes": round(megabytes, 1),
        "rounds": rounds,
        "cpus": os.cpu_count(),
        "variants": {
            name: {
                "seconds": round(statistics.median(seconds[name]), 2),
                "mb_per_s": round(megabytes / statistics.median(seconds[name]), 2),
                "peak_mb": max(peaks[name]),
                "peak_total_mb": max(totals[name]),
                "time_ratio_to_searchsvc": round(statistics.median(seconds[name]) / ours, 2),
            }
            for name in variants
        },
    }
    v = summary["variants"]
    # How many times as fast as ours each other variant is (below 1: slower than ours).
    summary["speed_vs_searchsvc"] = {name: round(ours / row["seconds"], 2) for name, row in v.items()
                                     if not name.startswith("searchsvc")}
    summary["reingest_speedup"] = round(ours / v["searchsvc re-ingest"]["seconds"], 1)
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"{documents:,} documents ({args.copies} cop{'y' if args.copies == 1 else 'ies'}), "
          f"{summary['megabytes']} MB, {rounds} round(s), {os.cpu_count()} CPUs; medians")
    print(f"{'variant':<28}{'seconds':>9}{'MB/s':>8}{'peak MB':>9}{'all procs':>10}{'x ours':>8}")
    for name, row in v.items():
        print(f"{name:<28}{row['seconds']:>9}{row['mb_per_s']:>8}{row['peak_mb']:>9}{row['peak_total_mb']:>10}"
              f"{row['time_ratio_to_searchsvc']:>8}")
    print("speed against searchsvc (its time / theirs): "
          + ", ".join(f"{name} {x}x" for name, x in summary["speed_vs_searchsvc"].items())
          + f"; re-ingesting unchanged is {summary['reingest_speedup']}x faster than the first ingest")


if __name__ == "__main__":
    main()
