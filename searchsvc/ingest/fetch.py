"""Fetching pages politely: robots.txt obeyed, a delay between requests to one host, a User-Agent
that says who we are, conditional requests, and a bound on the time and bytes of each answer.

robots.txt is read by Protego (Scrapy's parser: wildcards, `$`, Crawl-delay, as Google reads
them; the standard library's parser ignores wildcards) and, as RFC 9309 says, a robots.txt
that answers 4xx allows everything and one that cannot be read (5xx, no answer) allows nothing.
Every hop of a redirect is checked against its own host's robots.txt and waits its own delay.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import urllib3
from protego import Protego

from searchsvc.ingest import addresses

USER_AGENT = (f"searchsvc/{version('searchsvc')} (indexer of public statements; obeys robots.txt; "
              "set --user-agent to add a contact address)")
ROBOTS_TOKEN = "searchsvc"  # the name a robots.txt group addresses us by
DEFAULT_DELAY = 1.0  # seconds between two requests to one host
DEFAULT_TIMEOUT = 30.0  # seconds for a whole answer
MAX_CRAWL_DELAY = 60.0  # a robots.txt asking for more is read as asking for this
MAX_BYTES = 16 * 1024 * 1024  # a post page or a feed is far smaller
MAX_ROBOTS_BYTES = 512 * 1024  # what Google reads of a robots.txt
MAX_REDIRECTS = 5


class FetchError(Exception):
    """A page that could not be fetched; printed as `URL: reason`."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


@dataclass(frozen=True)
class Fetched:
    """An answer: `url` is where it came from after redirects; `status` 304 has no content."""

    url: str
    status: int
    content_type: str
    content: bytes
    etag: str | None
    last_modified: str | None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass
class _Host:
    robots: Protego | None = None
    robots_problem: str | None = None  # why nothing may be fetched, when robots.txt was unreadable
    delay: float = DEFAULT_DELAY


class Fetcher:
    """One crawl's HTTP client: per-host robots.txt and pacing kept for its lifetime."""

    def __init__(self, *, user_agent: str = USER_AGENT, delay: float = DEFAULT_DELAY,
                 timeout: float = DEFAULT_TIMEOUT, max_bytes: int = MAX_BYTES,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.user_agent = user_agent
        self.delay = delay
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.clock = clock
        self.sleep = sleep
        self.hosts: dict[str, _Host] = {}
        self.last_request: dict[str, float] = {}  # server name -> when our last request to it started
        self.requests = 0
        # The names a robots.txt group may address us by: ours, and the product of a --user-agent
        # ("NewsroomArchiver/1.0 (...)" is NewsroomArchiver); a page is fetched only if both may.
        product = user_agent.split("/", 1)[0].split(" ", 1)[0].strip()
        self.tokens = [ROBOTS_TOKEN] + ([product] if product and product.lower() != ROBOTS_TOKEN else [])
        self.http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=timeout, read=timeout))
        self.http.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    def close(self) -> None:
        self.http.clear()

    def fetch(self, url: str, *, validators: Callable[[str], tuple[str | None, str | None]] | None = None,
              allow: Callable[[str], bool] | None = None,
              accept: str = "text/html,application/xhtml+xml,application/rss+xml,application/atom+xml,"
                            "application/xml;q=0.9,*/*;q=0.5") -> Fetched:
        """GET `url`, following redirects to the addresses `allow` accepts (all by default).
        `validators(address)` gives the ETag and Last-Modified kept for an address, sent with the
        request for that address only: a redirect that now leads elsewhere must not be answered
        304 for the page it led to before. Raises FetchError saying why not, robots.txt's refusal
        included."""
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            self._check_allowed(current)
            headers = {"Accept": accept}
            etag, last_modified = validators(current) if validators else (None, None)
            if etag:
                headers["If-None-Match"] = etag
            if last_modified:
                headers["If-Modified-Since"] = last_modified
            status, answer_headers, content = self._request(current, headers, self.max_bytes)
            if status in (301, 302, 303, 307, 308):
                location = answer_headers.get("Location")
                if not location:
                    raise FetchError(current, f"HTTP {status} without a Location header")
                target = addresses.join(current, location)
                if target is None:
                    raise FetchError(current, f"redirects to {location.strip()[:200]!r}, which is not an http(s) "
                                              "address")
                if allow is not None and not allow(target):
                    raise FetchError(current, f"redirects to another site ({addresses.site(target)}): not followed")
                current = target
                continue
            if status == 304:
                return Fetched(current, 304, "", b"", etag, last_modified)
            if status != 200:
                raise FetchError(current, f"HTTP {status}" + (f" (redirected from {url})" if current != url else ""))
            return Fetched(current, 200, answer_headers.get("Content-Type", ""), content,
                           answer_headers.get("ETag"), answer_headers.get("Last-Modified"))
        raise FetchError(url, f"more than {MAX_REDIRECTS} redirects")

    def allowed(self, url: str) -> bool:
        """Whether robots.txt lets us fetch `url` (fetching robots.txt if needed)."""
        try:
            self._check_allowed(url)
        except FetchError:
            return False
        return True

    def _check_allowed(self, url: str) -> None:
        host = self._host(url)
        if host.robots_problem:
            raise FetchError(url, f"not fetched: {host.robots_problem}")
        if host.robots is not None and not all(host.robots.can_fetch(url, token) for token in self.tokens):
            raise FetchError(url, "not fetched: robots.txt disallows it")

    def _host(self, url: str) -> _Host:
        parts = urlsplit(url)
        key = addresses.origin(url)
        host = self.hosts.get(key)
        if host is None:
            host = self.hosts[key] = _Host(delay=self.delay)
            robots_url = urlunsplit((parts.scheme, parts.netloc, "/robots.txt", "", ""))
            try:
                status, content = self._robots(robots_url, host)
            except FetchError as e:
                host.robots_problem = f"robots.txt could not be read ({e.reason}), so nothing is fetched from {key}"
                return host
            if 500 <= status:
                host.robots_problem = f"robots.txt answered HTTP {status}, so nothing is fetched from {key}"
            elif status == 200:
                # utf-8-sig: a byte-order mark would make the first line another agent's group.
                host.robots = Protego.parse(content.decode("utf-8-sig", "replace"))
                crawl_delay = max((host.robots.crawl_delay(token) or 0 for token in self.tokens), default=0)
                if crawl_delay:
                    host.delay = max(host.delay, min(float(crawl_delay), MAX_CRAWL_DELAY))
            # 3xx (not followed for robots.txt here) and 4xx: no rules, everything allowed.
        return host

    def _robots(self, url: str, host: _Host) -> tuple[int, bytes]:
        """robots.txt's status and content, its redirects followed (RFC 9309: at least five), each
        hop paced by the host it goes to (the first by the host it is for)."""
        current, pacer = url, host
        for _ in range(MAX_REDIRECTS + 1):
            status, headers, content = self._request(current, {"Accept": "text/plain"}, MAX_ROBOTS_BYTES,
                                                     host=pacer, truncate=True)
            location = headers.get("Location")
            if status not in (301, 302, 303, 307, 308) or not location:
                return status, content
            target = addresses.join(current, location)
            if target is None:
                return 404, b""  # nowhere to read rules from: as a missing robots.txt
            current = target
            pacer = self.hosts.get(addresses.origin(current)) or pacer
        raise FetchError(url, f"more than {MAX_REDIRECTS} redirects")

    def _request(self, url: str, headers: dict[str, str], limit: int, *, host: _Host | None = None,
                 truncate: bool = False) -> tuple[int, urllib3.HTTPHeaderDict, bytes]:
        host = host or self._host(url)
        # Paced by server name: http:// and https:// (and other ports) of one server are one server.
        name = (urlsplit(url).hostname or "").lower()
        last = self.last_request.get(name)
        if last is not None:
            wait = last + host.delay - self.clock()
            if wait > 0:
                self.sleep(wait)
        started = self.last_request[name] = self.clock()
        self.requests += 1
        deadline = started + self.timeout
        # urllib3's timeouts bound each read of the socket, not the whole answer: a server sending
        # its head a byte at a time would hold us forever. At the deadline the socket is shut.
        watchdog = _Watchdog(self.timeout)
        _ACTIVE.watchdog = watchdog
        response = None
        complete = False
        try:
            response = self.http.request("GET", url, headers={**headers, "User-Agent": self.user_agent},
                                         redirect=False, preload_content=False)
            chunks = []
            size = 0
            # read1: whatever one read of the socket gives, so a server dripping a byte at a time
            # meets the deadline after each byte, not after a whole chunk's worth of them.
            while chunk := response.read1(64 * 1024):
                size += len(chunk)
                if size > limit:
                    if truncate:
                        chunks.append(chunk[:limit - size + len(chunk)])
                        break
                    raise FetchError(url, f"too large: more than {limit // (1024 * 1024)} MB")
                chunks.append(chunk)
                if self.clock() > deadline:
                    raise FetchError(url, f"timed out after {self.timeout:g} s")
            complete = True
            return response.status, response.headers, b"".join(chunks)
        except (urllib3.exceptions.HTTPError, OSError) as e:
            if watchdog.fired:
                raise FetchError(url, f"timed out after {self.timeout:g} s") from None
            raise FetchError(url, _reason(e, self.timeout)) from None
        finally:
            watchdog.cancel()
            _ACTIVE.watchdog = None
            if response is not None:
                if not complete:
                    response.close()  # the rest of the answer is unread: the connection cannot be used again
                response.release_conn()


_ACTIVE = threading.local()  # the watchdog of this thread's request, which its connection reports to


class _Watchdog:
    """Shuts the socket of one request down when its time is up (see Fetcher._request)."""

    def __init__(self, seconds: float):
        self.connection: Any = None
        self.fired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        sock = getattr(self.connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cancel(self) -> None:
        self._timer.cancel()


class _Watched:
    """A urllib3 connection that tells this thread's watchdog which socket a request uses."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        watchdog = getattr(_ACTIVE, "watchdog", None)
        if watchdog is not None:
            watchdog.connection = self
        return super().request(*args, **kwargs)  # type: ignore[misc]

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        watchdog = getattr(_ACTIVE, "watchdog", None)
        if watchdog is not None and watchdog.fired:
            self._fire_now()

    def _fire_now(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # type: ignore[attr-defined]
        except OSError:
            pass


class _HTTPConnection(_Watched, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_Watched, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


def _reason(error: Exception, timeout: float) -> str:
    # Before the timeouts: urllib3 makes NewConnectionError (refused, unknown host) a kind of
    # ConnectTimeoutError.
    if isinstance(error, urllib3.exceptions.NameResolutionError):
        return "unknown host"
    if isinstance(error, urllib3.exceptions.NewConnectionError):
        return "cannot connect: " + str(error).split(": ", 1)[-1]
    if isinstance(error, (urllib3.exceptions.TimeoutError, urllib3.exceptions.ReadTimeoutError,
                          urllib3.exceptions.ConnectTimeoutError)):
        return f"timed out after {timeout:g} s"
    if isinstance(error, urllib3.exceptions.MaxRetryError) and error.reason is not None:
        return _reason(error.reason, timeout)
    if isinstance(error, urllib3.exceptions.ProtocolError):
        return f"the connection broke off ({error.args[0] if error.args else error})"
    return str(error) or type(error).__name__


