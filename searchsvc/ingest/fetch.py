"""Fetching pages politely: robots.txt obeyed, a delay between requests to one host, a User-Agent
that says who we are, conditional requests, and a bound on the time and bytes of each answer.

robots.txt is read by Protego (Scrapy's parser: wildcards, `$`, Crawl-delay, as Google reads
them; the standard library's parser ignores wildcards) and, as RFC 9309 says, a robots.txt
that answers 4xx allows everything and one that cannot be read (5xx, no answer) allows nothing.
Every hop of a redirect is checked against its own host's robots.txt and waits its own delay.

Every address is read once (`addresses.parse`), and that reading is the one connected to: a
connection pool for exactly its host and port, asked for exactly its path. Its host is resolved
once per crawl, and only addresses that pass the check are connected to (never the name resolved
again, which could answer otherwise). Loopback, private, link-local and other non-public
addresses are refused unless they are a start URL's own server or `allow_private` is set: a
page, a redirect or a robots.txt must not make the crawler ask an intranet host or a cloud's
metadata address on someone's behalf.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import urllib3
from protego import Protego

from searchsvc.ingest import addresses
from searchsvc.ingest.addresses import Address, BadAddress

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
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 allow_private: bool = False):
        self.user_agent = user_agent
        self.allow_private = allow_private
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
        self.resolved: dict[str, tuple[str, ...]] = {}  # host -> its IP addresses, resolved once a crawl
        self.own: set[tuple[str, int]] = set()  # (non-public IP address, port) of the start URLs' servers
        self.pools: dict[tuple[str, str, int, tuple[str, ...]], urllib3.HTTPConnectionPool] = {}

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()
        self.pools.clear()

    def own_server(self, url: str) -> None:
        """Let the crawl connect to `url`'s server whatever its address: a start URL names it
        (an intranet page on the command line). Its address on its port, and for http and https
        on their usual ports both (a redirect to https:// is the same server)."""
        try:
            address = addresses.parse(url)
            ips = self._resolve(url, address)
        except (BadAddress, FetchError):
            return  # its fetch says why
        ports = {80, 443} if address.port in (80, 443) else {address.port}
        self.own.update((ip, port) for ip in ips if _kind(ip) is not None for port in ports)

    def _own_servers(self, address: Address) -> set[tuple[str, int]]:
        """The start URLs' own non-public servers (IP address, port) that `address` names."""
        return {(ip, address.port) for ip in self.resolved.get(address.host, ())} & self.own

    def is_own_server(self, address: Address) -> bool:
        """Whether `address` is on a start URL's own non-public server by another name
        (localhost and 127.0.0.1 on one port)."""
        return bool(self._own_servers(address))

    def same_own_server(self, a: Address, b: Address) -> bool:
        """Whether two names are one of the start URLs' own non-public servers (localhost and
        127.0.0.1 on one port): public hosts sharing an address (shared hosting) are not."""
        return bool(self._own_servers(a) & self._own_servers(b))

    def fetch(self, url: str, *, validators: Callable[[str], tuple[str | None, str | None]] | None = None,
              allow: Callable[[Address], bool] | None = None,
              accept: str = "text/html,application/xhtml+xml,application/rss+xml,application/atom+xml,"
                            "application/xml;q=0.9,*/*;q=0.5") -> Fetched:
        """GET `url`, following redirects to the addresses `allow` accepts (all by default).
        `validators(address)` gives the ETag and Last-Modified kept for an address, sent with the
        request for that address only: a redirect that now leads elsewhere must not be answered
        304 for the page it led to before. Raises FetchError saying why not, robots.txt's refusal
        and an address refused (`addresses.parse`, `_connectable`) included."""
        current = url
        try:
            address = addresses.parse(url)
        except BadAddress as e:
            raise FetchError(url, f"not fetched: {e}") from None
        for _ in range(MAX_REDIRECTS + 1):
            self._connectable(current, address)
            self._check_allowed(current, address)
            headers = {"Accept": accept}
            etag, last_modified = validators(current) if validators else (None, None)
            if etag:
                headers["If-None-Match"] = etag
            if last_modified:
                headers["If-Modified-Since"] = last_modified
            status, answer_headers, content = self._request(current, address, headers, self.max_bytes)
            if status in (301, 302, 303, 307, 308):
                location = answer_headers.get("Location")
                if not location:
                    raise FetchError(current, f"HTTP {status} without a Location header")
                target = addresses.join(current, location)
                if target is None:
                    raise FetchError(current, f"redirects to {location.strip()[:200]!r}, which is not an http(s) "
                                              "address")
                try:
                    address = addresses.parse(target)
                except BadAddress as e:
                    raise FetchError(current, f"redirects to {target[:200]!r}: not fetched: {e}") from None
                if allow is not None and not allow(address):
                    raise FetchError(current, f"redirects to another site ({address.site}): not followed")
                try:
                    self._connectable(target, address)
                except FetchError as e:
                    raise FetchError(current, f"redirects to {target[:200]!r}: {e.reason}") from None
                current = target
                continue
            if status == 304:
                return Fetched(current, 304, "", b"", etag, last_modified)
            if status != 200:
                raise FetchError(current, f"HTTP {status}" + (f" (redirected from {url})" if current != url else ""))
            return Fetched(current, 200, answer_headers.get("Content-Type", ""), content,
                           answer_headers.get("ETag"), answer_headers.get("Last-Modified"))
        raise FetchError(url, f"more than {MAX_REDIRECTS} redirects")

    def _check_allowed(self, url: str, address: Address) -> None:
        host = self._host(address)
        if host.robots_problem:
            raise FetchError(url, f"not fetched: {host.robots_problem}")
        if host.robots is not None and not all(host.robots.can_fetch(address.url, token) for token in self.tokens):
            raise FetchError(url, "not fetched: robots.txt disallows it")

    def _resolve(self, url: str, address: Address) -> tuple[str, ...]:
        """The IP addresses of `address`'s host, resolved once per crawl (raises FetchError)."""
        ips = self.resolved.get(address.host)
        if ips is None:
            try:
                found = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)
            except (OSError, UnicodeError):
                raise FetchError(url, "unknown host") from None
            # Without an IPv6 zone ("fe80::1%eth0"): the address is what is checked.
            ips = tuple(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in found))
            if not ips:
                raise FetchError(url, "unknown host")
            self.resolved[address.host] = ips
        return ips

    def _connectable(self, url: str, address: Address) -> tuple[str, ...]:
        """The IP addresses of `address` that may be connected to: public ones, and the start
        URLs' own servers' (or any, with allow_private). Raises FetchError when there is none."""
        ips = self._resolve(url, address)
        allowed = tuple(ip for ip in ips
                        if self.allow_private or (ip, address.port) in self.own or _kind(ip) is None)
        if not allowed:
            named = "" if _is_ip(address.host) else f"at {ips[0]}, "
            kind = _kind(ips[0]) or "private"
            article = "an" if kind[0] in "aeiou" else "a"
            raise FetchError(url, f"not fetched: {address.netloc} is {named}{article} {kind} address, not the "
                                  "start URL's own server (--allow-private fetches it)")
        return allowed

    def _host(self, address: Address) -> _Host:
        key = address.origin
        host = self.hosts.get(key)
        if host is None:
            host = self.hosts[key] = _Host(delay=self.delay)
            robots = Address(address.scheme, address.host, address.port, "/robots.txt")
            try:
                status, content = self._robots(robots, host)
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

    def _robots(self, robots: Address, host: _Host) -> tuple[int, bytes]:
        """robots.txt's status and content, its redirects followed (RFC 9309: at least five), each
        hop paced by the host it goes to (the first by the host it is for), each hop's address
        checked as a page's is."""
        current, pacer = robots, host
        for _ in range(MAX_REDIRECTS + 1):
            status, headers, content = self._request(current.url, current, {"Accept": "text/plain"},
                                                     MAX_ROBOTS_BYTES, host=pacer, truncate=True)
            location = headers.get("Location")
            if status not in (301, 302, 303, 307, 308) or not location:
                return status, content
            target = addresses.join(current.url, location)
            if target is None:
                return 404, b""  # nowhere to read rules from: as a missing robots.txt
            try:
                current = addresses.parse(target)
            except BadAddress as e:
                raise FetchError(target, f"not fetched: {e}") from None
            pacer = self.hosts.get(current.origin) or pacer
        raise FetchError(robots.url, f"more than {MAX_REDIRECTS} redirects")

    def _pool(self, address: Address, ips: tuple[str, ...]) -> urllib3.HTTPConnectionPool:
        """The connection pool for exactly `address`'s scheme, host and port, connecting to `ips`."""
        key = (address.scheme, address.host, address.port, ips)
        pool = self.pools.get(key)
        if pool is None:
            kind = _HTTPSPool if address.scheme == "https" else _HTTPPool
            pool = self.pools[key] = kind(address.host, address.port, retries=False, checked=ips,
                                          timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout))
        return pool

    def _request(self, url: str, address: Address, headers: dict[str, str], limit: int, *,
                 host: _Host | None = None, truncate: bool = False) -> tuple[int, urllib3.HTTPHeaderDict, bytes]:
        ips = self._connectable(url, address)
        host = host or self._host(address)
        # Paced by server name: http:// and https:// (and other ports) of one server are one server.
        name = address.host
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
            # The pool's own host and port, and the path as read: nothing is left for urllib3 to read again.
            response = self._pool(address, ips).urlopen(
                "GET", address.target, headers={**headers, "User-Agent": self.user_agent}, redirect=False,
                retries=False, assert_same_host=False, preload_content=False)
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
    """A urllib3 connection that tells this thread's watchdog which socket a request uses, and
    connects only to the IP addresses the fetcher checked (`checked`)."""

    def __init__(self, *args: Any, checked: tuple[str, ...] = (), **kwargs: Any):
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        self.checked = checked

    def _new_conn(self) -> socket.socket:
        # urllib3's own would resolve the host name again, and a name can answer another address
        # the second time (DNS rebinding): the addresses checked are the ones connected to.
        error: OSError | None = None
        for ip in self.checked:
            try:
                return urllib3.util.connection.create_connection(
                    (ip, self.port), self.timeout, source_address=self.source_address,  # type: ignore[attr-defined]
                    socket_options=self.socket_options)  # type: ignore[attr-defined]
            except OSError as e:
                error = e
        if isinstance(error, TimeoutError):
            raise urllib3.exceptions.ConnectTimeoutError(self, f"Connection to {self.host} timed out")  # type: ignore[attr-defined]
        raise urllib3.exceptions.NewConnectionError(self, f"Failed to establish a new connection: {error}")  # type: ignore[arg-type]

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


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _kind(ip: str) -> str | None:
    """What kind of non-public address `ip` is ("loopback", "private" ...), None for a public one.
    An IPv4 address inside IPv6 (::ffff:127.0.0.1, 6to4's 2002:7f00:1::) is read as the IPv4
    address it is."""
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address):
        if address.is_site_local:  # fec0::/10: deprecated, still routed inside some networks
            return "site-local"
        # ::ffff:a.b.c.d, and 6to4's 2002:AABB:CCDD:: (Python calls it global whatever it wraps)
        inner = address.ipv4_mapped or address.sixtofour
        if inner is not None:
            address = inner
    for kind in ("loopback", "link_local", "multicast", "unspecified", "private", "reserved"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if address.is_global else "private"


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


