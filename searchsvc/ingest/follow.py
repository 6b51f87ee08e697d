"""From a URL to posts: one feed or page (`ingest URL`), or a feed, sitemap or listing and the post
pages it links to (`follow URL`).

What a crawl visits is bounded: only the site of the URL it started from (its server, over
http or https, and where the start URL redirects if that is its www. twin or its own server by
another name; another site it leads to is read, not crawled), each address as `addresses.parse`
reads it (one that two parsers could read differently is a problem, never fetched; the fetcher
connects to no loopback or private address but the start URLs' own), only the post pages a
feed, sitemap or listing links to (and a listing's next pages), each page once however it is linked (`addresses.key`),
at most `max_pages` addresses queued. Teasers (a listing's, a feed's summaries) are handed out
after every page was tried, with the address of the page their link led to, so the batch meets
each teaser after its post's full text and keeps that. A page that fails leaves its teaser, and
the crawl goes on.

Conditional requests: `FetchState` keeps each fetched address's ETag and Last-Modified, what it
was (a feed, a listing ...), the links it gave and the posts it gave with the fingerprints the
index held for them after the commit, in `searchsvc-fetched.json` in the index folder (JSON). An
address answered 304 gives its posts as the index has them (`Unchanged`), and its stored links
are followed again; validators are sent only while the index holds those very versions of its
posts (not after a delete, a restore, a rebuild from older records).

The readers of feeds and pages (feedparser, lxml, trafilatura: a third of a second and tens of MB
to import) are imported where a crawl reads one, not by every `searchsvc` command.
"""

from __future__ import annotations

import fcntl
import gc
import json
import os
import signal
import tempfile
import threading
import zlib
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from searchsvc.index import files as own
from searchsvc.index.files import NotOurFile
from searchsvc.index.store import FETCH_LOCK
from searchsvc.ingest import addresses
from searchsvc.ingest.addresses import Address, BadAddress, is_url
from searchsvc.ingest.fetch import MAX_BYTES, Fetched, Fetcher, FetchError
from searchsvc.ingest.sources import Item, Notice, Problem

STATE_FILE = "searchsvc-fetched.json"
LOCK_FILE = FETCH_LOCK  # hidden: the index folder's other files are not ours to list
STATE_VERSION = 2
MAX_STATE_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_PAGES = 5000
MAX_SITEMAP_DEPTH = 3  # a sitemap index of sitemap indexes of sitemaps


@dataclass(frozen=True)
class Unchanged:
    """A URL that answered 304: its posts are the ones the index holds under `ids`."""

    url: str
    ids: tuple[str, ...]


@dataclass
class _Seen:
    etag: str | None
    last_modified: str | None
    kind: str  # "feed", "sitemap", "listing", "page"
    links: list[str] = field(default_factory=list)  # post pages it links to
    more: list[str] = field(default_factory=list)  # next listing pages, nested sitemaps
    # The posts it gave, each with the fingerprint the index held after that run's commit: a 304
    # means "as the index holds it" only while the index still holds that very version (not after
    # a delete, a restore of an older snapshot, a rebuild from an older export).
    posts: dict[str, str] = field(default_factory=dict)
    post_url: str | None = None  # a post page's own address (after redirects, or its canonical link)

    @property
    def ids(self) -> list[str]:
        return list(self.posts)

    def to_json(self) -> dict[str, Any]:
        return {"etag": self.etag, "last_modified": self.last_modified, "kind": self.kind, "links": self.links,
                "more": self.more, "posts": self.posts, "post_url": self.post_url}

    @classmethod
    def from_json(cls, data: Any) -> _Seen | None:
        try:
            posts = dict(data.get("posts", {}))
            seen = cls(data.get("etag"), data.get("last_modified"), str(data["kind"]), list(data.get("links", [])),
                       list(data.get("more", [])), posts, data.get("post_url"))
        except (AttributeError, KeyError, TypeError, ValueError):
            return None
        fields = (seen.etag, seen.last_modified, seen.post_url, *seen.links, *seen.more, *posts, *posts.values())
        return seen if all(v is None or isinstance(v, str) for v in fields) else None


class FetchState:
    """What earlier runs fetched, for conditional requests; this run's answers wait in `fetched`
    until `save` (called after the commit, so a failed ingest never skips a page next time)."""

    def __init__(self, path: Path | None):
        self.path = path
        self.known: dict[str, _Seen] = {}
        self.fetched: dict[str, _Seen] = {}
        # id -> fingerprint of posts whose version in the index is only a teaser (their page never
        # arrived): a newer teaser may replace such a post, whatever their lengths.
        self.teasers: dict[str, str] = {}
        self.problem: str | None = None
        if path is not None and os.path.lexists(path):
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            try:
                # Never through a link, never a FIFO waited on, never more than it may hold.
                data = json.loads(own.read_small(path, MAX_STATE_BYTES).decode("utf-8"))
            except NotOurFile as e:
                raise ValueError(e.problem) from None
            if data.get("version") != STATE_VERSION:
                raise ValueError(f"version {data.get('version')!r}")
            urls = data["urls"]
            self.known = {u: s for u, d in urls.items() if isinstance(u, str) and (s := _Seen.from_json(d))}
            self.teasers = {str(i): str(p) for i, p in dict(data.get("teasers", {})).items()}
        except RecursionError:  # JSON nested deeper than the parser goes: not a state we wrote
            self.problem = f"{path}: warning: not read (nested too deeply); every page is fetched in full"
            self.known = {}
        except (OSError, ValueError, KeyError, AttributeError, TypeError) as e:
            self.problem = f"{path}: warning: not read ({e}); every page is fetched in full"
            self.known = {}

    def stored_teasers(self, prints: Mapping[str, bytes]) -> set[str]:
        """The posts the index holds as the very teasers this state says it wrote."""
        return {i for i, p in self.teasers.items() if prints.get(i, b"").hex() == p}

    def save(self, ids_by_url: dict[str, list[str]], failed: Collection[str], prints: Mapping[str, bytes],
             written: Collection[str] = (), teasers: Collection[str] = ()) -> str | None:
        """Keep this run's answers, except those of URLs whose posts were not all valid, with the
        fingerprints `prints` the index holds for their posts now (after the commit). Merged into
        the file as it is now, under a lock of its own: a crawl beside this one keeps its answers.
        Returns a warning when it was not saved: its lock is not a file of ours (a link), or it
        would be larger than MAX_STATE_BYTES."""
        if self.path is None:
            return None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.parent / LOCK_FILE
        try:
            lock_fd = own.open_lock(lock_path)
        except NotOurFile as e:
            return (f"{lock_path} is {e.problem.removeprefix('it is ')}: the fetch state was not saved "
                    "(the next run fetches every page in full)")
        with os.fdopen(lock_fd, "r+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = FetchState(self.path)
            merged = dict(current.known)
            for url, seen in self.fetched.items():
                if url in failed:
                    merged.pop(url, None)
                    continue
                ids = ids_by_url.get(url, seen.ids) if seen.kind in ("page", "feed", "listing") else seen.ids
                seen.posts = {i: prints[i].hex() for i in ids if i in prints}
                merged[url] = seen
            # Of the posts this run wrote (`written`), those held as teasers (`teasers`).
            held = {i: p for i, p in current.teasers.items() if i not in written and i in prints}
            held.update({i: prints[i].hex() for i in teasers if i in prints})
            text = json.dumps({"version": STATE_VERSION, "urls": {u: s.to_json() for u, s in merged.items()},
                               "teasers": held}, ensure_ascii=False, sort_keys=True)
            if len(text.encode("utf-8")) > MAX_STATE_BYTES:
                # Written, the next run would pass over it and save only its own answers: every
                # other site's validators lost (a site's listings of long links can do that).
                return (f"{self.path}: warning: not saved: it would be larger than {MAX_STATE_BYTES:,} bytes, "
                        "more than the next run reads; the state before this run is kept")
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".fetched-", suffix=".tmp")
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    out.write(text)
                os.replace(temporary, self.path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        return None


@dataclass
class _Visit:
    url: str
    role: str  # "start", "page" (a post page linked from a feed, listing or sitemap), "listing", "sitemap"
    host: str
    depth: int = 0
    link: str | None = None  # the address a teaser linked to (this visit's first URL)
    refused: str | None = None  # why an address found on the site is not fetched (addresses.parse)


@dataclass
class Crawl:
    """One run over some URLs; `read` yields what `ingest.batch` adds (Items, Problems, Unchanged)."""

    fetcher: Fetcher
    state: FetchState
    follow: bool = False
    known: Mapping[str, bytes] = field(default_factory=dict)  # id -> fingerprint of every post in the index
    max_pages: int = DEFAULT_MAX_PAGES
    on_url: Callable[[str, int], None] | None = None  # (url, URLs still queued), for a progress bar
    other_hosts: int = 0  # links not followed because they lead to another site
    sites: set[str] = field(default_factory=set)
    visited: int = 0  # URLs fetched or tried
    beyond: int = 0  # addresses not fetched: past --max-pages

    def read(self, urls: Iterable[str]) -> Iterator[Item | Problem | Notice | Unchanged]:
        urls = list(urls)
        queue: deque[_Visit] = deque()
        queued: set[str] = set()
        for url in urls:
            if not is_url(url):
                self.visited += 1
                yield Problem(url, None, "not an http(s) address: only http:// and https:// addresses are fetched")
            elif addresses.key(url) not in queued:
                queued.add(addresses.key(url))
                queue.append(_Visit(url, "start", addresses.site(url)))
                self.fetcher.own_server(url)
        # The sites of the start URLs, and where they redirect (http -> https, example.org -> www.).
        self.sites = {v.host for v in queue} - {""}
        teasers: list[tuple[Item, str | None]] = []
        final: dict[str, str] = {}  # a teaser's link (addresses.key) -> the address of the post its page gave
        self.beyond = 0

        def enqueue(url: str, role: str, origin: _Visit, link: str | None = None) -> None:
            found = addresses.key(url)
            if found in queued:
                return
            try:
                address = addresses.parse(url)
            except BadAddress as e:
                refused: str | None = f"not fetched: {e}"  # on which site? parsers disagree: a problem
            else:
                refused = None
                if address.site not in self.sites:
                    self.other_hosts += 1
                    return
            if len(queued) >= self.max_pages:
                self.beyond += 1  # a sitemap of a million links is not a million queued addresses
                return
            queued.add(found)
            queue.append(_Visit(url, role, origin.host, origin.depth + (role == "sitemap"), link, refused))

        while queue:
            visit = queue.popleft()
            self.visited += 1
            if self.on_url:
                self.on_url(visit.url, len(queue))
            try:
                for found in self._visit(visit, enqueue, final):
                    if isinstance(found, Item) and found.teaser:
                        teasers.append((found, found.data.get("url")))
                    else:
                        yield found
            except ValueError as e:  # an address urllib.parse cannot read, anywhere in the page
                yield Problem(visit.url, None, f"cannot read: {e}")
        if self.beyond:
            yield Notice(urls[0], f"note: the crawl stopped at --max-pages {self.max_pages}: {self.beyond} more "
                                  "addresses were not fetched")
        for item, link in teasers:
            target = final.get(addresses.key(link)) if link else None
            if target and target != link:
                item = replace(item, data={**item.data, "url": target})
            yield item

    def _visit(self, visit: _Visit, enqueue: Callable[..., None],
               final: dict[str, str]) -> Iterator[Item | Problem | Notice | Unchanged]:
        url = visit.url
        if visit.refused:
            yield Problem(url, None, visit.refused)
            return
        try:
            fetched = self.fetcher.fetch(url, validators=self._validators,
                                         allow=None if visit.role == "start" else self._on_site)
        except FetchError as e:
            yield Problem(e.url, None, e.reason)
            return
        before = self.state.known.get(fetched.url)
        if fetched.not_modified and before is not None:
            self.state.fetched[url] = self.state.fetched[fetched.url] = before
            if before.kind == "sitemap" and not self.follow:
                yield Problem(url, None, _SITEMAP_ALONE)
            yield Unchanged(url, tuple(before.ids))
            if visit.link and before.post_url:
                final[addresses.key(visit.link)] = before.post_url  # the teaser's post is the one the index holds
            if self.follow:
                self._follow(before, visit, enqueue)
            return
        if fetched.not_modified:
            yield Problem(url, None, "answered 304 Not Modified to a request that was not conditional")
            return
        if visit.role == "start" and (landed := addresses.site(fetched.url)) not in self.sites:
            if self._same_site(url, fetched.url):
                self.sites.add(landed)  # http -> https, example.org -> www.example.org
            elif self.follow:
                yield Notice(url, f"note: redirects to another site ({landed}), which is read but not crawled "
                                  f"(follow {fetched.url} to crawl it)")
        seen = _Seen(fetched.etag, fetched.last_modified, "page")
        from searchsvc.ingest.feeds import NotAFeed
        from searchsvc.ingest.pages import NotAPage

        if _kind_of(fetched) == "html":
            import trafilatura  # noqa: F401 - its import (a fifth of a second) is no page's cost
        try:
            with reading_budget(self.fetcher.timeout):
                # Read whole within the budget: the timer must never go off in the batch's code.
                found = list(self._read(fetched, visit, seen, final))
        except (NotAFeed, NotAPage, _NotReadable) as e:
            yield Problem(url, None, str(e))
            return
        except OverBudget:
            yield Problem(url, None, f"not read: reading it took more than {self.fetcher.timeout:g} s of CPU time "
                                     "(--timeout)")
            return
        yield from found
        self.state.fetched[url] = seen
        if fetched.url != url:
            self.state.fetched[fetched.url] = seen
        if self.follow:
            self._follow(seen, visit, enqueue)

    def _validators(self, url: str) -> tuple[str | None, str | None]:
        """The ETag and Last-Modified kept for `url`, if every post it gave is still in the index."""
        before = self.state.known.get(url)
        if before is None or not all(self.known.get(i, b"").hex() == p for i, p in before.posts.items()):
            return None, None
        return before.etag, before.last_modified

    def _on_site(self, address: Address) -> bool:
        return address.site in self.sites

    def _same_site(self, url: str, landed: str) -> bool:
        """Whether a start URL's redirect stays on its site: the same host but for `www.` (and
        the scheme), or the start URL's own non-public server by another name (localhost,
        127.0.0.1). Another host is read where the start URL leads, but does not join the crawl."""
        start, there = addresses.parse(url), addresses.parse(landed)  # both fetched: both read
        return addresses.same_but_www(start.site, there.site) or self.fetcher.is_own_server(there)

    def _aliases(self, url: str) -> frozenset[str]:
        """The crawl's other names of `url`'s own non-public server (a start URL's localhost that
        links to 127.0.0.1): its posts are that site's too. Never another server's."""
        here = addresses.parse(url)
        return frozenset(site for site in self.sites - {here.site}
                         if self.fetcher.same_own_server(here, addresses.parse(f"{here.scheme}://{site}/")))

    def _read(self, fetched: Fetched, visit: _Visit, seen: _Seen,
              final: dict[str, str]) -> Iterator[Item | Problem | Notice]:
        from searchsvc.ingest.feeds import read_feed
        from searchsvc.ingest.pages import read_page

        if fetched.content[:2] == _GZIP:
            fetched = replace(fetched, content=_content(fetched))
        kind = _kind_of(fetched)
        url = visit.url
        site = addresses.site(fetched.url)  # whose posts these are (batch.add_item holds them to it)
        aliases = self._aliases(fetched.url)
        if kind == "feed":
            seen.kind = "feed"
            for entry in read_feed(fetched.content, fetched.url):
                yield Item(url, entry.line, entry.data, teaser=entry.teaser, site=site, aliases=aliases)
                if entry.teaser and entry.data.get("url"):
                    seen.links.append(entry.data["url"])
        elif kind == "sitemap":
            seen.kind = "sitemap"
            pages, sitemaps = _read_sitemap(fetched.content)
            if len(pages) + len(sitemaps) > self.max_pages:
                self.beyond += len(pages) + len(sitemaps) - self.max_pages
                # More than the crawl may visit: not kept whole in memory nor in the state, and
                # not answered 304 next time (its validators are dropped), so nothing is skipped.
                pages, sitemaps = pages[:self.max_pages], sitemaps[:self.max_pages]
                seen.etag = seen.last_modified = None
            seen.links, seen.more = pages, sitemaps
            if not self.follow:
                yield Problem(url, None, _SITEMAP_ALONE)
        elif kind == "html":
            page = read_page(fetched.content, fetched.url, charset=_charset(fetched.content_type),
                             expect_listing=visit.role == "listing")
            if page.listing:
                seen.kind = "listing"
                seen.links, seen.more = page.post_links, page.next_pages
                for record in page.records:
                    yield Item(url, record.line, record.data, teaser=True, site=site, aliases=aliases)
            else:
                record = page.records[0]
                if not record.data.get("url"):
                    record.data["url"] = addresses.clean(fetched.url)
                seen.post_url = record.data["url"]
                if visit.link:
                    final[addresses.key(visit.link)] = seen.post_url
                yield Item(url, None, record.data, teaser=record.teaser, site=site, aliases=aliases)
        else:
            raise _NotReadable(f"not a web page or feed (Content-Type: {fetched.content_type or 'none'})")

    def _follow(self, seen: _Seen, visit: _Visit, enqueue: Callable[..., None]) -> None:
        for link in seen.links:
            enqueue(link, "page", visit, link=link)
        if seen.kind == "listing":
            for more in seen.more:
                enqueue(more, "listing", visit)
        elif seen.kind == "sitemap" and visit.depth < MAX_SITEMAP_DEPTH:
            for more in seen.more:
                enqueue(more, "sitemap", visit)


class OverBudget(BaseException):
    """Reading one answer took longer than its budget. A BaseException, as KeyboardInterrupt is: the
    readers' own `except Exception` (feedparser falls back to another parser) must not swallow it."""


@contextmanager
def reading_budget(seconds: float) -> Iterator[None]:
    """Raise OverBudget in the block once this process has spent `seconds` of CPU time in it.

    Pages and feeds are read in time linear in their size (pages.py, feeds.py), but within the
    16 MB an answer may have, a linear cost can still be minutes (feedparser takes a millisecond an
    entry; trafilatura's link density test is quadratic in the nesting depth), and the readers
    are libraries we cannot ask to stop. A CPU-time timer (SIGPROF) interrupts their Python code
    wherever it is; CPU time, so that a loaded machine never cuts a page short that an idle one
    reads. Signals reach the main thread only: elsewhere (no crawl runs there) nothing is bounded."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    collecting = False

    def gc_starts(phase: str, info: Any) -> None:
        nonlocal collecting
        collecting = collecting or phase == "start"

    def gc_stops(phase: str, info: Any) -> None:
        nonlocal collecting
        collecting = collecting and phase != "stop"

    def over(signum: int, frame: Any) -> None:
        # Raised in a garbage collection (in another library's gc callback), Python would print
        # and drop it: the timer goes off again 50 ms later, outside it.
        if not collecting:
            raise OverBudget

    previous = signal.signal(signal.SIGPROF, over)
    gc.callbacks.insert(0, gc_starts)  # before every other callback of a collection
    gc.callbacks.append(gc_stops)  # after every other
    # Then again every 50 ms of CPU time: where Python swallows the exception (raised in a __del__,
    # or by a library's `except BaseException`), the next one lands.
    signal.setitimer(signal.ITIMER_PROF, seconds, 0.05)
    try:
        yield
    finally:
        try:
            signal.setitimer(signal.ITIMER_PROF, 0)
        finally:  # (the timer may go off on the way out: OverBudget, and still the handler put back)
            signal.signal(signal.SIGPROF, previous)
            gc.callbacks.remove(gc_starts)
            gc.callbacks.remove(gc_stops)


_SITEMAP_ALONE = "a sitemap lists pages but holds no posts: `searchsvc follow` reads the pages it lists"


class _NotReadable(Exception):
    pass


def _kind_of(fetched: Fetched) -> str | None:
    """"feed", "sitemap", "html" or None, by the Content-Type and, for XML, the root element."""
    from searchsvc.ingest.feeds import looks_like_feed, looks_like_sitemap

    kind = fetched.content_type.split(";", 1)[0].strip().lower()
    start = fetched.content[:4096].lstrip()
    xml = start.startswith(b"<?xml")
    if kind in ("text/html", "application/xhtml+xml") and not (xml and looks_like_feed(start)):
        return "html"
    if looks_like_sitemap(start):
        return "sitemap"
    if looks_like_feed(start) or kind in ("application/rss+xml", "application/atom+xml", "application/rdf+xml"):
        return "feed"
    if not kind and start[:1] == b"<":
        return "html"
    return None


_GZIP = b"\x1f\x8b"


def _content(fetched: Fetched) -> bytes:
    """The answer's bytes, inflated when it is a gzip file (`sitemap.xml.gz`, served as a file and
    not with Content-Encoding), at most the fetcher's bound: a small file may inflate enormously."""
    if fetched.content[:2] != _GZIP:
        return fetched.content
    inflate = zlib.decompressobj(wbits=31)
    try:
        content = inflate.decompress(fetched.content, MAX_BYTES + 1)
    except zlib.error as e:
        raise _NotReadable(f"not a readable gzip file ({e})") from None
    if len(content) > MAX_BYTES:
        raise _NotReadable(f"too large: more than {MAX_BYTES // (1024 * 1024)} MB once inflated")
    return content


def _charset(content_type: str) -> str | None:
    """The charset a Content-Type header names ("text/html; charset=utf-8")."""
    for part in content_type.split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"').strip("'")
    return None


def _read_sitemap(content: bytes) -> tuple[list[str], list[str]]:
    """The page addresses of a sitemap and the sitemaps of a sitemap index (no entities, no network)."""
    import lxml.etree

    parser = lxml.etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=False)
    try:
        root = lxml.etree.fromstring(content, parser)
    except lxml.etree.XMLSyntaxError as e:
        raise _NotReadable(f"not a valid sitemap: {e}") from None
    locs = [(el.getparent(), (el.text or "").strip()) for el in root.iter("{*}loc")]
    pages = [addresses.clean(loc) for parent, loc in locs
             if is_url(loc) and lxml.etree.QName(parent).localname == "url"]
    sitemaps = [addresses.clean(loc) for parent, loc in locs
                if is_url(loc) and lxml.etree.QName(parent).localname == "sitemap"]
    return pages, sitemaps
