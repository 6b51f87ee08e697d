"""The benchmarks run (in their smoke mode), so they never rot."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def smoke(script: str, *options: str) -> dict:
    """Run a benchmark in its smoke mode and return its JSON summary."""
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--smoke", "--json", *options],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_quality_benchmark_smoke():
    summary = smoke("quality.py")
    assert summary["queries"] == 50
    # 50 claims over their judged abstracts and 300 others: a broken ranking scores far lower.
    assert 0.6 < summary["ndcg@10"] <= 1.0
    assert 0.8 < summary["recall@100"] <= 1.0


CLASSES = {"rare word", "common word", "2-word AND", "3-word AND", "phrase", "word + date range",
           "date range, newest", "word, newest", "2-word OR", "prefix*"}


def test_search_benchmark_smoke():
    summary = smoke("search.py")
    assert summary["documents"] == 300 and summary["queries"] == 30 and summary["dropped"] == []
    assert set(summary["classes"]) == CLASSES
    assert all(row["queries"] == 3 for row in summary["classes"].values())
    everything = summary["all"]
    assert everything["ours_p50_ms"] > 0 and everything["fts5_p50_ms"] > 0 and everything["tantivy_p50_ms"] > 0
    assert everything["ours_per_tantivy"] > 0 and everything["ours_per_fts5"] > 0
    # Same posts, same queries: the engines mostly agree on how many posts match (stemmers differ a little).
    assert everything["same_total_as_ours"]["tantivy"] >= 0.8 and everything["same_total_as_ours"]["fts5"] >= 0.8
    assert all(row["mb"] > 0 and row["build_s"] > 0 for row in summary["indexes"].values())


def test_search_benchmark_queries_are_distinct_and_deterministic():
    spec = importlib.util.spec_from_file_location("_corpus", ROOT / "benchmarks" / "_corpus.py")
    _corpus = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(_corpus)
    records = _corpus.load(_corpus.PRESIDENTIAL, 300)
    made = _corpus.queries(records, 30)
    assert made == _corpus.queries(records, 30)
    assert len(made) == 300 and {cls for cls, _ in made} == CLASSES
    assert len({tuple(sorted(params.items())) for _, params in made}) == 300


def test_ingest_benchmark_smoke():
    summary = smoke("ingest.py")
    assert summary["documents"] == 300
    assert set(summary["variants"]) == {
        "searchsvc", "searchsvc re-ingest", "whoosh procs=2, our schema", "whoosh procs=2", "whoosh serial", "fts5",
        "tantivy",
    }
    assert all(v["seconds"] > 0 and 0 < v["peak_mb"] <= v["peak_total_mb"] for v in summary["variants"].values())


def test_ingest_benchmark_copies_smoke():
    summary = smoke("ingest.py", "--copies", "2", "--skip-whoosh")
    assert summary["documents"] == 600 and summary["copies"] == 2
    assert set(summary["variants"]) == {"searchsvc", "searchsvc re-ingest", "fts5", "tantivy"}


def test_serving_benchmark_smoke():
    summary = smoke("serving.py")
    assert summary["documents"] == 300
    ours = summary["searchsvc"]
    assert ours["requests"] > 0 and ours["non_2xx"] == 0 and ours["socket_errors"] == 0
    assert len(ours["worker_mb_start"]["private"]) == len(ours["worker_mb_end"]["rss"]) == 2
    assert summary["fts5_baseline"]["requests"] > 0 and summary["tantivy_baseline"] is None


def test_serving_benchmark_distinct_smoke():
    summary = smoke("serving.py", "--distinct", "300", "--peers", "fts5,tantivy")
    assert summary["mix"] == "distinct" and summary["distinct_requests"] == 300
    for name in ("searchsvc", "fts5_baseline", "tantivy_baseline"):
        row = summary[name]
        assert row["requests"] > 0 and row["non_2xx"] == 0 and row["socket_errors"] == 0
        # A query is sent again only once the whole list has been sent.
        assert row["repeats"] >= row["requests"] - 300
    assert summary["throughput_ratio_to_fts5"] > 0 and summary["throughput_ratio_to_tantivy"] > 0


def test_soak_benchmark_smoke():
    summary = smoke("soak.py")
    assert summary["documents"] == 300 and summary["seconds"] == 10
    assert summary["requests"] > 0 and summary["non_2xx"] == 0 and summary["socket_errors"] == 0
    assert summary["distinct_requests"] > 40
    assert summary["peak_private_mb"] > 0 and len(summary["private_mb_over_time"]) >= 3


def test_suggest_benchmark_smoke():
    summary = smoke("suggest.py")
    assert summary["documents"] == 300 and summary["cases"] == 25
    assert summary["ours"]["issue"] == {"uyghur": "uyghur", "uigur": "uyghur", "slavry": "slavery",
                                        "civl rights": "civil rights", "goverment": "government"}
    assert summary["ours"]["share_corrected"] >= 0.8
    assert summary["first_version"]["cases"] == 25 and summary["first_version"]["respell_p50_ms"] > 0


def test_durability_benchmark_smoke():
    summary = smoke("durability.py")
    assert summary["documents"] == 400
    for step in ("first_ingest_s", "incremental_ingest_s"):
        assert summary[step]["durable"] > 0 and summary[step]["nosync"] > 0 and summary[step]["sync_s"] > 0
    assert summary["check_s"] >= 0 and summary["index_mb"] > 0 and summary["first_open_s"] > 0


def test_replicas_benchmark_smoke():
    summary = smoke("replicas.py")
    assert summary["documents"] == 300 and summary["distinct_requests"] == 500
    assert list(summary["setups"]) == ["direct", "1 replica", "2 replicas x 1 worker", "2 replicas x 2 workers"]
    for row in summary["setups"].values():
        assert row["requests"] > 0 and row["non_2xx"] == 0 and row["socket_errors"] == 0
    assert summary["setups"]["direct"]["vs_direct"] == 1.0


def test_turkish_benchmark_smoke():
    summary = smoke("turkish.py")
    assert (summary["posts"], summary["lemmas"]) == (200, 10)
    typed = summary["search"]["as typed"]
    # The Turkish stems: 0.61 recall with English folding alone; 0.97 on the full run.
    assert typed["recall"] > 0.9 and typed["precision"] > 0.95
    assert set(typed["per_lemma"]) == {"borsa", "dolar", "euro", "faiz", "enflasyon", "piyasa", "banka", "şirket",
                                       "yatırım", "yatırımcı"}


def test_scaling_benchmark_smoke():
    summary = smoke("scaling.py")
    assert summary["sizes"] == [500, 1000, 2000]
    assert all(row["seconds"] > 0 and row["peak_mb"] > 0 for row in summary["rows"].values())
    assert summary["rows"]["500"]["per_record_vs_smallest"] == 1.0
