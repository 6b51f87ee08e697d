"""A bounded load for the replica tests, in a process of its own:

    python tests/loadclient.py BASE_URL SECONDS THREADS OUT.jsonl [QUERY...]

Each thread sends searches over one keep-alive connection until SECONDS have passed (at most
5,000 each) and OUT gets one JSON line per request: when it was sent, the query, the status,
and the answer's commit and total (or the error that stopped it).
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from urllib.parse import urlencode, urlsplit

MAX_PER_THREAD = 5_000


def run(base: str, seconds: float, threads: int, out: str, queries: list[str]) -> None:
    parts = urlsplit(base)
    results: list[dict] = []
    lock = threading.Lock()
    deadline = time.monotonic() + min(seconds, 60)

    def worker(n: int) -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        for i in range(MAX_PER_THREAD):
            if time.monotonic() >= deadline:
                break
            q = queries[(n + i * threads) % len(queries)]
            entry: dict = {"t": time.time(), "q": q}  # when it was sent
            try:
                connection.request("GET", "/api/search?" + urlencode({"q": q, "per_page": 5}))
                response = connection.getresponse()
                body = response.read()
                entry["status"] = response.status
                if response.status == 200:
                    data = json.loads(body)
                    entry["commit"], entry["total"] = data["commit"], data["total"]
            except (OSError, http.client.HTTPException, ValueError) as e:
                entry["error"] = f"{type(e).__name__}: {e}"
                connection.close()
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            with lock:
                results.append(entry)
        connection.close()

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    with open(out, "w", encoding="utf-8") as f:
        for entry in sorted(results, key=lambda e: e["t"]):
            f.write(json.dumps(entry) + "\n")


if __name__ == "__main__":
    run(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5:] or ["uyghur"])
