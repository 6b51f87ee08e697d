"""Every setting, declared once: its default, environment variable, help text, how its text is
read and who reads it. The app factory and the server loop over this table; the CLI's options
take their names, defaults and help from it.

Precedence: command-line option, then the `SEARCHSVC_*` environment variable, then the default.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from searchsvc.errors import BadSetting


@dataclass(frozen=True)
class Setting:
    name: str
    default: str | float
    help: str
    # The value from its text (an environment variable, a config entry, or the default);
    # BadSetting saying what is wrong.
    read: Callable[[Setting, Any], Any] = lambda setting, value: str(value)
    # Who reads it: "app" (create_app puts it in app.config), "server" (`searchsvc serve`),
    # "ingest" (`searchsvc ingest`, from its environment) or "cli" (an option of the commands,
    # given by click).
    where: str = "app"

    @property
    def envvar(self) -> str:
        return "SEARCHSVC_" + self.name.upper()

    @property
    def key(self) -> str:
        """Its name in app.config."""
        return self.name.upper()

    def value(self, given: Any) -> Any:
        return self.read(self, given)

    def from_environ(self) -> Any:
        """The value of its environment variable, else of its default."""
        text = os.environ.get(self.envvar, "")
        return self.value(text if text.strip() else self.default)


def seconds(*, zero: str = "refused") -> Callable[[Setting, Any], float | None]:
    """A number of seconds, more than 0; with `zero="allowed"` 0 too, with `zero="off"` 0 is None."""

    def read(setting: Setting, given: Any) -> float | None:
        try:
            value = float(str(given))
        except ValueError:
            value = float("nan")
        least = 0 <= value if zero != "refused" else 0 < value
        if not least or value == float("inf"):
            kind = "more than 0" if zero == "refused" else "0 or more"
            raise BadSetting(f"{setting.envvar} must be a number of seconds ({kind}), got {str(given)!r}")
        return None if zero == "off" and value == 0 else value

    return read


def whole_number(setting: Setting, given: Any) -> int:
    """A whole number of 1 or more."""
    text = str(given).strip()
    if not (text.isdecimal() and int(text) >= 1):
        raise BadSetting(f"{setting.envvar} must be a whole number (1 or more), got {str(given)!r}")
    return int(text)


_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|MB|GB)?\s*$", re.IGNORECASE)
SIZE_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9}  # as `searchsvc info` shows sizes


def size(setting: Setting, given: Any) -> int:
    """"50MB" -> 50,000,000 bytes; a bare number is bytes; KB, MB and GB are powers of 1000."""
    match = _SIZE.match(str(given))
    if not match or int(match[1]) < 1:
        raise BadSetting(f"{setting.envvar} must be a size such as '50MB' (B, KB, MB or GB), got {str(given)!r}")
    return int(match[1]) * SIZE_UNITS[(match[2] or "B").upper()]


def show_size(n: int) -> str:
    """50,000,000 -> "50 MB": the largest unit that shows it exactly."""
    for unit in ("GB", "MB", "KB"):
        if n % SIZE_UNITS[unit] == 0:
            return f"{n // SIZE_UNITS[unit]} {unit}"
    return f"{n} bytes"


_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*$")
RATE_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def rate(setting: Setting, given: Any) -> tuple[int, int] | None:
    """"120/minute" -> (120, 60); "" -> None (no limit)."""
    if not given or not str(given).strip():
        return None
    match = _RATE.match(str(given))
    if not match or int(match[1]) < 1:
        raise BadSetting(f"a rate limit must look like '120/minute' (per second, minute, hour or day), got {given!r}")
    return int(match[1]), RATE_PERIODS[match[2]]


def flag(setting: Setting, given: Any) -> bool:
    return str(given).strip().lower() in ("1", "true", "yes", "on")


def site_url(setting: Setting, given: Any) -> str:
    """An absolute http(s) URL without its trailing slash ("" when unset): every feed and
    citation link would start with it."""
    text = str(given or "").strip()
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise BadSetting(
            f"{setting.envvar} must be an absolute http(s) URL such as 'https://search.example.org/', got {text!r}"
        )
    return text.rstrip("/")


INDEX = Setting("index", "index", "Index directory.")
WAIT = Setting(
    "wait", 30.0, "Seconds to wait for another process writing to the index before giving up.", where="cli"
)
SEARCH_TIMEOUT = Setting("search_timeout", 5.0, "Seconds one search may run before it is stopped with a 503 "
                         "(0: no limit).", read=seconds(zero="off"))
RATE_LIMIT = Setting(
    "rate_limit", "", "Requests per client address to the API and pages, e.g. '120/minute' (empty: no limit).",
    read=rate,
)
EXPORT_RATE_LIMIT = Setting("export_rate_limit", "", "Exports per client address, e.g. '10/hour' (empty: no limit).",
                            read=rate)
TRUST_PROXY = Setting(
    "trust_proxy", "", "Take the client address from X-Forwarded-For (set only behind your own reverse proxy).",
    read=flag,
)
BASE_URL = Setting(
    "base_url", "", "The site's public URL, e.g. 'https://search.example.org/', for links in feeds and citations "
    "(empty: from the request's Host header, which clients choose; set it behind a reverse proxy).",
    read=site_url,
)
VERIFY_EVERY = Setting(
    "verify_every", 600.0, "Seconds between checks of every byte of the index by each server process, in the "
    "background (0: only when a commit is opened).", read=seconds(zero="off"),
)
THREADS = Setting("threads", 8, "Threads per worker process: the requests each process serves at once.", where="cli")
MAX_EXPORTS = Setting(
    "max_exports", 4, "Exports streaming at once per worker process, each holding a thread as long as its client "
    "reads; more get a 503 (keep it at most half of the threads, so searches always have some).",
    read=whole_number,
)
HEADER_TIMEOUT = Setting(
    "header_timeout", 10.0, "Seconds a client has to send a request's line and headers (then 408 and closed).",
    read=seconds(), where="server",
)
KEEPALIVE = Setting("keepalive", 5, "Seconds an idle connection stays open for its next request (0: close at once).",
                    read=seconds(zero="allowed"), where="server")
SEND_TIMEOUT = Setting(
    "send_timeout", 60.0, "Seconds a response waits for a client that reads none of it before the connection is reset.",
    read=seconds(), where="server",
)
MAX_RECORD_BYTES = Setting(
    "max_record_bytes", "50MB", "The longest JSON Lines line `ingest` reads, and the largest file it reads whole "
    "(.json, .csv, .md, .txt, once decompressed); larger ones are reported and skipped.",
    read=size, where="ingest",
)
MAX_GZIP_RATIO = Setting(
    "max_gzip_ratio", 100, "How many times its compressed size a .gz file may inflate to (past its first MB) before "
    "`ingest` stops reading it as a decompression bomb; real text inflates about 4 times.",
    read=whole_number, where="ingest",
)

ALL = tuple(value for value in list(globals().values()) if isinstance(value, Setting))


def of(where: str) -> tuple[Setting, ...]:
    """The settings read by `where` ("app", "server", "ingest" or "cli")."""
    return tuple(s for s in ALL if s.where == where)
