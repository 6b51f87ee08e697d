"""Ingest time against the number of records in one file: linear, or not.

Tiny synthetic records (a fictional author, a sentence of plainly synthetic text), one JSON Lines
file per size, each ingested by `searchsvc ingest` into an empty folder in a fresh process.
Reported per size: seconds, records a second, peak memory of the ingest's processes, and the
time per record against the smallest size's (1.0 is linear; issue 22 found 80,000 records
taking 12x the time of 20,000 where the file's ids were kept in a list).

    python benchmarks/scaling.py                        # 10k, 100k, 1M records
    python benchmarks/scaling.py --sizes 20000,40000,80000 --rounds 3
    python benchmarks/scaling.py --smoke --json         # 500, 1000, 2000: checks it runs
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def write_records(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            out.write(json.dumps({"id": f"s{i}", "title": f"Synthetic note {i}",
                                  "body": f"Plainly synthetic text, number {i}, by nobody real.",
                                  "author": "Dana Placeholder", "date": f"20{i % 20:02d}-01-02"}) + "\n")


def ingest(path: Path, work: Path) -> tuple[float, float]:
    """Seconds and peak resident MB (the largest of the ingest's process and the helper processes
    it waited for, as wait4 reports) of one ingest into an empty folder."""
    index = work / "index"
    shutil.rmtree(index, ignore_errors=True)
    command = [sys.executable, "-c", "from searchsvc.cli import cli; cli()", "ingest", "--index", str(index),
               str(path)]
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"ingest of {path} failed: {child.stderr.read().decode()}")
    child.stderr.close()
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sizes = [500, 1000, 2000] if args.smoke else [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files = {}
        for n in sizes:
            files[n] = work / f"records-{n}.jsonl"
            write_records(files[n], n)
        times: dict[int, list[float]] = {n: [] for n in sizes}
        peaks: dict[int, list[float]] = {n: [] for n in sizes}
        for _ in range(args.rounds):  # interleaved: a slow moment of the machine hits every size alike
            for n in sizes:
                seconds, peak = ingest(files[n], work)
                times[n].append(seconds)
                peaks[n].append(peak)
    base = statistics.median(times[sizes[0]]) / sizes[0]
    rows = {n: {"seconds": round(statistics.median(times[n]), 2),
                "records_per_s": round(n / statistics.median(times[n])),
                "peak_mb": round(max(peaks[n])),
                "per_record_vs_smallest": round(statistics.median(times[n]) / n / base, 2)} for n in sizes}
    if args.json:
        print(json.dumps({"sizes": sizes, "rounds": args.rounds, "rows": {str(n): r for n, r in rows.items()}}))
        return
    print(f"| records | seconds | records/s | peak MB | time per record / {sizes[0]:,}'s |")
    print("|---|---|---|---|---|")
    for n, r in rows.items():
        print(f"| {n:,} | {r['seconds']} | {r['records_per_s']:,} | {r['peak_mb']} | {r['per_record_vs_smallest']} |")


if __name__ == "__main__":
    main()
