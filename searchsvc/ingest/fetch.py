"""Fetching pages politely: robots.txt obeyed, a delay between requests to one host, a User-Agent
that says who we are, conditional requests, and a bound on the time and bytes of each answer.

robots.txt is read by Protego (Scrapy's parser: wildcards, `$`, Crawl-delay, as Google reads
them; the standard library's parser ignores wildcards) and, as RFC 9309 says, a robots.txt
that answers 4xx allows everything and one that cannot be read (5xx, no answer) allows nothing.
Every hop of a redirect is checked against its own host's robots.txt and waits its own delay.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from urllib.parse import urljoin, urlsplit, urlunsplit

import urllib3
from protego import Protego

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
    last_request: float | None = None
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
        self.requests = 0
        self.http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=timeout, read=timeout))

    def close(self) -> None:
        self.http.clear()

    def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
              accept: str = "text/html,application/xhtml+xml,application/rss+xml,application/atom+xml,"
                            "application/xml;q=0.9,*/*;q=0.5") -> Fetched:
        """GET `url` (following redirects), conditionally when `etag` or `last_modified` is given.
        Raises FetchError saying why not, robots.txt's refusal included."""
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            self._check_allowed(current)
            headers = {"Accept": accept}
            if etag:
                headers["If-None-Match"] = etag
            if last_modified:
                headers["If-Modified-Since"] = last_modified
            response = self._request(current, headers, self.max_bytes)
            status, answer_headers, content = response
            if status in (301, 302, 303, 307, 308):
                location = answer_headers.get("Location")
                if not location:
                    raise FetchError(current, f"HTTP {status} without a Location header")
                target = urljoin(current, location.strip())
                if urlsplit(target).scheme not in ("http", "https"):
                    raise FetchError(current, f"redirects to {target!r}, which is not an http(s) address")
                current = _without_fragment(target)
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
        if host.robots is not None and not host.robots.can_fetch(url, ROBOTS_TOKEN):
            raise FetchError(url, "not fetched: robots.txt disallows it")

    def _host(self, url: str) -> _Host:
        parts = urlsplit(url)
        key = _host_key(url)
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
                host.robots = Protego.parse(content.decode("utf-8", "replace"))
                crawl_delay = host.robots.crawl_delay(ROBOTS_TOKEN)
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
            current = _without_fragment(urljoin(current, location.strip()))
            if urlsplit(current).scheme not in ("http", "https"):
                return 404, b""  # nowhere to read rules from: as a missing robots.txt
            pacer = self.hosts.get(_host_key(current)) or pacer
        raise FetchError(url, f"more than {MAX_REDIRECTS} redirects")

    def _request(self, url: str, headers: dict[str, str], limit: int, *, host: _Host | None = None,
                 truncate: bool = False) -> tuple[int, urllib3.HTTPHeaderDict, bytes]:
        host = host or self._host(url)
        if host.last_request is not None:
            wait = host.last_request + host.delay - self.clock()
            if wait > 0:
                self.sleep(wait)
        host.last_request = self.clock()
        self.requests += 1
        deadline = host.last_request + self.timeout
        try:
            response = self.http.request("GET", url, headers={**headers, "User-Agent": self.user_agent},
                                         redirect=False, preload_content=False)
        except urllib3.exceptions.HTTPError as e:
            raise FetchError(url, _reason(e, self.timeout)) from None
        complete = False
        try:
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
                    raise FetchError(url, f"timed out: no whole answer within {self.timeout:g} s")
            complete = True
            return response.status, response.headers, b"".join(chunks)
        except urllib3.exceptions.HTTPError as e:
            raise FetchError(url, _reason(e, self.timeout)) from None
        finally:
            if not complete:
                response.close()  # the rest of the answer is unread: the connection cannot be used again
            response.release_conn()


def _reason(error: Exception, timeout: float) -> str:
    if isinstance(error, (urllib3.exceptions.TimeoutError, urllib3.exceptions.ReadTimeoutError,
                          urllib3.exceptions.ConnectTimeoutError)):
        return f"timed out after {timeout:g} s"
    if isinstance(error, urllib3.exceptions.MaxRetryError) and error.reason is not None:
        return _reason(error.reason, timeout)
    if isinstance(error, urllib3.exceptions.NewConnectionError):
        return "cannot connect: " + str(error).split(": ", 1)[-1]
    if isinstance(error, urllib3.exceptions.NameResolutionError):
        return "unknown host"
    if isinstance(error, urllib3.exceptions.ProtocolError):
        return f"the connection broke off ({error.args[0] if error.args else error})"
    return str(error) or type(error).__name__


def _host_key(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _without_fragment(url: str) -> str:
    return url.split("#", 1)[0]
