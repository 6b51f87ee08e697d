"""Ranking quality on SciFact: nDCG@10 and Recall@100 of our search against the train qrels.

    python benchmarks/quality.py                 # full run (5,183 abstracts, 809 claims)
    python benchmarks/quality.py --smoke         # a few hundred abstracts, to keep it from rotting
    python benchmarks/quality.py --json

It ingests the corpus with our own ingest code into a temporary index and sends every
claim through `searchsvc.search.run.search`, the code path of the API, with OR semantics
(claims are long sentences; AND would find almost nothing). Claims are sent as plain
words: their punctuation is not query syntax. Binary gains, as trec_eval's ndcg_cut.10.

Reference points on SciFact: Anserini BM25 0.6789 (one field), 0.6647 (two fields);
SQLite FTS5 about 0.68 (the test split; we tune on train, the only one here).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from searchsvc.errors import BadQuery
from searchsvc.index.store import IndexStore
from searchsvc.ingest.batch import IngestReport, read_batch, write_batch
from searchsvc.search.engine import Engine
from searchsvc.search.request import SearchRequest
from searchsvc.search.run import search

SCIFACT = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora" / "scifact"


def load_qrels(path: Path) -> dict[str, set[str]]:
    qrels: dict[str, set[str]] = defaultdict(set)
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[0] != "query-id" and int(parts[2]) > 0:
            qrels[parts[0]].add(parts[1])
    return qrels


def load_queries(path: Path) -> dict[str, str]:
    queries = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        qid, _, text = line.partition("\t")
        if text:
            queries[qid] = text
    return queries


def as_plain_words(text: str) -> str:
    """A claim as a bag of words: punctuation and operator words are not syntax here."""
    words = re.sub(r"[^\w\s]", " ", text).split()
    return " ".join(w.lower() if w in ("AND", "OR", "NOT", "ANDNOT") else w for w in words)


def ndcg_at_10(ranked: list[str], relevant: set[str]) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, doc in enumerate(ranked[:10]) if doc in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
    return dcg / ideal if ideal else 0.0


def recall_at_100(ranked: list[str], relevant: set[str]) -> float:
    return len(set(ranked[:100]) & relevant) / len(relevant) if relevant else 0.0


def build_index(corpus: Path, index: Path, keep: set[str] | None, limit: int | None) -> float:
    started = time.perf_counter()
    source = corpus
    if keep is not None or limit is not None:
        # Smoke mode: the judged documents plus the first `limit` others.
        lines = corpus.read_text(encoding="utf-8").splitlines()
        chosen = [line for n, line in enumerate(lines)
                  if (limit is not None and n < limit) or json.loads(line)["id"] in (keep or set())]
        source = index.parent / "corpus.jsonl"
        source.write_text("\n".join(chosen) + "\n", encoding="utf-8")
    report = IngestReport()
    batch = read_batch([str(source)], report)
    write_batch(IndexStore(index), batch, report, rebuild=False, wait=0)
    if report.invalid:
        sys.exit(f"{report.invalid} invalid records: {report.problems[:3]}")
    return time.perf_counter() - started


def evaluate(index: Path, queries: dict[str, str], qrels: dict[str, set[str]]) -> dict[str, float]:
    engine = Engine(IndexStore(index))
    ndcgs, recalls, times = [], [], []
    for qid, relevant in qrels.items():
        if qid not in queries:
            continue
        request = SearchRequest(q=as_plain_words(queries[qid]), per_page=100, operator="or")
        started = time.perf_counter()
        try:
            ranked = [hit.id for hit in search(engine, request).hits]
        except BadQuery:
            ranked = []
        times.append(time.perf_counter() - started)
        ndcgs.append(ndcg_at_10(ranked, relevant))
        recalls.append(recall_at_100(ranked, relevant))
    times.sort()
    return {
        "queries": len(ndcgs),
        "ndcg@10": round(sum(ndcgs) / len(ndcgs), 4),
        "recall@100": round(sum(recalls) / len(recalls), 4),
        "median_ms": round(times[len(times) // 2] * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scifact", type=Path, default=SCIFACT, help="folder with corpus.jsonl and the train files")
    parser.add_argument("--smoke", action="store_true", help="300 abstracts and 50 claims: checks it runs")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    args = parser.parse_args()

    qrels = load_qrels(args.scifact / "qrels_train.tsv")
    queries = load_queries(args.scifact / "queries_train.tsv")
    keep, limit = None, None
    if args.smoke:
        qrels = dict(list(qrels.items())[:50])
        keep = {doc for docs in qrels.values() for doc in docs}
        limit = 300
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "index"
        ingest_s = build_index(args.scifact / "corpus.jsonl", index, keep, limit)
        summary = {"ingest_s": round(ingest_s, 1), **evaluate(index, queries, qrels),
                   "reference": {"anserini_bm25_one_field": 0.6789, "anserini_bm25_two_fields": 0.6647,
                                 "sqlite_fts5": 0.68}}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"SciFact train: {summary['queries']} claims, index built in {summary['ingest_s']} s")
        print(f"  nDCG@10     {summary['ndcg@10']:.4f}   (Anserini BM25 0.6789 / 0.6647, FTS5 ~0.68)")
        print(f"  Recall@100  {summary['recall@100']:.4f}")
        print(f"  median search {summary['median_ms']} ms (top 100 with snippets)")


if __name__ == "__main__":
    main()
