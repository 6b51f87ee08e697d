"""The benchmarks run (in their smoke mode), so they never rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def smoke(script: str) -> dict:
    """Run a benchmark in its smoke mode and return its JSON summary."""
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--smoke", "--json"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_quality_benchmark_smoke():
    summary = smoke("quality.py")
    assert summary["queries"] == 50
    # 50 claims over their judged abstracts and 300 others: a broken ranking scores far lower.
    assert 0.6 < summary["ndcg@10"] <= 1.0
    assert 0.8 < summary["recall@100"] <= 1.0


def test_search_benchmark_smoke():
    summary = smoke("search.py")
    assert summary["documents"] == 300
    assert set(summary["classes"]) == {"rare word", "common word", "2-word AND", "3-word AND", "phrase",
                                       "word + date range", "date range, newest", "word, newest"}
    assert summary["all"]["ours_p50_ms"] > 0 and summary["all"]["fts5_p50_ms"] > 0


def test_ingest_benchmark_smoke():
    summary = smoke("ingest.py")
    assert summary["documents"] == 300
    assert set(summary["variants"]) == {
        "searchsvc", "searchsvc re-ingest", "whoosh procs=2, our schema", "whoosh procs=2", "whoosh serial", "fts5"
    }
    assert all(v["seconds"] > 0 and v["peak_mb"] > 0 for v in summary["variants"].values())


def test_serving_benchmark_smoke():
    summary = smoke("serving.py")
    assert summary["documents"] == 300
    ours = summary["searchsvc"]
    assert ours["requests"] > 0 and ours["non_2xx"] == 0 and ours["socket_errors"] == 0
    assert len(ours["worker_mb_start"]["private"]) == len(ours["worker_mb_end"]["rss"]) == 2
    assert summary["fts5_baseline"]["requests"] > 0


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
