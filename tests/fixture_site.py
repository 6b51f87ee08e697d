"""A small Drupal-like blog served on a loopback port, for the tests of fetching and following.

Its posts are the seed's four real posts (full bodies from sample_posts/, teasers as the seed's
listing shows them) and plainly synthetic posts by fictional authors for the cases the real ones
cannot show: a page that answers 500, one that redirects, one that times out, one that is not
HTML, one that robots.txt disallows. Every request is logged (time, path, status, conditional
headers, User-Agent), so a test can prove what was fetched, when and how often.
"""

from __future__ import annotations

import hashlib
import html
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_POSTS = ROOT / "sample_posts" / "posts"


@dataclass
class Post:
    slug: str
    title: str
    date: str  # as the Drupal theme writes it: "Sa, 12/29/2020 - 13:24"
    iso: str  # 2020-12-29T13:24:00
    author: str
    body: str  # paragraphs separated by blank lines
    teaser: str  # what the listing shows

    @property
    def path(self) -> str:
        return f"/content/{self.slug}"


def _real_posts() -> list[Post]:
    """The four real posts of sample_posts/, as their blog shows them."""
    days = {"12/29/2020": "Sa", "12/24/2020": "Per", "10/08/2020": "Per", "09/29/2020": "Sa"}
    posts = []
    for path in sorted(SAMPLE_POSTS.glob("*.md"), reverse=True):
        text = path.read_text(encoding="utf-8")
        _, front, body = text.split("---\n", 2)
        meta = yaml.safe_load(front)
        when = str(meta["date"])  # "2020-12-29 13:24"
        day, clock = when.split(" ")
        y, m, d = day.split("-")
        us = f"{m}/{d}/{y}"
        paragraphs = [p.strip() for p in body.strip().split("\n\n") if p.strip()]
        posts.append(Post(
            slug=path.stem[11:], title=meta["title"], date=f"{days[us]}, {us} - {clock}",
            iso=f"{day}T{clock}:00", author=meta["author"], body="\n\n".join(paragraphs), teaser=paragraphs[0],
        ))
    return posts


def _synthetic(slug: str, title: str, iso: str, author: str, body: str) -> Post:
    y, m, d = iso[:10].split("-")
    return Post(slug, title, f"Pzt, {m}/{d}/{y} - {iso[11:16]}", iso, author, body, body.split("\n\n")[0])


SYNTHETIC_AUTHOR = "Dana Placeholder"  # a fictional author


def synthetic_posts() -> list[Post]:
    """Plainly synthetic posts by a fictional author: the cases real posts cannot show."""
    text = ("This is a synthetic test post written for searchsvc's tests. It is not a statement by anyone. "
            "Its second sentence mentions {word} so that a search can find it.\n\n"
            "A second paragraph that only the full page carries: the {word} archive continues here.")
    return [
        _synthetic("broken-server", "Synthetic post whose page fails", "2020-09-01T10:00:00",
                   SYNTHETIC_AUTHOR, text.format(word="marigold")),
        _synthetic("moved-post", "Synthetic post that moved", "2020-08-20T09:30:00",
                   SYNTHETIC_AUTHOR, text.format(word="heliotrope")),
        _synthetic("slow-post", "Synthetic post that never answers in time", "2020-08-10T08:00:00",
                   SYNTHETIC_AUTHOR, text.format(word="tamarind")),
        _synthetic("private-draft", "Synthetic draft behind robots.txt", "2020-08-01T07:00:00",
                   SYNTHETIC_AUTHOR, text.format(word="juniper")),
        _synthetic("report-file", "Synthetic report that is a PDF", "2020-07-15T12:00:00",
                   SYNTHETIC_AUTHOR, text.format(word="saffron")),
    ]


@dataclass
class Page:
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    location: str | None = None
    delay: float = 0.0
    drip: float = 0.0  # seconds between bytes: a server that never finishes its answer
    encoding: str | None = None  # Content-Encoding sent with the (already encoded) body
    modified: float = field(default_factory=lambda: 1_600_000_000.0)

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'


@dataclass
class Request:
    at: float
    path: str
    status: int
    if_none_match: str | None
    if_modified_since: str | None
    user_agent: str | None


CHROME_TOP = """<header id="header"><a href="/" rel="home">East Turkestan &amp; the Uyghurs</a></header>
<nav id="main-menu"><ul><li><a href="/">Home</a></li><li><a href="/about">About</a></li>
<li><a href="/contact">Contact us</a></li><li><a href="/donate">Donate</a></li></ul></nav>
<aside id="sidebar"><h2>Recent comments</h2><ul><li>No comments yet.</li></ul>
<h2>Navigation</h2><ul><li><a href="/archive">Archive</a></li><li><a href="/tags">Tags</a></li></ul></aside>"""
CHROME_BOTTOM = """<footer id="footer"><p>Copyright notice of the site. All rights reserved.</p>
<p><a href="/rss.xml">Subscribe to East Turkestan &amp; the Uyghurs</a></p></footer>"""


def _page(title: str, main: str, head: str = "") -> bytes:
    return (f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} | East Turkestan &amp; the Uyghurs</title>
<link rel="alternate" type="application/rss+xml" href="/rss.xml" title="RSS">{head}</head>
<body>{CHROME_TOP}<main id="content">{main}</main>{CHROME_BOTTOM}</body></html>""").encode()


def _paragraphs(text: str) -> str:
    return "".join(f"<p>{html.escape(p)}</p>" for p in text.split("\n\n"))


def _submitted(post: Post) -> str:
    return (f'<div class="submitted"><span property="dc:date dc:created" content="{post.iso}+00:00">'
            f'{post.date}</span> -- <a href="/users/{post.author.split()[0].lower()}" class="username">'
            f"{html.escape(post.author)}</a></div>")


def post_page(post: Post, base: str | None = None) -> bytes:
    main = (f'<article class="node node-blog node-full"><h1 class="title">{html.escape(post.title)}</h1>'
            f'{_submitted(post)}<div class="content">{_paragraphs(post.body)}</div>'
            '<ul class="links inline"><li><a href="/comment/reply">Add new comment</a></li></ul></article>')
    head = (f'<meta name="author" content="{html.escape(post.author)}">'
            f'<meta property="article:published_time" content="{post.iso}+00:00">')
    if base:
        head += f'<link rel="canonical" href="{base}{post.path}">'  # as Drupal 8 and WordPress write it
    return _page(post.title, main, head)


def listing_page(posts: list[Post], links: dict[str, str], page: int, pages: int) -> bytes:
    rows = []
    for post in posts:
        href = links.get(post.slug, post.path)
        rows.append(
            f'<div class="views-row"><article class="node node-blog node-teaser">'
            f'<h2><a href="{href}">{html.escape(post.title)}</a></h2>{_submitted(post)}'
            f'<div class="content"><p>{html.escape(post.teaser)}</p></div>'
            f'<ul class="links inline"><li class="node-readmore"><a href="{href}">Read more</a></li>'
            '<li><a href="/user/login">Log in</a> or <a href="/user/register">register</a> to post comments</li>'
            "</ul></article></div>")
    pager = ['<ul class="pager">']
    if page > 0:
        pager.append(f'<li><a href="/?page={page - 1}">‹ previous</a></li>')
    pager += [f'<li><a href="/?page={n}">{n + 1}</a></li>' if n != page else f"<li>{n + 1}</li>" for n in range(pages)]
    if page + 1 < pages:
        pager.append(f'<li class="pager-next"><a href="/?page={page + 1}" rel="next">next ›</a></li>')
    pager.append("</ul>")
    return _page("Statements", '<h1>Statements</h1><div class="view-content">' + "".join(rows) + "</div>"
                 + "".join(pager))


def rss_feed(posts: list[Post], base: str, full: set[str]) -> bytes:
    items = []
    for post in posts:
        link = base + post.path
        content = (f"<content:encoded><![CDATA[{_paragraphs(post.body)}]]></content:encoded>"
                   if post.slug in full else "")
        items.append(f"<item><title>{html.escape(post.title)}</title><link>{link}</link>"
                     f"<description>{html.escape(post.teaser)}</description>{content}"
                     f"<dc:creator>{html.escape(post.author)}</dc:creator>"
                     f"<pubDate>{formatdate(_epoch(post.iso), usegmt=True)}</pubDate>"
                     f'<guid isPermaLink="true">{link}</guid></item>')
    return ('<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
            f"<channel><title>East Turkestan &amp; the Uyghurs</title><link>{base}/</link>"
            "<description>Statements</description>" + "".join(items) + "</channel></rss>").encode("utf-8")


def atom_feed(posts: list[Post], base: str) -> bytes:
    entries = []
    for post in posts:
        link = base + post.path
        entries.append(
            f"<entry><title>{html.escape(post.title)}</title><link rel=\"alternate\" href=\"{link}\"/>"
            f"<id>{link}</id><published>{post.iso}Z</published><updated>{post.iso}Z</updated>"
            f"<author><name>{html.escape(post.author)}</name></author>"
            f'<content type="html">{html.escape(_paragraphs(post.body))}</content></entry>')
    return ('<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>East Turkestan &amp; the Uyghurs</title><id>{base}/</id><updated>2020-12-29T13:24:00Z</updated>"
            + "".join(entries) + "</feed>").encode("utf-8")


def sitemap(paths: list[str], base: str) -> bytes:
    urls = "".join(f"<url><loc>{base}{p}</loc></url>" for p in paths)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>').encode()


def _epoch(iso: str) -> float:
    from datetime import datetime, timezone
    return datetime.fromisoformat(iso).replace(tzinfo=timezone.utc).timestamp()


class Site:
    """The fixture blog: its pages by path, and the log of every request."""

    PER_PAGE = 4
    SLOW_SECONDS = 4.0

    def __init__(self) -> None:
        self.real = _real_posts()
        self.synthetic = synthetic_posts()
        self.pages: dict[str, Page] = {}
        self.log: list[Request] = []
        self.lock = threading.Lock()
        self.base = ""

    @property
    def posts(self) -> list[Post]:
        return self.real + self.synthetic

    def post(self, slug: str) -> Post:
        return next(p for p in self.posts if p.slug == slug)

    def build(self, base: str) -> None:
        self.base = base
        links = {"private-draft": "/private/private-draft", "report-file": "/files/report-file.pdf"}
        posts = self.posts
        pages = (len(posts) + self.PER_PAGE - 1) // self.PER_PAGE
        for n in range(pages):
            html_ = listing_page(posts[n * self.PER_PAGE:(n + 1) * self.PER_PAGE], links, n, pages)
            self.pages["/" if n == 0 else f"/?page={n}"] = Page(html_)
        for post in posts:
            self.pages[post.path] = Page(post_page(post))
        self.pages["/content/broken-server"] = Page(b"<h1>Internal Server Error</h1>", status=500)
        self.pages["/content/moved-post"] = Page(b"", status=301, location="/content/moved-post-new")
        self.pages["/content/moved-post-new"] = Page(post_page(self.post("moved-post")))
        del self.pages["/content/slow-post"]
        self.pages["/content/slow-post"] = Page(post_page(self.post("slow-post")), delay=self.SLOW_SECONDS)
        self.pages["/private/private-draft"] = Page(post_page(self.post("private-draft")))
        self.pages["/files/report-file.pdf"] = Page(b"%PDF-1.4 synthetic", content_type="application/pdf")
        self.pages["/robots.txt"] = Page(b"User-agent: *\nDisallow: /private/\n\nSitemap: " + base.encode()
                                         + b"/sitemap.xml\n", content_type="text/plain")
        self.pages["/rss.xml"] = Page(rss_feed(self.real, base, full={p.slug for p in self.real[:2]}),
                                      content_type="application/rss+xml; charset=utf-8")
        self.pages["/atom.xml"] = Page(atom_feed(self.real, base), content_type="application/atom+xml")
        self.pages["/sitemap.xml"] = Page(sitemap([p.path for p in self.real] + ["/private/private-draft",
                                                   "/content/broken-server"], base),
                                          content_type="application/xml")

    def change_post(self, slug: str, body: str) -> None:
        """A new version of a post's page (its ETag and Last-Modified change)."""
        post = self.post(slug)
        post.body = body
        path = "/content/moved-post-new" if slug == "moved-post" else post.path
        self.pages[path] = Page(post_page(post), modified=1_700_000_000.0)

    def requests(self, path: str | None = None) -> list[Request]:
        with self.lock:
            return [r for r in self.log if path is None or r.path == path]


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            page = site.pages.get(self.path)
            status = 404 if page is None else page.status
            if page is not None and status == 200:
                if self.headers.get("If-None-Match") == page.etag:
                    status = 304
            with site.lock:
                site.log.append(Request(time.monotonic(), self.path, status, self.headers.get("If-None-Match"),
                                        self.headers.get("If-Modified-Since"), self.headers.get("User-Agent")))
            if page is not None and page.delay:
                time.sleep(page.delay)
            body = b"not found" if page is None else page.body
            self.send_response(status)
            if page is not None and page.location:
                self.send_header("Location", page.location)
            if status in (200, 304) and page is not None:
                self.send_header("ETag", page.etag)
                self.send_header("Last-Modified", formatdate(page.modified, usegmt=True))
            if status == 304:
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_header("Content-Type", page.content_type if page is not None else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            if page is not None and page.encoding:
                self.send_header("Content-Encoding", page.encoding)
            self.end_headers()
            try:
                if page is not None and page.drip:
                    for byte in body:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(page.drip)
                    return
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the slow page's client gave up, as it should

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def by_title(searchsvc) -> dict[str, dict]:
    """The exported posts of an index by title."""
    return {p["title"]: p for p in searchsvc.export()}


def shown(text: str) -> str:
    """A text as a browser shows it in HTML paragraphs: runs of spaces are one space."""
    return "\n\n".join(" ".join(p.split()) for p in text.split("\n\n"))


@contextmanager
def serving(site: Site | None = None) -> Iterator[Site]:
    """The site on a free loopback port; `site.base` is its address."""
    site = site or Site()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    server.daemon_threads = True
    site.build(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
