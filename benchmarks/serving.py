"""HTTP load: `searchsvc serve` under a Zipf-distributed mix of requests, driven by wrk.

    python benchmarks/serving.py --index /tmp/ixp          # an index of the presidential corpus
    python benchmarks/serving.py                           # builds that index first (~25 s)
    python benchmarks/serving.py --duration 60 --connections 32
    python benchmarks/serving.py --smoke --json            # 300 documents, a few seconds

The server is `searchsvc serve --workers 2` (gunicorn), the load generator wrk (Debian's
`wrk` package, C, in its own process) with a Lua script that picks each request from a fixed
list by Zipf-distributed rank (s=1.1): at a news moment many people repeat the same few
searches. The list: searches through the API (70%) and the HTML page (20%), and post pages
(10%), over the query mix of benchmarks/search.py plus common words and date ranges.
Baseline, in the same run, the same way: the same URLs answered by a minimal WSGI app on the
same gunicorn settings doing FTS5 top 10 + snippet() + count(*) as JSON.
Reported: requests/s, latency p50/p90/p99 (wrk's, from the start of each request), non-2xx
responses and socket errors, and the resident memory of each server worker at start and end.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

# The FTS5 table and query of search.py, so both baselines are the same.
import search as search_bench

CORPORA = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora"
PRESIDENTIAL = CORPORA / "us_presidential_documents.jsonl.gz"

SEARCHES = [
    {"q": "national emergency"}, {"q": "president"}, {"q": "tariff"}, {"q": "war", "from": "1940", "to": "1945"},
    {"q": '"executive order"'}, {"q": "treaty", "sort": "newest"}, {"q": "health care"}, {"q": "smallpox"},
    {"q": "oil", "from": "1970", "to": "1980"}, {"q": "national security council"}, {"q": "veterans"},
    {"q": "public lands"}, {"from": "1990", "to": "1995"}, {"q": "foreign trade"}, {"q": "thanksgiving"},
    {"q": "armed forces day"}, {"q": '"public lands"'}, {"q": "federal reserve bank"}, {"q": "immigration"},
    {"q": "forest", "sort": "newest"}, {"q": "education"}, {"q": "lighthouse"}, {"q": "bison"}, {"q": "states"},
    {"q": "energy", "from": "1973", "to": "1979"}, {"q": "civil rights"}, {"q": "labor day"}, {"q": "space"},
    {"q": "nuclear weapons"}, {"q": "drought"}, {"q": "terrorism", "sort": "newest"}, {"q": "flood disaster"},
    {"from": "1960", "to": "1969"}, {"q": "agriculture"}, {"q": "mother's day"}, {"q": "independence"},
    {"q": "cuba"}, {"q": "china trade"}, {"q": "budget deficit"}, {"q": "small business"},
]


def request_paths(post_ids: list[str], rng: random.Random) -> list[str]:
    """The distinct requests, most popular first."""
    paths = []
    for params in SEARCHES:
        paths.append("/api/search?" + urlencode(params))
        if rng.random() < 0.3:
            paths.append("/?" + urlencode(params))
        if rng.random() < 0.15:
            paths.append("/posts/" + rng.choice(post_ids))
    return paths


def lua_script(paths: list[str], s: float = 1.1, slots: int = 2000) -> str:
    weights = [1 / (rank + 1) ** s for rank in range(len(paths))]
    total = sum(weights)
    table = []
    for path, weight in zip(paths, weights, strict=True):
        table += [path] * max(1, round(slots * weight / total))
    entries = ",\n".join(json.dumps(p) for p in table)
    return f"""
local paths = {{
{entries}
}}
math.randomseed(os.time())
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {{"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p95_us": %d, "p99_us": %d, '
    .. '"max_us": %d, "non_2xx": %d, "connect": %d, "read": %d, "write": %d, "timeout": %d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(95), latency:percentile(99), latency.max, e.status, e.connect, e.read, e.write, e.timeout))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server at {url} did not answer")


def worker_memory_mb(master_pid: int) -> dict[str, list[int]]:
    """Memory of each child (worker) of the gunicorn master: `rss` is everything resident,
    `private` its anonymous part (RssAnon). The rest is the index's files mapped by Whoosh,
    page cache the workers share and the kernel can drop."""
    rss, private = [], []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("PPid", "").strip() == str(master_pid):
            rss.append(round(int(fields["VmRSS"].split()[0]) / 1024))
            private.append(round(int(fields["RssAnon"].split()[0]) / 1024))
    return {"rss": sorted(rss), "private": sorted(private)}


def run_wrk(base: str, script: Path, duration: int, connections: int) -> dict:
    done = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-s", str(script), base],
        capture_output=True, text=True, check=True,
    )
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("RESULT "))
    raw = json.loads(line[len("RESULT "):])
    errors = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    return {
        "requests": raw["requests"],
        "requests_per_s": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "p50_ms": round(raw["p50_us"] / 1000, 1),
        "p90_ms": round(raw["p90_us"] / 1000, 1),
        "p95_ms": round(raw["p95_us"] / 1000, 1),
        "p99_ms": round(raw["p99_us"] / 1000, 1),
        "max_ms": round(raw["max_us"] / 1000, 1),
        "non_2xx": raw["non_2xx"],
        "socket_errors": errors,
    }


def measure(command: list[str], port: int, script: Path, args: argparse.Namespace) -> dict:
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(base + "/healthz")
        run_wrk(base, script, max(1, args.duration // 10), args.connections)  # warm-up, not counted
        start_memory = worker_memory_mb(server.pid)
        result = run_wrk(base, script, args.duration, args.connections)
        result["worker_mb_start"] = start_memory
        result["worker_mb_end"] = worker_memory_mb(server.pid)
        return result
    finally:
        server.terminate()
        server.wait(timeout=30)


# The baseline server: the same URLs, answered from FTS5.

def fts_app(db_path: str):
    local = {}

    def app(environ, start_response):
        from urllib.parse import parse_qs

        db = local.get("db") or local.setdefault("db", sqlite3.connect(db_path, check_same_thread=False))
        path = environ["PATH_INFO"]
        params = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        if path.startswith("/posts/"):
            row = db.execute("SELECT id, title, date, author, body FROM posts WHERE id = ?", (path[7:],)).fetchone()
            body = {"post": row}
        elif path == "/healthz":
            body = {"status": "ok"}
        else:
            try:
                total, hits = search_bench.fts_query(db, params)
            except sqlite3.OperationalError as e:
                start_response("400 Bad Request", [("Content-Type", "application/json")])
                return [json.dumps({"error": str(e)}).encode()]
            body = {"total": total, "hits": hits}
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]

    return app


def serve_fts(db_path: str, port: int, workers: int) -> None:
    from gunicorn.app.base import BaseApplication

    class Baseline(BaseApplication):
        def load_config(self):
            for key, value in {"bind": f"127.0.0.1:{port}", "workers": workers, "timeout": 30}.items():
                self.cfg.set(key, value)

        def load(self):
            return fts_app(db_path)

    Baseline().run()


def build(corpus: Path, tmp: Path, limit: int | None) -> tuple[Path, Path, list[str]]:
    source = tmp / "corpus.jsonl"
    records = []
    with gzip.open(corpus, "rt", encoding="utf-8") as f, source.open("w", encoding="utf-8") as out:
        for n, line in enumerate(f):
            if limit is not None and n >= limit:
                break
            out.write(line)
            records.append(json.loads(line))
    db_path = tmp / "fts.db"
    search_bench.build_fts(records, db_path).close()
    return source, db_path, [str(r["id"]) for r in records]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=PRESIDENTIAL)
    parser.add_argument("--index", type=Path, help="an existing searchsvc index of the same corpus")
    parser.add_argument("--duration", type=int, default=30, help="seconds of measured load per server")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="300 documents, 2 seconds")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve-fts", nargs=2, metavar=("DB", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fts:
        serve_fts(args.serve_fts[0], int(args.serve_fts[1]), args.workers)
        return
    if args.smoke:
        args.duration, args.connections = 2, 4

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        source, db_path, post_ids = build(args.corpus, tmp, 300 if args.smoke else None)
        index = args.index
        if index is None:
            index = tmp / "index"
            subprocess.run([sys.executable, "-m", "searchsvc", "ingest", "--quiet", "--index", str(index),
                            str(source)], check=True, stdout=subprocess.DEVNULL)
        script = tmp / "mix.lua"
        paths = request_paths(post_ids, random.Random(7))
        script.write_text(lua_script(paths), encoding="utf-8")
        port = free_port()
        ours = measure([sys.executable, "-m", "searchsvc", "serve", "--index", str(index), "--port", str(port),
                        "--workers", str(args.workers)], port, script, args)
        baseline = None
        if not args.skip_baseline:
            port = free_port()
            baseline = measure([sys.executable, __file__, "--serve-fts", str(db_path), str(port),
                                "--workers", str(args.workers)], port, script, args)

    summary = {
        "documents": len(post_ids),
        "distinct_requests": len(paths),
        "duration_s": args.duration,
        "connections": args.connections,
        "workers": args.workers,
        "cpus": os.cpu_count(),
        "searchsvc": ours,
        "fts5_baseline": baseline,
    }
    if baseline:
        summary["throughput_ratio_to_fts5"] = round(ours["requests_per_s"] / baseline["requests_per_s"], 2)
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"{summary['documents']} documents, {len(paths)} distinct requests (Zipf s=1.1), "
          f"{args.connections} connections, {args.duration} s, {args.workers} workers, {os.cpu_count()} CPUs")
    print(f"{'server':<12}{'req/s':>8}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}{'non-2xx':>9}{'errors':>8}"
          "  worker MB private (rss), start -> end")
    for name, row in (("searchsvc", ours), ("FTS5", baseline)):
        if row:
            print(f"{name:<12}{row['requests_per_s']:>8}{row['p50_ms']:>8}{row['p90_ms']:>8}{row['p99_ms']:>8}"
                  f"{row['non_2xx']:>9}{row['socket_errors']:>8}  {row['worker_mb_start']['private']} "
                  f"({row['worker_mb_start']['rss']}) -> {row['worker_mb_end']['private']} "
                  f"({row['worker_mb_end']['rss']})")


if __name__ == "__main__":
    main()
