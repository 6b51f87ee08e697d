"""Every setting, declared once: its default, environment variable and help text.

Precedence: command-line option, then the `SEARCHSVC_*` environment variable, then the default.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    name: str
    default: str | float
    help: str

    @property
    def envvar(self) -> str:
        return "SEARCHSVC_" + self.name.upper()


INDEX = Setting("index", "index", "Index directory.")
WAIT = Setting(
    "wait", 30.0, "Seconds to wait for another process writing to the index before giving up."
)
SEARCH_TIMEOUT = Setting("search_timeout", 5.0, "Seconds one search may run before it is stopped with a 503.")
RATE_LIMIT = Setting(
    "rate_limit", "", "Requests per client address to the API and pages, e.g. '120/minute' (empty: no limit)."
)
EXPORT_RATE_LIMIT = Setting("export_rate_limit", "", "Exports per client address, e.g. '10/hour' (empty: no limit).")
TRUST_PROXY = Setting(
    "trust_proxy", "", "Take the client address from X-Forwarded-For (set only behind your own reverse proxy)."
)
BASE_URL = Setting(
    "base_url", "", "The site's public URL, e.g. 'https://search.example.org/', for links in feeds and citations "
    "(empty: from the request's Host header, which clients choose; set it behind a reverse proxy)."
)
THREADS = Setting("threads", 8, "Threads per worker process: the requests each process serves at once.")
MAX_EXPORTS = Setting(
    "max_exports", 4, "Exports streaming at once per worker process, each holding a thread as long as its client "
    "reads; more get a 503 (keep it at most half of the threads, so searches always have some)."
)
HEADER_TIMEOUT = Setting(
    "header_timeout", 10.0, "Seconds a client has to send a request's line and headers (then 408 and closed)."
)
KEEPALIVE = Setting("keepalive", 5, "Seconds an idle connection stays open for its next request (0: close at once).")
SEND_TIMEOUT = Setting(
    "send_timeout", 60.0, "Seconds a response waits for a client that reads none of it before the connection is reset."
)
