"""Hostile review of issue 15 (feeds, pages, follow, column names, Markdown): its reproductions, now regression tests.

Each test states what a user is promised and fails while the product breaks that promise. All
network traffic stays on loopback (tests/fixture_site.py, or a raw socket server below), every
loop is bounded, every wait has a timeout. Posts are the seed's real ones or plainly synthetic
text by fictional authors.
"""

from __future__ import annotations

import gzip
import html
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fixture_site import Page, Site, by_title, listing_page, post_page, rss_feed, serving, shown

DELAY = 0.05
TIMEOUT = 1.0
WEB = ("--delay", str(DELAY), "--timeout", str(TIMEOUT))

FILLER = ("This is a synthetic test post written for a hostile review of searchsvc. It is not a statement by "
          "anyone; its sentences only make it long enough to be read as an article. ")





def article(title: str, paragraphs: list[str], *, head: str = "", after: str = "", meta: str = '<meta charset="utf-8">',
            url_in_heading: str | None = None) -> bytes:
    heading = f'<a href="{url_in_heading}">{html.escape(title)}</a>' if url_in_heading else html.escape(title)
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return (f"<!DOCTYPE html><html><head>{meta}<title>{html.escape(title)} | Fictional Org</title>{head}</head>"
            f'<body><nav><a href="/">Home</a></nav><main><article class="post type-post hentry">'
            f'<header><h1 class="entry-title">{heading}</h1></header><div class="entry-content">{body}</div>'
            f"</article>{after}</main><footer>Fictional Org footer</footer></body></html>").encode()


# -- 1. the crawl leaves the start URL's site through a redirect ------------------------------------

def test_follow_never_requests_another_host_even_through_a_redirect(searchsvc, site):
    """README/--help: "Only pages on the URL's own site are fetched". A post page linked from the
    listing that redirects to another host (here a second loopback server: in real life
    169.254.169.254, an intranet host, or an unrelated site) is fetched anyway."""
    with serving() as other:
        site.pages["/content/moved-post"] = Page(b"", status=302, location=other.base + "/content/moved-post-new")
        result = searchsvc("follow", *WEB, site.base + "/")
        assert other.requests() == [], [r.path for r in other.requests()]
        posts = by_title(searchsvc)
        assert not any(p["url"] and p["url"].startswith(other.base) for p in posts.values())
        assert result.exit_code == 1


# -- 2. a post page with a "related posts" block is read as a listing: the post itself is lost ------

def test_a_post_page_with_related_posts_is_one_post_not_a_listing(searchsvc, site):
    """A WordPress-style post page whose "Related posts" section shows two other posts as
    <article> blocks with linked headings is read as a listing of those two: the post's own
    text never reaches the index, and the crawl follows the related links as teasers."""
    body = [FILLER * 3, "The second paragraph of the main synthetic post, which only its page carries."]
    related = ('<section class="related-posts"><h2>Related posts</h2>'
               '<article class="post type-post"><h3 class="entry-title"><a href="/content/other-one">Other synthetic '
               'one</a></h3><p>A teaser of another synthetic post.</p></article>'
               '<article class="post type-post"><h3 class="entry-title"><a href="/content/other-two">Other synthetic '
               'two</a></h3><p>A teaser of a third synthetic post.</p></article></section>')
    site.pages["/content/main"] = Page(article("Main synthetic post", body, after=related))
    result = searchsvc("ingest", *WEB, site.base + "/content/main")
    posts = by_title(searchsvc)
    assert list(posts) == ["Main synthetic post"], (list(posts), result.output)
    assert posts["Main synthetic post"]["body"] == shown("\n\n".join(body))


# -- 3. a page's charset given by its HTTP header only is ignored: text garbled ---------------------

def test_a_utf8_page_declared_only_in_the_http_header_is_not_garbled(searchsvc, site):
    """HTML5 pages often declare their charset only in Content-Type. The page is parsed from
    bytes without it, libxml2 falls back to Latin-1, and Turkish and Uyghur text is stored as
    mojibake, silently."""
    title = "Sentetik başlık: Çarşamba günü Iğdır"
    body = ["Bu sentetik bir test yazısıdır; kimsenin açıklaması değildir. " * 4, "ئۇيغۇر تىلىدا سىناق ئابزاس"]
    site.pages["/content/tr"] = Page(article(title, body, meta=""), content_type="text/html; charset=utf-8")
    result = searchsvc("ingest", *WEB, site.base + "/content/tr")
    assert result.exit_code == 0, result.output
    [post] = searchsvc.export()
    assert post["title"] == title
    assert "açıklaması" in post["body"] and "ئۇيغۇر" in post["body"]


# -- 4. the same post twice: links differing only by tracking parameters -----------------------------

def test_the_same_post_linked_with_and_without_utm_parameters_is_indexed_once(searchsvc, site):
    """A feed whose links carry ?utm_source=rss (WordPress and newsletter plugins add them)
    and the site's listing (plain links) lead to the same pages: every real post is indexed
    twice, each copy with the full body."""
    feed = rss_feed(site.real, site.base, full=set()).replace(b"</link>", b"?utm_source=rss&amp;utm_medium=rss</link>")
    site.pages["/rss.xml"] = Page(feed, content_type="application/rss+xml; charset=utf-8")
    for post in site.real:
        site.pages[post.path + "?utm_source=rss&utm_medium=rss"] = site.pages[post.path]  # the server ignores them
    site.pages["/"] = Page(listing_page(site.real, {}, 0, 1))
    searchsvc("follow", *WEB, site.base + "/", site.base + "/rss.xml")
    posts = searchsvc.export()
    assert sorted(p["title"] for p in posts) == sorted(p.title for p in site.real), [p["url"] for p in posts]


def test_the_same_post_linked_with_and_without_a_trailing_slash_is_indexed_once(searchsvc, site):
    for post in site.real:
        site.pages[post.path + "/"] = site.pages[post.path]
    site.pages["/"] = Page(listing_page(site.real, {p.slug: p.path + "/" for p in site.real}, 0, 1))
    site.pages["/rss.xml"] = Page(rss_feed(site.real, site.base, full=set()), content_type="application/rss+xml")
    searchsvc("follow", *WEB, site.base + "/", site.base + "/rss.xml")
    posts = searchsvc.export()
    assert sorted(p["title"] for p in posts) == sorted(p.title for p in site.real), [p["url"] for p in posts]


# -- 5. a canonical link shared by many pages collapses them into one post --------------------------

def test_pages_whose_canonical_link_is_the_home_page_are_not_merged_into_one_post(searchsvc, site):
    """A misconfigured SEO plugin gives every page <link rel="canonical" href="/">. The id is
    derived from the canonical address, so the four real posts become one id, and three of
    them are lost ("the last one wins")."""
    for post in site.real:
        site.pages[post.path] = Page(post_page(post).replace(b"</head>", b'<link rel="canonical" href="/"></head>'))
    result = searchsvc("follow", *WEB, site.base + "/rss.xml")
    posts = by_title(searchsvc)
    assert sorted(posts) == sorted(p.title for p in site.real), result.output


def test_a_canonical_link_to_another_host_does_not_become_the_posts_url(searchsvc, site):
    """A page on the followed site claims, by its canonical link, to be a page of another
    organisation's site; the index then attributes the post to that site's address."""
    post = site.real[0]
    site.pages[post.path] = Page(post_page(post).replace(
        b"</head>", b'<link rel="canonical" href="https://other-organisation.example/statement"></head>'))
    searchsvc("ingest", *WEB, site.base + post.path)
    [stored] = searchsvc.export()
    assert stored["url"].startswith(site.base), stored["url"]


# -- 6. robots.txt that is not read ------------------------------------------------------------------

def test_a_robots_txt_with_a_utf8_byte_order_mark_is_obeyed(searchsvc, site):
    """A robots.txt saved by a Windows editor starts with a BOM (RFC 9309 and Google accept
    it). Decoded as "utf-8", the BOM sticks to the first "User-agent" line, Protego drops the
    group, and the Disallow is ignored."""
    site.pages["/robots.txt"] = Page(b"\xef\xbb\xbfUser-agent: *\nDisallow: /content/\n", content_type="text/plain")
    searchsvc("follow", *WEB, site.base + "/rss.xml")
    assert not [r.path for r in site.requests() if r.path.startswith("/content/")]


def test_a_redirected_robots_txt_is_obeyed(searchsvc, site):
    """RFC 9309 2.3.1.2: crawlers SHOULD follow at least five redirects for robots.txt. A
    robots.txt that redirects (to another path on the same host) is read as no rules at all."""
    site.pages["/robots.txt"] = Page(b"", status=301, location="/static/robots.txt")
    site.pages["/static/robots.txt"] = Page(b"User-agent: *\nDisallow: /content/\n", content_type="text/plain")
    searchsvc("follow", *WEB, site.base + "/rss.xml")
    assert not [r.path for r in site.requests() if r.path.startswith("/content/")]


# -- 7. the whole-answer timeout does not cover the answer's head -----------------------------------

@contextmanager
def raw_server(handler) -> Iterator[str]:
    """A loopback TCP server whose one connection handler writes raw bytes; yields its base URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=_handle, args=(conn,), daemon=True).start()

    def _handle(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                request = conn.recv(65536).decode("latin-1")
                handler(conn, request.split(" ", 2)[1] if " " in request else "/", stop)
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(2)
        listener.close()


def test_a_server_dripping_its_headers_is_cut_off_at_the_timeout(searchsvc):
    """--timeout is "seconds a page may take to arrive in full". A server sending its status
    line and headers a byte every 0.1 s (under urllib3's per-read timeout) holds the crawl
    for as long as it likes: the deadline is only checked while the body is read."""
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
            b"Content-Length: 0\r\nConnection: close\r\n\r\n")

    def handler(conn, path, stop):
        if path == "/robots.txt":
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        for byte in head:  # about 7 s in all, bounded
            if stop.is_set():
                return
            conn.sendall(bytes([byte]))
            time.sleep(0.1)

    with raw_server(handler) as base:
        started = time.monotonic()
        result = searchsvc("ingest", "--delay", "0", "--timeout", "0.5", base + "/slow-head")
        took = time.monotonic() - started
    assert took < 2, f"took {took:.1f} s with --timeout 0.5; {result.output}"


# -- 8. a feed's date in a named US time zone loses its zone ----------------------------------------

@pytest.mark.filterwarnings("ignore::dateutil.parser.UnknownTimezoneWarning")  # the CLI prints it to stderr
def test_a_feed_date_with_a_named_zone_is_stored_in_utc(searchsvc, write):
    """RFC 822 (RSS 2.0's date format) allows EST, EDT, PST ... feedparser reads them right,
    but feeds._date keeps the date as written whenever dateutil can parse it, and dateutil
    drops zone names it does not know: 23:30 EST (04:30 UTC the next day) is stored as 23:30
    with no zone, on the wrong day."""
    feed = ('<?xml version="1.0"?><rss version="2.0"><channel><title>Fictional feed</title><item>'
            "<title>A synthetic dated entry</title><link>https://blog.example.org/dated</link>"
            "<description>A synthetic body by a fictional author.</description>"
            "<pubDate>Tue, 10 Jun 2003 23:30:00 EST</pubDate></item></channel></rss>")
    result = searchsvc("ingest", write("zone.rss", feed))
    assert result.exit_code == 0, result.output
    [post] = searchsvc.export()
    assert post["date"] in ("2003-06-11T04:30:00Z", "2003-06-11T04:30:00+00:00"), post["date"]


# -- 9. a teaser longer than the page's text replaces it in the same run ----------------------------

def test_a_listing_showing_the_whole_post_and_share_buttons_does_not_replace_the_page(searchsvc, site):
    """Many WordPress front pages show whole posts, with share buttons and a "like" widget.
    The listing's block text (post + widget text) is longer than the page's (trafilatura
    leaves the widgets out), so in the same run the teaser replaces the post's own page."""
    post = site.real[1]
    widget = ('<div class="sharedaddy sd-sharing-enabled"><h3 class="sd-title">Share this:</h3><ul>'
              '<li><span>Share on X (Opens in new window)</span></li><li><span>Share on Facebook (Opens in new '
              'window)</span></li><li><span>Email a link to a friend</span></li></ul></div>'
              '<div class="sharedaddy sd-like"><span>Like this:</span> <span>Like Loading...</span></div>')
    row = (f'<article class="post type-post hentry"><h2 class="entry-title"><a href="{post.path}">'
           f'{html.escape(post.title)}</a></h2><div class="entry-content">'
           + "".join(f"<p>{html.escape(p)}</p>" for p in post.body.split("\n\n")) + widget + "</div></article>")
    other = site.real[2]
    row2 = (f'<article class="post type-post hentry"><h2 class="entry-title"><a href="{other.path}">'
            f'{html.escape(other.title)}</a></h2><div class="entry-content"><p>{html.escape(other.teaser)}</p>'
            "</div></article>")
    site.pages["/blog"] = Page(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Blog</title></head>"
                               f"<body><main>{row}{row2}</main></body></html>".encode())
    searchsvc("follow", *WEB, site.base + "/blog")
    stored = by_title(searchsvc)[post.title]
    assert "Share this" not in stored["body"] and "Like Loading" not in stored["body"], stored["body"][-200:]
    assert stored["body"] == shown(post.body)


# -- 10. conditional headers of one page sent to another ---------------------------------------------

@contextmanager
def last_modified_site(pages: dict[str, tuple[int, str, bytes, float]]) -> Iterator[tuple[str, list]]:
    """A server that, like many CMSs, sends Last-Modified (no ETag) and honours If-Modified-Since.
    pages: path -> (status, Location, body, modified); yields (base, log of (path, status, If-Modified-Since))."""
    from email.utils import formatdate, parsedate_to_datetime
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    log: list = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            status, location, body, modified = pages.get(self.path, (404, "", b"not found", 0.0))
            since = self.headers.get("If-Modified-Since")
            if status == 200 and since and parsedate_to_datetime(since).timestamp() >= modified:
                status = 304
            log.append((self.path, status, since))
            self.send_response(status)
            if location:
                self.send_header("Location", location)
            if status in (200, 304):
                self.send_header("Last-Modified", formatdate(modified, usegmt=True))
            payload = b"" if status == 304 else body
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", log
    finally:
        server.shutdown()
        server.server_close()


def test_a_redirect_that_now_leads_elsewhere_is_not_answered_304_for_the_old_target(searchsvc):
    """The fetch state keeps a URL's validators, and `fetch` sends them on every hop of its
    redirects. /latest (a shortlink) led to post A last run and leads to post B now; B's
    server honours If-Modified-Since and B is older than A, so it answers 304 to A's date,
    and post B is never indexed (nor reported)."""
    site = Site()
    site.build("http://unused.invalid")
    a, b = site.synthetic[0], site.synthetic[1]
    pages = {"/robots.txt": (404, "", b"", 0.0), "/latest": (302, a.path, b"", 0.0),
             a.path: (200, "", post_page(a), 1_700_000_000.0), b.path: (200, "", post_page(b), 1_600_000_000.0)}
    with last_modified_site(pages) as (base, log):
        searchsvc("ingest", *WEB, base + "/latest")
        assert [p["title"] for p in searchsvc.export()] == [a.title]
        pages["/latest"] = (302, b.path, b"", 0.0)
        result = searchsvc("ingest", *WEB, base + "/latest")
        assert (b.path, 304, log[-1][2]) != log[-1], f"B answered 304 to A's Last-Modified: {log[-1]}"
    assert sorted(p["title"] for p in searchsvc.export()) == sorted([a.title, b.title]), result.output


# -- 11. a gzip-compressed sitemap ---------------------------------------------------------------------

def test_a_gzip_sitemap_listed_by_a_sitemap_index_is_read(searchsvc, site):
    """Large sites list sitemap.xml.gz files in their sitemap index (sitemaps.org allows it).
    Served as application/x-gzip without Content-Encoding, it is "not a web page or feed"."""
    urls = "".join(f"<url><loc>{site.base}{p.path}</loc></url>" for p in site.real)
    sitemap = (f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
               f"{urls}</urlset>").encode()
    site.pages["/sitemap-posts.xml.gz"] = Page(gzip.compress(sitemap), content_type="application/x-gzip")
    site.pages["/sitemap_index.xml"] = Page(
        (f'<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
         f"<sitemap><loc>{site.base}/sitemap-posts.xml.gz</loc></sitemap></sitemapindex>").encode(),
        content_type="application/xml")
    result = searchsvc("follow", *WEB, site.base + "/sitemap_index.xml")
    assert result.exit_code == 0, result.output
    assert sorted(by_title(searchsvc)) == sorted(p.title for p in site.real)


# -- 12. listings read as one post ---------------------------------------------------------------------

def _ghost_home(slugs: list[str]) -> bytes:
    """The home page of Ghost's default theme (Casper): each card's heading is inside its link."""
    cards = "".join(
        f'<article class="post-card post"><a class="post-card-image-link" href="/{s}/"><img src="/{s}.jpg" alt=""></a>'
        f'<div class="post-card-content"><a class="post-card-content-link" href="/{s}/">'
        f'<header class="post-card-header"><h2 class="post-card-title">Synthetic Ghost post {s}</h2></header>'
        f'<div class="post-card-excerpt">The excerpt of synthetic post {s}, written for a test.</div></a>'
        f'<footer class="post-card-meta"><span class="post-card-author">Fictional Author</span></footer></div>'
        "</article>" for s in slugs)
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>Fictional Org</title></head><body>'
            f'<main class="site-main"><div class="post-feed">{cards}</div></main></body></html>').encode()


def test_a_ghost_home_page_is_a_listing_not_a_post(searchsvc, site):
    """Ghost's default theme puts each card's <h2> inside its link, not a link inside the
    heading: no block is found, the listing is read as ONE post (the first card's title, its
    excerpt as a full body, the home page's address), and no post page is followed."""
    slugs = ["one", "two", "three"]
    site.pages["/"] = Page(_ghost_home(slugs))
    for s in slugs:
        site.pages[f"/{s}/"] = Page(article(f"Synthetic Ghost post {s}", [FILLER * 3]))
    result = searchsvc("follow", *WEB, site.base + "/")
    posts = searchsvc.export()
    assert not [p for p in posts if p["url"] == site.base + "/"], result.output
    assert sorted(p["title"] for p in posts) == sorted(f"Synthetic Ghost post {s}" for s in slugs)


def _wp_listing(rows: list[tuple[str, str]], next_page: str | None) -> bytes:
    articles = "".join(
        f'<article class="post type-post"><h2 class="entry-title"><a href="{href}">{html.escape(title)}</a></h2>'
        f'<div class="entry-summary"><p>The excerpt of {html.escape(title)}, written for a test by a fictional '
        "author.</p></div></article>" for href, title in rows)
    pager = f'<nav class="pagination"><a class="next" href="{next_page}">Older posts</a></nav>' if next_page else ""
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>Fictional blog</title></head><body><main>'
            f"{articles}{pager}</main></body></html>").encode()


def test_the_last_page_of_a_listing_with_one_excerpt_is_not_a_post(searchsvc, site):
    """The last page of a pager holds one excerpt, without a teaser class or "Read more": it
    is read as a post whose address is the listing page (/page/2/) and whose full body is the
    excerpt; the post's own page is never fetched. When a new post pushes another excerpt
    onto /page/2/, that 'post' is updated in place: one real post replaced by another."""
    rows = [(f"/content/s{i}", f"Synthetic listed post {i}") for i in range(3)]
    site.pages["/blog/"] = Page(_wp_listing(rows[:2], "/page/2/"))
    site.pages["/page/2/"] = Page(_wp_listing(rows[2:], None))
    for href, title in rows:
        site.pages[href] = Page(article(title, [FILLER * 3]))
    result = searchsvc("follow", *WEB, site.base + "/blog/")
    posts = {p["title"]: p for p in searchsvc.export()}
    assert sorted(posts) == sorted(t for _, t in rows), result.output
    assert all(p["url"].startswith(site.base + "/content/") for p in posts.values()), [p["url"] for p in posts.values()]


# -- 13. a feed served as text/html ----------------------------------------------------------------------

def test_a_feed_served_as_text_html_with_a_stylesheet_prolog_is_read_as_a_feed(searchsvc, site):
    """Feeds with an xml-stylesheet instruction and a generator comment push the <rss> root past
    the 200 bytes `_kind_of` looks at when the server says text/html (a common misconfiguration):
    the feed is read as an HTML page."""
    feed = rss_feed(site.real, site.base, full={p.slug for p in site.real}).replace(
        b'<?xml version="1.0" encoding="utf-8"?>\n',
        b'<?xml version="1.0" encoding="utf-8"?>\n<?xml-stylesheet type="text/xsl" media="screen" '
        b'href="/feed-style.xsl"?>\n<!-- generator="a fictional CMS/6.4" on a fictional site, for a test; '
        b"cached page served by a fictional cache plugin -->\n")
    site.pages["/feed/"] = Page(feed, content_type="text/html; charset=UTF-8")
    result = searchsvc("ingest", *WEB, site.base + "/feed/")
    assert result.exit_code == 0, result.output
    assert sorted(by_title(searchsvc)) == sorted(p.title for p in site.real)


# -- 14. --rebuild drops a post whose page failed once, though its listing still lists it ----------------

def test_follow_rebuild_keeps_a_post_whose_page_fails_while_its_listing_is_unchanged(searchsvc, site):
    """README: "A page that fails leaves the teaser: the post is still found". In a rebuild
    whose listing answers 304, a page that fails this once (a 500) has no teaser and no
    'unchanged' entry: its post, indexed in full yesterday, is dropped from the index."""
    site.pages["/rss.xml"] = Page(rss_feed(site.real, site.base, full=set()), content_type="application/rss+xml")
    searchsvc("follow", *WEB, site.base + "/rss.xml")
    assert len(searchsvc.export()) == 4
    victim = site.real[0]
    site.pages[victim.path] = Page(b"<h1>Internal Server Error</h1>", status=500)
    result = searchsvc("follow", "--rebuild", *WEB, site.base + "/rss.xml")
    assert result.stderr == f"{site.base}{victim.path}: HTTP 500\n"
    assert victim.title in by_title(searchsvc), result.stdout


# -- 15. column names differing only in case --------------------------------------------------------------

def test_columns_title_and_Title_neither_is_lost_silently(searchsvc, write):
    """A CSV with `Title` and `title` columns: the first is the title searched and shown, the
    second is kept as an extra named "title", and `export` (extras written after the known
    fields) writes the SECOND as the title; no warning. The index and its export disagree,
    and an export read back in changes the post's title."""
    path = write("case.csv", "Title,title,body\nFirst synthetic title,Second synthetic title,A synthetic body\n")
    good = write("good.csv", "title,body\nA synthetic title,A synthetic body\n")
    result = searchsvc("ingest", path, good)
    # Fixed: one invalid record, saying why, and the other file's post kept.
    assert result.exit_code == 1
    assert result.stderr == (f"{path}:2: 'Title' and 'title' are both the field 'title' (names are matched "
                             "ignoring case): keep one\n")
    assert [p["title"] for p in searchsvc.export()] == ["A synthetic title"]


# -- 16. one malformed link aborts the whole crawl -------------------------------------------------------

def test_one_link_with_a_malformed_host_does_not_abort_the_whole_crawl(searchsvc, site):
    """A template placeholder left in a listing (`href="https://[site-domain]/..."`) makes
    urllib.parse raise ValueError in pages._read_listing; nothing catches it, so `follow`
    ends with "unexpected ... (a bug)" and NOTHING is written: the posts of every other page
    that did arrive are lost."""
    rows = [(p.path, p.title) for p in site.real[:2]] + [("https://[site-domain]/content/x", "Placeholder link")]
    site.pages["/page/2/"] = Page(_wp_listing(rows, None))
    site.pages["/"] = Page(listing_page(site.real[2:], {}, 0, 1).replace(
        b"</ul></main>", b'</ul><a rel="next" href="/page/2/">next</a></main>'))
    result = searchsvc("follow", *WEB, site.base + "/")
    assert "a bug" not in result.output, result.output
    assert len(searchsvc.export()) >= 4, result.output


def test_a_saved_page_with_a_malformed_canonical_link_is_one_problem_not_a_crash(searchsvc, write):
    page = article("A synthetic post", [FILLER * 3], head='<link rel="canonical" href="http://[oops/">')
    good = write("good.html", article("Another synthetic post", [FILLER * 3]))
    result = searchsvc("ingest", write("bad.html", page), good)
    assert "a bug" not in result.output, result.output
    assert [p["title"] for p in searchsvc.export()] == ["Another synthetic post"] or len(searchsvc.export()) == 2


# -- 17. robots.txt cannot address a crawler by the name its User-Agent gives -----------------------------

def test_robots_txt_addressing_the_user_agent_the_user_chose_is_obeyed(searchsvc, site):
    """--help: "--user-agent TEXT  The User-Agent header ... add a contact address". A user
    archiving for their newsroom sends `FictionalNewsroomArchiver/1.0 (+mailto:...)`; the site
    owner sees that name in the logs and writes `User-agent: FictionalNewsroomArchiver /
    Disallow: /`. Robots groups are matched against the fixed token "searchsvc" only, so the
    owner's refusal is ignored."""
    site.pages["/robots.txt"] = Page(b"User-agent: FictionalNewsroomArchiver\nDisallow: /\n", content_type="text/plain")
    searchsvc("follow", *WEB, "--user-agent", "FictionalNewsroomArchiver/1.0 (+mailto:archive@example.org)",
              site.base + "/rss.xml")
    assert [r.path for r in site.requests()] == ["/robots.txt"]


# -- 18. an excerpt in content:encoded replaces the full text indexed earlier ------------------------------

def test_a_feed_whose_content_is_an_excerpt_does_not_cut_a_post_short(searchsvc, site):
    """Some feeds put an excerpt ending in "[…]" / "Continue reading" into content:encoded
    (the 'full content' element). `feeds._entry` takes any content as the full body (not a
    teaser), so a post indexed in full from its page yesterday is replaced by its excerpt
    ("1 updated"), and its page is not fetched to check."""
    post = site.real[0]
    searchsvc("ingest", *WEB, site.base + post.path)
    full = by_title(searchsvc)[post.title]["body"]
    excerpt = (html.escape(post.teaser[:200]) + " […] <a href=&quot;" + site.base + post.path
               + "&quot;>Continue reading →</a>")
    feed = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>Fictional</title>'
            f"<item><title>{html.escape(post.title)}</title><link>{site.base}{post.path}</link>"
            f"<content:encoded>{excerpt.replace('&quot;', '&amp;quot;')}</content:encoded></item></channel></rss>")
    site.pages["/excerpt.xml"] = Page(feed.encode(), content_type="application/rss+xml")
    result = searchsvc("follow", *WEB, site.base + "/excerpt.xml")
    assert by_title(searchsvc)[post.title]["body"] == full, result.output


# -- 19. the crawl's memory and state grow with every URL a sitemap lists, not with --max-pages -----------

def test_the_fetch_state_of_a_two_request_crawl_stays_small(searchsvc, site, index_dir):
    """Measured by hand: a sitemap index of four 15 MB sitemaps (1.1M URLs), `follow
    --max-pages 6`: peak RSS 528 MB, 39 s, and a 41 MB searchsvc-fetched.json (every listed
    URL is queued, and kept in the state as the sitemap's links). Past 64 MB the state is
    discarded wholesale on the next run ("every page is fetched in full"). A hostile site
    serves such sitemaps gzip-compressed at a few hundred KB each."""
    from searchsvc.ingest.follow import STATE_FILE

    urls = "".join(f"<url><loc>{site.base}/p/{i:06d}</loc></url>" for i in range(20000))
    site.pages["/big-sitemap.xml"] = Page(
        (f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
         f"{urls}</urlset>").encode(), content_type="application/xml")
    searchsvc("follow", *WEB, "--max-pages", "2", site.base + "/big-sitemap.xml")
    size = (index_dir / STATE_FILE).stat().st_size
    assert size < 100_000, f"{size} bytes of state for a crawl of 2 requests"


# -- 20. a Markdown post is rendered afresh, without a bound, on every view -----------------------------

def test_a_hostile_markdown_table_is_rendered_once_at_ingest_not_on_every_view(searchsvc, write, client_for, index_dir,
                                                                              monkeypatch):
    """A feed entry of type text/markdown (or a .md file) holding a wide table: markdown-it-py
    spends about 13 us a character on it (measured: 1 MB, 12.6 s). It was rendered again on
    every GET /posts/ID and /api/posts/ID (search/posts.py), so a few requests for one post
    occupied every worker. The index now holds the HTML rendered at ingest: the views read it,
    and mark a query's words in it, without the renderer; a table too long to render (over
    markup.MAX_SOURCE_CHARS) is shown as written, with a warning at ingest."""
    def feed(table: str) -> str:
        return ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Fictional'
                "</title><id>urn:fictional</id><updated>2020-01-01T00:00:00Z</updated><entry><title>Synthetic wide "
                f"table of {len(table)}</title><id>urn:fictional:{len(table)}</id>"
                "<updated>2020-01-01T00:00:00Z</updated>"
                f'<content type="text/markdown">{html.escape(table)}</content></entry></feed>')

    def wide(n: int) -> str:
        return "|a" * n + "\n|" + "-|" * n + "\n" + "|b" * n + "\n"

    small, long = wide(1_000) * 2, wide(22_000) * 2  # 12 KB; 264 KB, over the bound
    assert searchsvc("ingest", write("small.atom", feed(small))).exit_code == 0
    result = searchsvc("ingest", path := write("long.atom", feed(long)))
    posts = {len(post["body"]): post["id"] for post in searchsvc.export()}
    assert (result.exit_code, sorted(posts)) == (0, [len(small) - 1, len(long) - 1])  # the last newline stripped
    assert result.stderr == (f"{path}:1: warning: the Markdown of post '{posts[len(long) - 1]}' is "
                             f"{len(long) - 1:,} characters long, more than the 250,000 rendered; it is shown and "
                             "searched as plain text\n")
    client = client_for(index_dir)

    def no_rendering():
        raise AssertionError("Markdown rendered on a view")

    monkeypatch.setattr("searchsvc.markup._parser", no_rendering)
    page = client.get(f"/posts/{posts[len(small) - 1]}?q=b").get_data(as_text=True)
    assert page.count("<td><mark>b</mark></td>") == 2_000
    api = client.get(f"/api/posts/{posts[len(small) - 1]}?q=b").get_json()
    assert api["body_html"].count("<td><mark>b</mark></td>") == 2_000 and api["body_html"] in page
    page = client.get(f"/posts/{posts[len(long) - 1]}").get_data(as_text=True)
    assert "<td>" not in page and "Markdown is too long to show formatted" in page
    assert client.get(f"/api/posts/{posts[len(long) - 1]}").get_json()["body_html"] is None


def test_the_same_post_linked_from_a_feed_with_a_fragment_is_indexed_once(searchsvc, site):
    """Listing links are stripped of their #fragment (urldefrag), feed links are not: a feed
    linking to `/content/x#more` makes the page's post a second copy under another id."""
    feed = rss_feed(site.real, site.base, full=set()).replace(b"</link>", b"#more</link>")
    site.pages["/rss.xml"] = Page(feed, content_type="application/rss+xml; charset=utf-8")
    site.pages["/"] = Page(listing_page(site.real, {}, 0, 1))
    searchsvc("follow", *WEB, site.base + "/", site.base + "/rss.xml")
    posts = searchsvc.export()
    assert sorted(p["title"] for p in posts) == sorted(p.title for p in site.real), [p["url"] for p in posts]


def test_a_redirect_to_a_malformed_address_is_one_fetch_error(searchsvc, site):
    """fetch.Fetcher.fetch joins a Location header with urljoin, which raises ValueError for
    `http://[oops/`: the whole `ingest` ends as "a bug" and the other URL's posts are lost."""
    site.pages["/bad-redirect"] = Page(b"", status=302, location="http://[oops/")
    result = searchsvc("ingest", *WEB, site.base + "/bad-redirect", site.base + "/atom.xml")
    assert result.stderr.startswith(f"{site.base}/bad-redirect: "), result.output
    assert len(searchsvc.export()) == 4


def test_a_record_whose_link_column_is_malformed_is_one_invalid_record(searchsvc, write):
    """`link` and `permalink` are now read as `url`. records.record_from_mapping checks a url
    with urlsplit, which raises ValueError for `http://[oops/`: instead of `FILE:3: ...` the
    whole ingest ends as "a bug" and the file's valid records are lost. (The same ValueError
    comes from a sitemap's <loc> (follow._read_sitemap/is_url) and `follow 'http://[oops/'`.)"""
    path = write("links.csv", "headline,text,link\nA synthetic headline,A synthetic body,https://blog.example.org/a\n"
                              "Another synthetic headline,Another body,http://[oops/\n")
    result = searchsvc("ingest", path)
    assert result.stderr.startswith(f"{path}:3: "), result.output
    assert [p["title"] for p in searchsvc.export()] == ["A synthetic headline"]
