"""Read replicas behind HAProxy (deploy/haproxy.cfg), against one server without a proxy, in one run.

    python benchmarks/replicas.py --index /tmp/ixr          # 10,419 posts; built there if missing
    python benchmarks/replicas.py --smoke --json            # 300 documents, a few seconds a setup

Setups, each driven by wrk (2 threads, `--connections`) with distinct API searches that no
cache can answer (serving.py's `--distinct` mix), after a warm-up with other queries:
- direct: `searchsvc serve --workers 2` on the index, no proxy (the baseline);
- 1 replica: HAProxy in front of one replica (`--workers 2`) the index was published to;
- 2 replicas x 1 worker: the same two cores' worth of workers, split over two replicas;
- 2 replicas x 2 workers.
On a 2-core machine the replicas share the cores, so the point is what the proxy and the split
cost, not a speed-up: more replicas add throughput only with more machines.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _corpus import PRESIDENTIAL, SEED, load
from serving import cycle_script, distinct_paths, free_port, ingest_ours, run_wrk, wait_ready

ROOT = Path(__file__).resolve().parent.parent
SETUPS = ["direct", "1 replica", "2 replicas x 1 worker", "2 replicas x 2 workers"]


def start_replica(index: Path, workers: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "SEARCHSVC_INDEX": str(index), "SEARCHSVC_TRUST_PROXY": "1"}
    server = subprocess.Popen([sys.executable, "-m", "searchsvc", "serve", "--port", str(port),
                               "--workers", str(workers)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(f"http://127.0.0.1:{port}/healthz")
    return server, port


def start_proxy(ports: list[int]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "SEARCHSVC_LISTEN": f"127.0.0.1:{port}", "SEARCHSVC_RATE_10S": "100000000",
           "SEARCHSVC_REPLICA1": f"127.0.0.1:{ports[0]}", "SEARCHSVC_REPLICA2": f"127.0.0.1:{ports[-1]}"}
    proxy = subprocess.Popen(["haproxy", "-db", "-f", str(ROOT / "deploy" / "haproxy.cfg")], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(f"http://127.0.0.1:{port}/healthz")
    return proxy, port


def measure(setup: str, replicas: list[Path], script: Path, warm: Path, args: argparse.Namespace) -> dict:
    processes = []
    try:
        if setup == "direct":
            server, port = start_replica(replicas[0], 2)
            processes.append(server)
        else:
            count, workers = (1, 2) if setup == "1 replica" else (2, int(setup.split(" x ")[1][0]))
            ports = []
            for index in replicas[:count]:
                server, replica_port = start_replica(index, workers)
                processes.append(server)
                ports.append(replica_port)
            proxy, port = start_proxy(ports)
            processes.append(proxy)
        base = f"http://127.0.0.1:{port}"
        run_wrk(base, warm, max(1, args.duration // 10), args.connections)
        return run_wrk(base, script, args.duration, args.connections)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=PRESIDENTIAL)
    parser.add_argument("--index", type=Path, help="our index of the corpus (built there if missing)")
    parser.add_argument("--distinct", type=int, default=20000)
    parser.add_argument("--duration", type=int, default=20, help="seconds of load per setup")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--smoke", action="store_true", help="300 documents, 2 s a setup")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.duration, args.distinct = 2, 500
    original = load(args.corpus, 300 if args.smoke else None)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        index = args.index or tmp / "index"
        if not index.exists():
            ingest_ours(original, 1, index, tmp)
        replicas = []
        for n in (1, 2):
            replica = tmp / f"replica{n}"
            subprocess.run([sys.executable, "-m", "searchsvc", "publish", "--index", str(index), str(replica)],
                           check=True, stdout=subprocess.DEVNULL)
            replicas.append(replica)
        paths = distinct_paths(original, args.distinct + max(50, args.distinct // 10), args.seed)
        paths, warm_paths = paths[:args.distinct], paths[args.distinct:]
        script, warm = tmp / "mix.lua", tmp / "warm.lua"
        script.write_text(cycle_script(paths), encoding="utf-8")
        warm.write_text(cycle_script(warm_paths), encoding="utf-8")
        rows = {setup: measure(setup, replicas, script, warm, args) for setup in SETUPS}
        for replica in replicas:
            shutil.rmtree(replica, ignore_errors=True)
    direct = rows["direct"]["requests_per_s"]
    summary = {"documents": len(original), "distinct_requests": len(paths), "duration_s": args.duration,
               "connections": args.connections, "cpus": os.cpu_count(),
               "setups": {name: {**row, "vs_direct": round(row["requests_per_s"] / direct, 2)}
                          for name, row in rows.items()}}
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"{summary['documents']:,} posts, {len(paths):,} distinct searches, {args.duration} s a setup, "
          f"{args.connections} connections, {os.cpu_count()} CPUs")
    print(f"{'setup':<26}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'non-2xx':>9}{'errors':>8}{'repeats':>9}"
          f"{'x direct':>10}")
    for name, row in summary["setups"].items():
        print(f"{name:<26}{row['requests_per_s']:>8}{row['p50_ms']:>8}{row['p99_ms']:>8}{row['non_2xx']:>9}"
              f"{row['socket_errors']:>8}{row['repeats']:>9}{row['vs_direct']:>10}")


if __name__ == "__main__":
    main()
