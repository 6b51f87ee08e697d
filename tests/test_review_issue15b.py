"""Second hostile review of issue 15 (the fixes of the first one, and new ground): reproductions.

Each test states what a user is promised and fails while the product breaks that promise. All
network traffic stays on loopback (tests/fixture_site.py), every loop is bounded, every wait has
a timeout, and no assertion is about time. Posts are the seed's real ones or plainly synthetic
text by fictional authors.
"""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from fixture_site import Page, by_title, serving

DELAY = 0.0
TIMEOUT = 2.0
WEB = ("--delay", str(DELAY), "--timeout", str(TIMEOUT), "--quiet")

FILLER = ("This is a synthetic test post written for a second hostile review of searchsvc. It is not a statement "
          "by anyone; its sentences only make it long enough to be read as an article. ")




def article(title: str, paragraphs: list[str], *, head: str = "", lang: str = "en", byline: str = "") -> bytes:
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{html.escape(title)} | Fictional '
            f'Org</title>{head}</head><body><nav><a href="/">Home</a></nav><main><article class="post type-post">'
            f'<header><h1 class="entry-title">{html.escape(title)}</h1>{byline}</header>'
            f'<div class="entry-content">{body}</div></article></main><footer>Fictional Org footer</footer>'
            "</body></html>").encode()


def rss(items: list[dict], *, language: str | None = None) -> bytes:
    """An RSS 2.0 feed of items with title, link, full content, author and pubDate."""
    out = []
    for item in items:
        out.append(f"<item><title>{html.escape(item['title'])}</title><link>{html.escape(item['link'])}</link>"
                   f"<description>{html.escape(item['body'][:60])}</description>"
                   f"<content:encoded><![CDATA[<p>{html.escape(item['body'])}</p>]]></content:encoded>"
                   f"<dc:creator>{html.escape(item.get('author', 'Dana Placeholder'))}</dc:creator>"
                   f"<pubDate>{item.get('date', 'Tue, 29 Dec 2020 13:24:00 GMT')}</pubDate></item>")
    lang = f"<language>{language}</language>" if language else ""
    return ('<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
            f"<channel><title>Fictional Org</title><link>http://127.0.0.1/</link><description>Synthetic</description>"
            f"{lang}" + "".join(out) + "</channel></rss>").encode("utf-8")


FEED = "application/rss+xml; charset=utf-8"


# -- 1. dropping the #fragment of a feed's links merges different posts into one id -----------------

def test_feed_entries_linking_to_anchors_of_one_page_stay_different_posts(searchsvc, site):
    """Small organisations publish their statements on one page, each under its own heading,
    and their feed links each entry to its anchor (`/statements#2021-03-09`). The fix for
    fragments (addresses.join drops them from feed links too) gives all entries one url and
    so one id: three statements with full text in the feed become one post, the last wins."""
    items = [{"title": f"Synthetic statement {n}", "link": f"{site.base}/statements#statement-{n}",
              "body": f"Full text of synthetic statement number {n}. " + FILLER} for n in (1, 2, 3)]
    site.pages["/feed.xml"] = Page(rss(items), content_type=FEED)
    result = searchsvc("ingest", *WEB, site.base + "/feed.xml")
    titles = sorted(by_title(searchsvc))
    assert titles == ["Synthetic statement 1", "Synthetic statement 2", "Synthetic statement 3"], result.output


# -- 2. removing a tracking parameter re-encodes the others: one post, two ids ----------------------

def test_a_drupal_query_address_with_and_without_utm_parameters_is_one_post(searchsvc, site):
    """Drupal without clean URLs (and many CMSs) address posts as `/index.php?q=node/12`;
    FeedBurner adds `&utm_source=feedburner`. addresses.clean re-encodes the query whenever it
    drops a tracking parameter (urlencode writes `/` as %2F), so the feed's link becomes
    `?q=node%2F12` while the page itself says `?q=node/12`: the same post gets two ids."""
    body = [FILLER * 3, "The second paragraph of the synthetic node, which only its page carries."]
    site.pages["/index.php?q=node/12"] = Page(article("Synthetic node twelve", body))
    items = [{"title": "Synthetic node twelve", "link": f"{site.base}/index.php?q=node/12&utm_source=feedburner",
              "body": " ".join(body)}]
    site.pages["/feed.xml"] = Page(rss(items), content_type=FEED)
    searchsvc("ingest", *WEB, site.base + "/feed.xml")
    searchsvc("ingest", *WEB, site.base + "/index.php?q=node/12")
    posts = searchsvc.export()
    assert len(posts) == 1, [p["url"] for p in posts]


# -- 3. a page's date loses its UTC offset ----------------------------------------------------------

def test_a_pages_date_with_an_offset_is_converted_to_utc(searchsvc, site):
    """README: "Times with an offset are converted to UTC (and exported with Z)". A post page
    dated `2020-12-29T23:30:00-05:00` (article:published_time, as WordPress writes it) is stored
    as 2020-12-29T23:30:00, five hours off and on the wrong day: pages.py asks htmldate for
    "%Y-%m-%dT%H:%M:%S", which drops the offset. The same post read from its feed gets
    2020-12-30T04:30:00Z, so feed and page disagree and each run "updates" it."""
    body = [FILLER * 3, "A second synthetic paragraph."]
    site.pages["/late-post"] = Page(article("Synthetic late post", body, head=(
        '<meta property="article:published_time" content="2020-12-29T23:30:00-05:00">')))
    result = searchsvc("ingest", *WEB, site.base + "/late-post")
    assert result.exit_code == 0, result.output
    [post] = searchsvc.export()
    assert post["date"] == "2020-12-30T04:30:00Z", post["date"]


# -- 4. the --max-pages note undercounts what was left out --------------------------------------------

def synthetic_page(n: int) -> bytes:
    paragraphs = [f"Synthetic paragraph {k} of synthetic post {n}. " + FILLER for k in range(3)]
    return article(f"Synthetic post {n}", paragraphs)


def test_the_max_pages_note_counts_every_address_left_out_of_a_sitemap(searchsvc, site):
    """README: `note: the crawl stopped at --max-pages 5000: N more addresses were not
    fetched`. A sitemap of 40 pages followed with --max-pages 10 fetches the sitemap and 9
    pages, and says "1 more addresses were not fetched": follow.py cuts the sitemap's list to
    --max-pages before queueing, and counts only what the queue then refused (31 were left)."""
    from fixture_site import sitemap
    for n in range(40):
        site.pages[f"/p/{n}"] = Page(synthetic_page(n))
    site.pages["/sitemap.xml"] = Page(sitemap([f"/p/{n}" for n in range(40)], site.base),
                                      content_type="application/xml")
    result = searchsvc("follow", *WEB, "--max-pages", "10", site.base + "/sitemap.xml")
    assert len(searchsvc.export()) == 9, result.output
    assert "the crawl stopped at --max-pages 10: 31 more addresses were not fetched" in result.stderr, result.stderr


# -- 5. two crawls into one index: the later one throws the other's validators away -----------------

class _Gate(Page):
    """A page whose answer waits until the test opens the gate (the fixture sleeps `delay` s)."""

    gate = None

    @property
    def delay(self) -> float:  # type: ignore[override]
        self.gate.wait(30)
        return 0.0

    @delay.setter
    def delay(self, value: float) -> None:
        pass


def test_a_crawl_running_beside_another_does_not_throw_away_its_fetch_state(searchsvc, site, index_dir):
    """Two `follow`s of two sites into one index (two cron jobs): each reads
    searchsvc-fetched.json when it starts and writes its own copy after its commit, so the one
    that finishes last drops everything the other one recorded; that site's next run downloads
    every page again instead of asking conditionally (README: "a second run fetches only what
    changed")."""
    import os
    import subprocess
    import sys
    import threading
    import time

    site.pages["/content/slow-post"].delay = 0.0  # not under test here: keeps the test quick
    gate = threading.Event()
    with serving() as other:
        blocked = _Gate(synthetic_page(1))
        blocked.gate = gate
        other.pages["/held"] = blocked
        slow = subprocess.Popen([sys.executable, "-m", "searchsvc", "ingest", "--quiet", "--delay", "0",
                                 "--timeout", "60", other.base + "/held",
                                 "--index", str(index_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=os.environ.copy())
        try:
            for _ in range(300):  # until the other crawl has read the state and is waiting for its page
                if other.requests("/held"):
                    break
                time.sleep(0.05)
            assert other.requests("/held")
            searchsvc("follow", *WEB, site.base + "/")  # the fixture site, in full, meanwhile
        finally:
            gate.set()
            out, err = slow.communicate(timeout=60)
    assert slow.returncode == 0, (out, err)
    before = len(site.requests())
    searchsvc("follow", *WEB, site.base + "/")
    again = site.requests()[before:]
    unconditional = sorted(r.path for r in again if r.status == 200 and r.path.startswith("/content/")
                           and r.path != "/content/slow-post")
    assert unconditional == [], unconditional


# -- 6. a refused connection is reported as a timeout -------------------------------------------------

def test_a_refused_connection_is_not_reported_as_a_timeout(searchsvc):
    """README: each URL that cannot be fetched is `URL: reason`. A server that is down
    (connection refused, at once) is reported as "timed out after 30 s": in urllib3 2,
    NewConnectionError (and NameResolutionError, "unknown host") are subclasses of
    ConnectTimeoutError, which fetch._reason tests first. A journalist is sent looking for a
    slow server, and raising --timeout does not help."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    result = searchsvc("ingest", "--quiet", "--delay", "0", f"http://127.0.0.1:{port}/feed.xml")
    assert result.exit_code == 1
    assert "timed out" not in result.stderr, result.stderr
    assert "cannot connect" in result.stderr, result.stderr


# -- 7. http:// and https:// links to one post: two posts ---------------------------------------------

def test_a_feed_linking_with_the_other_scheme_does_not_index_every_post_twice(searchsvc, site):
    """A site moved to https (or back) whose feed still writes its links with the old scheme,
    a common WordPress misconfiguration. `follow` of the site and its feed: the feed's
    summaries link to the "other site" (addresses.site compares schemes), so their pages are
    never fetched and their teasers keep ids of their own; each post is then indexed twice,
    once in full and once as its teaser, though the politeness rules already treat http and
    https of one server as one server."""
    from fixture_site import rss_feed
    other_scheme = "https://" + site.base.removeprefix("http://")
    feed = rss_feed(site.real, other_scheme, full=set())
    site.pages["/rss.xml"] = Page(feed, content_type=FEED)
    result = searchsvc("follow", *WEB, site.base + "/", site.base + "/rss.xml")
    titles = sorted(p["title"] for p in searchsvc.export())
    assert titles == sorted({p.title for p in site.posts}), result.output


# -- 8. the fetch state outlives a restore: a page answered 304 keeps an older text -------------------

def test_after_a_restore_the_next_crawl_brings_back_the_pages_current_text(searchsvc, site, tmp_path):
    """README: restore a snapshot to repair an index; "a page answered 304 Not Modified is not
    downloaded, its posts are the index's". searchsvc-fetched.json stays in the index folder
    through `restore` (and a `--rebuild` from an older export), holding the validators of the
    pages' newest versions, and follow.py trusts it whenever the post ids are in the index. So
    after restoring last week's snapshot, every page that changed since answers 304 and the
    index keeps last week's text, silently, until the page changes again."""
    site.pages["/content/slow-post"].delay = 0.0  # not under test here: keeps the test quick
    searchsvc("follow", *WEB, site.base + "/")
    snapshot = tmp_path / "snapshot"
    assert searchsvc("snapshot", str(snapshot)).exit_code == 0
    revised = "A synthetic revised text of the moved post.\n\nIts second paragraph was revised too: heliotrope."
    site.change_post("moved-post", revised)
    searchsvc("follow", *WEB, site.base + "/")
    assert by_title(searchsvc)["Synthetic post that moved"]["body"] == revised
    assert searchsvc("restore", str(snapshot)).exit_code == 0
    result = searchsvc("follow", *WEB, site.base + "/")
    assert by_title(searchsvc)["Synthetic post that moved"]["body"] == revised, result.output


# -- 9. README's example of `follow` on the fixture site ---------------------------------------------

@pytest.mark.slow
def test_the_readme_follow_example_is_what_the_fixture_site_gives(searchsvc, site):
    """README, `searchsvc follow`: the example of two runs on tests/fixture_site.py (the second
    after one post changed) is what the site gives, line for line (the default --timeout lets
    the slow page arrive)."""
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    example = readme.split("$ searchsvc follow --delay 1 http://127.0.0.1:8000/", 3)
    runs = [part.split("\n$ ")[0].split("\n```")[0].split("\n", 1)[1].strip() for part in example[1:3]]
    outputs = []
    for n in range(2):
        result = searchsvc("follow", "--delay", "0", "--quiet", site.base + "/")
        outputs.append((result.stderr + result.stdout).replace(site.base, "http://127.0.0.1:8000").strip())
        if n == 0:
            site.change_post("moved-post", "A synthetic revised text.\n\nIts second synthetic paragraph, revised.")
    assert outputs == runs


# -- 10. a Turkish WordPress archive is read only up to its first page --------------------------------

def wordpress_archive(posts: list[tuple[str, str]], page: int, pages: int, next_label: str) -> bytes:
    """An archive page as WordPress core writes it in any language: `the_posts_pagination()`
    gives `<a class="next page-numbers">` with the translated label, and no rel="next"."""
    rows = "".join(
        f'<article class="post type-post status-publish hentry"><header class="entry-header">'
        f'<h2 class="entry-title"><a href="{href}" rel="bookmark">{html.escape(title)}</a></h2></header>'
        f'<div class="entry-summary"><p>{html.escape(title)}: sentetik bir özet, kimsenin açıklaması değildir.</p>'
        f"</div></article>" for href, title in posts)
    numbers = "".join(f'<a class="page-numbers" href="/page/{n}/">{n}</a>' if n != page else
                      f'<span aria-current="page" class="page-numbers current">{n}</span>' for n in range(1, pages + 1))
    nxt = f'<a class="next page-numbers" href="/page/{page + 1}/">{next_label}</a>' if page < pages else ""
    return (f'<!DOCTYPE html><html lang="tr"><head><meta charset="utf-8"><title>Haberler</title></head><body>'
            f'<main id="main">{rows}<nav class="navigation pagination" aria-label="Yazılar"><div class="nav-links">'
            f"{numbers}{nxt}</div></nav></main></body></html>").encode()


def test_a_turkish_wordpress_archive_is_followed_past_its_first_page(searchsvc, site):
    """README: "a listing's next pages (`rel="next"`, "next ›") are followed too". WordPress
    core's pager marks its next link by class (`next page-numbers`) with a translated label
    ("Sonraki") and no rel="next"; pages._pager reads only rel and English labels, so `follow`
    of a Turkish (or any non-English) WordPress blog indexes its first page of posts only."""
    posts = [(f"/{n}/", f"Sentetik haber {n}") for n in range(1, 5)]
    site.pages["/"] = Page(wordpress_archive(posts[:2], 1, 2, "Sonraki"))
    site.pages["/page/2/"] = Page(wordpress_archive(posts[2:], 2, 2, "Sonraki"))
    for href, title in posts:
        site.pages[href] = Page(article(title, ["Bu sentetik bir test yazısıdır; kimsenin açıklaması değildir. " * 4,
                                                "Borsada işlem hacmi arttı."], lang="tr"))
    result = searchsvc("follow", *WEB, site.base + "/")
    assert sorted(by_title(searchsvc)) == sorted(t for _, t in posts), result.output
    assert site.requests("/page/2/"), result.output
