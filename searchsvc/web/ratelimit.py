"""Per-client rate limits for the API, the pages and exports: off unless configured.

    SEARCHSVC_RATE_LIMIT=120/minute        every request except static files and /healthz
    SEARCHSVC_EXPORT_RATE_LIMIT=10/hour    /api/export, on top of the general limit
    SEARCHSVC_TRUST_PROXY=1                client address from X-Forwarded-For (behind your proxy)

A sliding window per client address, kept in each worker process: with N workers a client
may get up to N times the limit through, which is what a limit against floods needs; put a
shared limit in the reverse proxy when it must be exact. A refused request gets 429 and a
Retry-After header saying when the next one will be accepted.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Mapping
from typing import Any

from flask import Flask, request

from searchsvc.errors import RateLimited
from searchsvc.settings import RATE_PERIODS

# Clients remembered per limit; the least recently seen are forgotten first.
MAX_CLIENTS = 50_000


class SlidingWindow:
    """At most `limit` hits per `period` seconds per key."""

    def __init__(self, limit: int, period: int, name: str):
        self.limit, self.period, self.name = limit, period, name
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.pop(key, None) or deque()
            self._hits[key] = hits  # most recently seen last
            while hits and hits[0] <= now - self.period:
                hits.popleft()
            if len(hits) >= self.limit:
                retry = max(1, math.ceil(hits[0] + self.period - now))
                raise RateLimited(
                    f"too many {self.name} from this address: at most {self.limit} per "
                    f"{_period_name(self.period)}; retry in {retry} s",
                    retry_after=retry,
                )
            hits.append(now)
            while len(self._hits) > MAX_CLIENTS:
                self._hits.popitem(last=False)


def _period_name(seconds: int) -> str:
    return {v: k for k, v in RATE_PERIODS.items()}[seconds]


def client_address(trust_proxy: bool) -> str:
    return client_of(request.environ, trust_proxy) or "unknown"


def client_of(environ: Mapping[str, Any], trust_proxy: bool) -> str | None:
    """The client's address in a WSGI environ (the rate limits' and the access log's rule)."""
    if trust_proxy:
        forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
        # The proxy appends the address it saw: the last entry is the one it vouches for.
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if hops:
            return hops[-1]
    return environ.get("REMOTE_ADDR")


def install_rate_limits(app: Flask) -> None:
    general, export = app.config["RATE_LIMIT"], app.config["EXPORT_RATE_LIMIT"]  # (hits, seconds) or None
    if general is None and export is None:
        return
    trust_proxy = app.config["TRUST_PROXY"]
    requests = SlidingWindow(*general, name="requests") if general else None
    exports = SlidingWindow(*export, name="exports") if export else None

    @app.before_request
    def limit() -> None:
        if request.path.startswith("/static/") or request.path == "/healthz":
            return
        address = client_address(trust_proxy)
        if requests:
            requests.hit(address)
        if exports and request.path == "/api/export":
            exports.hit(address)
