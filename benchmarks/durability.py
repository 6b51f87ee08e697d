"""What durability costs: durable commits against the same ingest with its syncs left out, and
checking an index (`searchsvc check`, and a server's first open).

    python benchmarks/durability.py                 # the presidential corpus, 3 interleaved rounds (~10 min)
    python benchmarks/durability.py --rounds 1      # one round
    python benchmarks/durability.py --smoke --json  # 300 documents: checks it runs

Ingest: `searchsvc ingest FILE` into an empty directory (a first commit), then `searchsvc ingest`
of 100 more posts (an incremental commit), each in a fresh process, in two variants run in
turn: as shipped, and with `manifest.sync_file` / `sync_folder` replaced by no-ops (the
baseline: the same work without fsync). The time spent hashing new files (BLAKE2b) is
reported from the shipped variant. Check: `searchsvc check` of the result (every byte, warm
page cache), in seconds and seconds per 100 MB; open: the server's first open of the index,
which checks every byte too.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CORPORA = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora"
PRESIDENTIAL = CORPORA / "us_presidential_documents.jsonl.gz"

CHILD = r"""
import json, sys, time
from searchsvc.index import manifest
spent = {"sync": 0.0, "hash": 0.0}
def timed(name, f):
    def wrapper(*args):
        started = time.perf_counter()
        try:
            return f(*args)
        finally:
            spent[name] += time.perf_counter() - started
    return wrapper
if sys.argv[1] == "nosync":
    manifest.sync_file = manifest.sync_folder = lambda path: None
else:
    manifest.sync_file = timed("sync", manifest.sync_file)
    manifest.sync_folder = timed("sync", manifest.sync_folder)
manifest.file_sum = timed("hash", manifest.file_sum)
from searchsvc.cli import cli
started = time.perf_counter()
try:
    cli.main(["ingest", "--quiet", "--index", sys.argv[2], sys.argv[3]], standalone_mode=False)
except SystemExit as e:
    if e.code:
        raise
print(json.dumps({"seconds": time.perf_counter() - started, **spent}))
"""


def ingest(variant: str, index: Path, source: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, variant, str(index), str(source)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])  # after the ingest's own summary line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="300 documents, one round")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    args = parser.parse_args()
    rounds = 1 if args.smoke else args.rounds
    work = Path(tempfile.mkdtemp(prefix="durability-bench-"))
    try:
        with gzip.open(PRESIDENTIAL, "rt", encoding="utf-8") as f:
            lines = f.readlines()
        if args.smoke:
            lines = lines[:400]
        base, more = work / "base.jsonl", work / "more.jsonl"
        base.write_text("".join(lines[:-100]), encoding="utf-8")
        more.write_text("".join(lines[-100:]), encoding="utf-8")
        results: dict[str, dict[str, list[float]]] = {v: {} for v in ("durable", "nosync")}
        for n in range(rounds):
            for variant in ("durable", "nosync") if n % 2 == 0 else ("nosync", "durable"):
                index = work / f"{variant}-{n}"
                for step, source in (("first", base), ("incremental", more)):
                    measured = ingest(variant, index, source)
                    for key, value in measured.items():
                        results[variant].setdefault(f"{step}_{key}", []).append(value)
                if variant == "durable":
                    checked = subprocess.run([sys.executable, "-m", "searchsvc", "check", "--index", str(index)],
                                             capture_output=True, text=True, check=True)
                    results[variant].setdefault("check_seconds", []).append(
                        float(checked.stdout.rsplit(" in ", 1)[1].split(" s")[0]))
                    size = sum(p.stat().st_size for p in index.rglob("*") if p.is_file())
                    results[variant].setdefault("index_mb", []).append(size / 1e6)
                    results[variant].setdefault("open_seconds", []).append(_first_open(index))
                if n < rounds - 1 or variant != "durable":
                    shutil.rmtree(index, ignore_errors=True)
        medians = {v: {k: round(statistics.median(x), 4) for k, x in r.items()} for v, r in results.items()}
        d, b = medians["durable"], medians["nosync"]
        summary = {
            "documents": len(lines),
            "rounds": rounds,
            "first_ingest_s": {"durable": d["first_seconds"], "nosync": b["first_seconds"],
                               "ratio": round(d["first_seconds"] / b["first_seconds"], 3),
                               "sync_s": d["first_sync"], "hash_s": d["first_hash"]},
            "incremental_ingest_s": {"durable": d["incremental_seconds"], "nosync": b["incremental_seconds"],
                                     "ratio": round(d["incremental_seconds"] / b["incremental_seconds"], 3),
                                     "sync_s": d["incremental_sync"], "hash_s": d["incremental_hash"]},
            "index_mb": round(d["index_mb"], 1),
            "check_s": d["check_seconds"],
            "check_s_per_100mb": round(d["check_seconds"] / d["index_mb"] * 100, 3),
            "first_open_s": d["open_seconds"],
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    for key, value in summary.items():
        print(f"{key}: {value}")


def _first_open(index: Path) -> float:
    """A server process's first open: the sizes, then every byte (search/engine.py)."""
    code = ("import sys, time; from searchsvc.index.store import IndexStore; from searchsvc.search.engine import "
            "Engine; e = Engine(IndexStore(sys.argv[1])); t = time.perf_counter(); e.searcher(); "
            "print(time.perf_counter() - t)")
    done = subprocess.run([sys.executable, "-c", code, str(index)], capture_output=True, text=True, check=True)
    return float(done.stdout)


if __name__ == "__main__":
    main()
