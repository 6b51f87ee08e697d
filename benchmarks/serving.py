"""HTTP load: `searchsvc serve` against FTS5 (and Tantivy) servers on the same gunicorn
settings, driven by wrk, in the same run.

    python benchmarks/serving.py --index /tmp/ixp          # Zipf mix; our index built there if missing
    python benchmarks/serving.py --distinct 20000 --index /tmp/ixp --peers fts5,tantivy
    python benchmarks/serving.py --distinct 20000 --copies 10 --index /tmp/ix100k --peers-dir /tmp/peers100k \\
        --peers fts5,tantivy                               # 104,190 posts
    python benchmarks/serving.py --duration 60 --connections 32
    python benchmarks/serving.py --smoke --json            # 300 documents, a few seconds a server

Our server is `searchsvc serve --workers 2 --threads 8` (gunicorn); each baseline is a small
WSGI app of this file on the same gunicorn settings (2 workers of 8 threads, gthread, keepalive
5 s, timeout 30 s), a database connection or index per thread, answering the same URLs as JSON:
- fts5: top 10 + `snippet()` + `count(*)` (benchmarks/_peers.py, as search.py);
- tantivy: top 10 with the exact count and a SnippetGenerator snippet (same).
The load generator is wrk (Debian's `wrk` package, C, in its own process) with a Lua script,
2 threads, `--connections` connections, one server at a time, each after a warm-up.

Two mixes:
- Zipf (the default): each request picked from a fixed list by Zipf-distributed rank (s=1.1):
  at a news moment many people repeat the same few searches, which our per-worker cache of
  whole results answers. The list: searches through the API (70%) and the HTML page (20%),
  and post pages (10%).
- `--distinct N`: N distinct API searches made from the corpus (the ten classes of search.py,
  fixed seed, shuffled), each wrk thread walking its own half of the list in order, so no
  cache can answer: a query comes back only after the whole list (reported as repeats; a
  searchsvc worker caches 256 results, so a repeat is searched again too). The warm-up uses
  other queries. Size N so that the run sends fewer requests than N: then nothing repeats.
Reported: requests/s, latency p50/p90/p99 (wrk's, from the start of each request), non-2xx
responses and socket errors, and the memory of each server worker at start and end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlencode

import _peers
from _corpus import CLASSES, PRESIDENTIAL, SEED, copy_of, load, queries, write_jsonl
from _stats import processes

PEERS = ("fts5", "tantivy")
NAMES = {"searchsvc": "searchsvc", "fts5": "FTS5", "tantivy": "Tantivy"}
# `searchsvc serve`'s gunicorn settings the baselines copy (searchsvc/web/server.py; keepalive
# is SEARCHSVC_KEEPALIVE's default).
KEEPALIVE, TIMEOUT, GRACEFUL_TIMEOUT = 5, 30, 5
WRK_THREADS = 2

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
    """The distinct requests of the Zipf mix, most popular first."""
    paths = []
    for params in SEARCHES:
        paths.append("/api/search?" + urlencode(params))
        if rng.random() < 0.3:
            paths.append("/?" + urlencode(params))
        if rng.random() < 0.15:
            paths.append("/posts/" + rng.choice(post_ids))
    return paths


def distinct_paths(original: list[dict], n: int, seed: int) -> list[str]:
    """n distinct API searches of every class, shuffled (fewer if the corpus cannot make them)."""
    # A fifth more a class than an even share: a small corpus has too few rare or common words for some.
    per_class = math.ceil(1.2 * n / len(CLASSES))
    while True:
        made = queries(original, per_class, seed)
        if len(made) >= n or per_class > 4 * n:
            break
        per_class += 2 * math.ceil((n - len(made)) / len(CLASSES))
    paths = ["/api/search?" + urlencode(params) for _, params in made]
    random.Random(seed).shuffle(paths)
    return paths[:n]


# wrk's summary, one line of JSON for run_wrk (and the number of requests each thread sent
# past the first walk of its share of the list, in the distinct mix).
DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  local sent, repeats = 0, 0
  for _, t in ipairs(threads) do
    local n, share = t:get("sent") or 0, t:get("share") or 0
    sent = sent + n
    if share > 0 and n > share then repeats = repeats + n - share end
  end
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p95_us": %d, "p99_us": %d, '
    .. '"max_us": %d, "non_2xx": %d, "connect": %d, "read": %d, "write": %d, "timeout": %d, "sent": %d, '
    .. '"repeats": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(95), latency:percentile(99), latency.max, e.status, e.connect, e.read, e.write, e.timeout,
    sent, repeats))
end
"""
SETUP = """
threads = {}
local created = 0
setup = function(thread)
  thread:set("index", created)
  created = created + 1
  table.insert(threads, thread)
end
"""


def lua_script(paths: list[str], s: float = 1.1, slots: int = 2000) -> str:
    """wrk picks each request at random, by Zipf-distributed rank of `paths`."""
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
{SETUP}
math.randomseed(os.time())
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
{DONE}"""


def cycle_script(paths: list[str]) -> str:
    """wrk thread i sends paths i, i+T, i+2T, ... (T threads) in order, then starts over."""
    entries = ",\n".join(json.dumps(p) for p in paths)
    return f"""
local paths = {{
{entries}
}}
{SETUP}
init = function(args)
  position = index + 1
  share = math.floor((#paths - index - 1) / {WRK_THREADS}) + 1
  sent = 0
end
request = function()
  local path = paths[position]
  sent = sent + 1
  position = position + {WRK_THREADS}
  if position > #paths then position = index + 1 end
  return wrk.format("GET", path)
end
{DONE}"""


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
    for _, fields in processes():
        if fields.get("PPid", "").strip() == str(master_pid):
            rss.append(round(int(fields["VmRSS"].split()[0]) / 1024))
            private.append(round(int(fields["RssAnon"].split()[0]) / 1024))
    return {"rss": sorted(rss), "private": sorted(private)}


def run_wrk(base: str, script: Path, duration: int, connections: int) -> dict:
    done = subprocess.run(
        ["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-s", str(script),
         base],
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
        "repeats": raw["repeats"],
    }


def measure(command: list[str], port: int, script: Path, warm_script: Path, args: argparse.Namespace) -> dict:
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(base + "/healthz")
        run_wrk(base, warm_script, max(1, args.duration // 10), args.connections)  # warm-up, not counted
        start_memory = worker_memory_mb(server.pid)
        result = run_wrk(base, script, args.duration, args.connections)
        result["worker_mb_start"] = start_memory
        result["worker_mb_end"] = worker_memory_mb(server.pid)
        return result
    finally:
        server.terminate()
        server.wait(timeout=30)


# The baseline servers: the same URLs, answered from FTS5 or Tantivy.

def peer_app(kind: str, path: str):
    """A WSGI app answering /api/search, / (as the API), /posts/ID and /healthz from one
    baseline, with a connection (or open index) per thread."""
    local = threading.local()

    def opened():
        if not hasattr(local, "engine"):
            local.engine = sqlite3.connect(path) if kind == "fts5" else _peers.open_tantivy(Path(path))
        return local.engine

    def post(engine, post_id: str):
        if kind == "fts5":
            return engine.execute("SELECT id, title, date, author, body FROM posts WHERE id = ?", (post_id,)).fetchone()
        import tantivy

        searcher = engine.searcher()
        found = searcher.search(tantivy.Query.term_query(engine.schema, "id", post_id), 1, count=False)
        return [searcher.doc(address).to_dict() for _, address in found.hits]

    def app(environ, start_response):
        route = environ["PATH_INFO"]
        params = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        status = "200 OK"
        if route == "/healthz":
            body = {"status": "ok"}
        elif route.startswith("/posts/"):
            body = {"post": post(opened(), route[len("/posts/"):])}
        else:
            try:
                query = _peers.fts_query if kind == "fts5" else _peers.tantivy_query
                total, hits = query(opened(), params)
                body = {"total": total, "hits": hits}
            except (sqlite3.OperationalError, ValueError) as e:  # FTS5's or Tantivy's query syntax
                status, body = "400 Bad Request", {"error": str(e)}
        start_response(status, [("Content-Type", "application/json")])
        return [json.dumps(body, default=str).encode()]

    return app


def serve_peer(kind: str, path: str, port: int, workers: int, threads: int) -> None:
    from gunicorn.app.base import BaseApplication

    class Baseline(BaseApplication):
        def load_config(self):
            options = {"bind": f"127.0.0.1:{port}", "workers": workers, "worker_class": "gthread",
                       "threads": threads, "keepalive": KEEPALIVE, "timeout": TIMEOUT,
                       "graceful_timeout": GRACEFUL_TIMEOUT}
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            return peer_app(kind, path)

    Baseline().run()


def ingest_ours(original: list[dict], n_copies: int, index: Path, tmp: Path) -> None:
    """`searchsvc ingest` of each copy in turn (one batch a copy, as search.py builds it)."""
    for k in range(n_copies):
        source = tmp / f"copy{k}.jsonl"
        write_jsonl(copy_of(original, k), source)
        subprocess.run([sys.executable, "-m", "searchsvc", "ingest", "--quiet", "--index", str(index), str(source)],
                       check=True, stdout=subprocess.DEVNULL)
        source.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=PRESIDENTIAL)
    parser.add_argument("--index", type=Path, help="our index of the same corpus and copies (built there if missing)")
    parser.add_argument("--copies", type=int, default=1, help="the corpus this many times (new ids, shifted dates)")
    parser.add_argument("--peers-dir", type=Path,
                        help="where the FTS5 and Tantivy indexes are kept (built there if missing), as search.py's")
    parser.add_argument("--peers", default="fts5", help="baseline servers: fts5, tantivy (comma-separated; '' none)")
    parser.add_argument("--skip-baseline", action="store_true", help="our server only (same as --peers '')")
    parser.add_argument("--distinct", type=int, default=0,
                        help="N distinct API searches, each thread walking its share in order (default: the Zipf mix)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--duration", type=int, default=30, help="seconds of measured load per server")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8, help="threads per worker, ours and the baselines'")
    parser.add_argument("--smoke", action="store_true", help="300 documents, 2 seconds a server")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve-peer", nargs=3, metavar=("KIND", "PATH", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_peer:
        kind, path, port = args.serve_peer
        serve_peer(kind, path, int(port), args.workers, args.threads)
        return
    peers = [] if args.skip_baseline else [p for p in args.peers.split(",") if p]
    if set(peers) - set(PEERS):
        parser.error(f"--peers: choose among {', '.join(PEERS)}")
    if args.smoke:
        args.duration, args.connections = 2, 4

    original = load(args.corpus, 300 if args.smoke else None)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        index = args.index or tmp / "index"
        if not index.exists():
            ingest_ours(original, args.copies, index, tmp)
        folder = args.peers_dir or tmp
        folder.mkdir(parents=True, exist_ok=True)
        for kind in peers:
            built = _peers.fts_in if kind == "fts5" else _peers.tantivy_in
            opened, _ = built(folder, original, args.copies)
            if kind == "fts5":
                opened.close()
        script, warm_script = tmp / "mix.lua", tmp / "warm.lua"
        if args.distinct:
            # The warm-up's queries are others than the measured ones.
            paths = distinct_paths(original, args.distinct + max(50, args.distinct // 10), args.seed)
            paths, warm = paths[:args.distinct], paths[args.distinct:]
            script.write_text(cycle_script(paths), encoding="utf-8")
            warm_script.write_text(cycle_script(warm), encoding="utf-8")
        else:
            paths = request_paths([str(r["id"]) for r in original], random.Random(7))
            script.write_text(lua_script(paths), encoding="utf-8")
            warm_script = script
        results = {}
        port = free_port()
        results["searchsvc"] = measure([sys.executable, "-m", "searchsvc", "serve", "--index", str(index), "--port",
                                        str(port), "--workers", str(args.workers), "--threads", str(args.threads)],
                                       port, script, warm_script, args)
        for kind in peers:
            port = free_port()
            results[kind] = measure([sys.executable, __file__, "--serve-peer", kind, str(folder / _peers.FILES[kind]),
                                     str(port), "--workers", str(args.workers), "--threads", str(args.threads)],
                                    port, script, warm_script, args)

    if not args.distinct:
        for row in results.values():
            row.pop("repeats")  # the Zipf mix repeats by design
    ours = results["searchsvc"]
    summary = {
        "documents": len(original) * args.copies,
        "copies": args.copies,
        "mix": "distinct" if args.distinct else "zipf",
        "distinct_requests": len(paths),
        "duration_s": args.duration,
        "connections": args.connections,
        "workers": args.workers,
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "searchsvc": ours,
        "fts5_baseline": results.get("fts5"),
        "tantivy_baseline": results.get("tantivy"),
    }
    for kind in peers:
        summary[f"throughput_ratio_to_{kind}"] = round(ours["requests_per_s"] / results[kind]["requests_per_s"], 2)
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    mix = ("distinct API searches, each sent once per walk of the list" if args.distinct
           else "distinct requests (Zipf s=1.1)")
    print(f"{summary['documents']:,} documents, {len(paths)} {mix}, {args.connections} connections, "
          f"{args.duration} s, {args.workers} workers x {args.threads} threads, {os.cpu_count()} CPUs")
    print(f"{'server':<12}{'req/s':>8}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}{'non-2xx':>9}{'errors':>8}"
          + (f"{'repeats':>9}" if args.distinct else "") + "  worker MB private (rss), start -> end")
    for name, row in results.items():
        print(f"{NAMES[name]:<12}{row['requests_per_s']:>8}{row['p50_ms']:>8}{row['p90_ms']:>8}{row['p99_ms']:>8}"
              f"{row['non_2xx']:>9}{row['socket_errors']:>8}" + (f"{row['repeats']:>9}" if args.distinct else "")
              + f"  {row['worker_mb_start']['private']} ({row['worker_mb_start']['rss']}) -> "
              f"{row['worker_mb_end']['private']} ({row['worker_mb_end']['rss']})")
    for kind in peers:
        print(f"searchsvc answers {summary[f'throughput_ratio_to_{kind}']}x the requests of the {NAMES[kind]} server")
    if args.distinct and any(row["repeats"] for row in results.values()):
        print(f"Some queries were sent twice (after the whole list): use --distinct larger than the requests "
              f"a run sends ({max(row['requests'] for row in results.values())}) for a run with none.")


if __name__ == "__main__":
    main()
