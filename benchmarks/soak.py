"""Soak: `searchsvc serve` under a realistic mix for a long time; does it hold, does it leak?

    python benchmarks/soak.py --index /tmp/ixp --minutes 10     # an index of the presidential corpus
    python benchmarks/soak.py --minutes 10 --workers 2          # builds that index first (~25 s)
    python benchmarks/soak.py --smoke --json                    # 300 documents, 10 seconds

Starts `searchsvc serve --workers N`, then drives it from wrk (Debian's `wrk`, its own
process) with a Zipf-ranked mix: API searches, search pages, post pages, Atom feeds and
CSV/JSONL exports of narrow searches (a few percent: exports stream every match). Worker
memory is sampled every `--sample` seconds. Reported: requests/s, latency p50/p95/p99,
non-2xx responses and socket errors, and worker memory (private and resident) at the start,
the end and its peak.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import serving as bench
from _corpus import PRESIDENTIAL, load


def mix(post_ids: list[str], rng: random.Random) -> list[str]:
    paths = []
    for params in bench.SEARCHES:
        paths.append("/api/search?" + urlencode(params))
        paths.append("/?" + urlencode(params))
        paths.append("/posts/" + rng.choice(post_ids))
        if rng.random() < 0.3:
            paths.append("/feed.atom?" + urlencode(params))
    # Narrow exports: a rare word or a short date range, in both formats.
    for params in ({"q": "smallpox"}, {"q": "lighthouse", "format": "csv"}, {"q": "bison"},
                   {"q": "treaty", "from": "1800", "to": "1805", "format": "csv"}):
        paths.insert(rng.randrange(10, len(paths)), "/api/export?" + urlencode(params))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=PRESIDENTIAL)
    parser.add_argument("--index", type=Path, help="an existing searchsvc index of the same corpus")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--sample", type=float, default=30, help="seconds between memory samples")
    parser.add_argument("--smoke", action="store_true", help="300 documents, 10 seconds")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    seconds = 10 if args.smoke else int(args.minutes * 60)
    if args.smoke:
        args.connections, args.sample = 4, 2

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        original = load(args.corpus, 300 if args.smoke else None)
        post_ids = [str(r["id"]) for r in original]
        index = args.index
        if index is None:
            index = tmp / "index"
            bench.ingest_ours(original, 1, index, tmp)
        paths = mix(post_ids, random.Random(11))
        script = tmp / "soak.lua"
        script.write_text(bench.lua_script(paths), encoding="utf-8")
        port = bench.free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, "-m", "searchsvc", "serve", "--index", str(index),
                                   "--port", str(port), "--workers", str(args.workers)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            bench.wait_ready(base + "/healthz")
            bench.run_wrk(base, script, 2, args.connections)  # warm-up, not counted
            samples = [(0.0, bench.worker_memory_mb(server.pid))]
            started = time.monotonic()
            done = threading.Event()

            def sample() -> None:
                while not done.wait(args.sample):
                    samples.append((round(time.monotonic() - started), bench.worker_memory_mb(server.pid)))

            sampler = threading.Thread(target=sample)
            sampler.start()
            try:
                result = bench.run_wrk(base, script, seconds, args.connections)
            finally:
                done.set()
                sampler.join()
            samples.append((round(time.monotonic() - started), bench.worker_memory_mb(server.pid)))
        finally:
            server.terminate()
            server.wait(timeout=30)

    private = [max(m["private"]) for _, m in samples if m["private"]]
    summary = {
        "documents": len(post_ids),
        "distinct_requests": len(paths),
        "seconds": seconds,
        "workers": args.workers,
        "connections": args.connections,
        "cpus": os.cpu_count(),
        **result,
        "memory_start": samples[0][1],
        "memory_end": samples[-1][1],
        "peak_private_mb": max(private),
        "private_mb_over_time": [(t, max(m["private"])) for t, m in samples if m["private"]],
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"{summary['documents']} documents, {len(paths)} distinct requests, {seconds} s, "
          f"{args.workers} workers, {args.connections} connections")
    print(f"{result['requests_per_s']} requests/s; latency p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, "
          f"p99 {result['p99_ms']} ms, max {result['max_ms']} ms")
    print(f"{result['non_2xx']} non-2xx responses, {result['socket_errors']} socket errors")
    print(f"worker memory, private (resident): start {samples[0][1]['private']} ({samples[0][1]['rss']}) MB, "
          f"end {samples[-1][1]['private']} ({samples[-1][1]['rss']}) MB, private peak {max(private)} MB")
    print("private MB over time (largest worker):", summary["private_mb_over_time"])


if __name__ == "__main__":
    main()
