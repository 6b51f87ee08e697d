"""Ingesting from the web: `ingest URL`, `follow URL`, feeds and pages as files.

Every network test runs against tests/fixture_site.py on a free loopback port: a Drupal-like
blog built from the seed's four real posts and plainly synthetic posts by a fictional author.
Its request log is the ground truth for what was fetched, when, and how.
"""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import pytest
from fixture_site import SYNTHETIC_AUTHOR, Page, Site, atom_feed, by_title, listing_page, post_page, rss_feed, shown

from searchsvc.ingest.fetch import USER_AGENT
from searchsvc.ingest.follow import STATE_FILE

# Small enough for a quick test, large enough to tell from no delay at all in the server's log.
DELAY = 0.1
TIMEOUT = 0.5
WEB = ("--delay", str(DELAY), "--timeout", str(TIMEOUT))





def failures(base: str) -> str:
    return (f"{base}/content/broken-server: HTTP 500\n"
            f"{base}/content/slow-post: timed out after {TIMEOUT:g} s\n"
            f"{base}/private/private-draft: not fetched: robots.txt disallows it\n"
            f"{base}/files/report-file.pdf: not a web page or feed (Content-Type: application/pdf)\n")


def test_follow_a_site_indexes_every_post_with_its_full_body_and_obeys_robots_and_the_delay(searchsvc, site):
    result = searchsvc("follow", *WEB, site.base + "/")
    assert result.exit_code == 1  # pages failed
    assert result.stdout == ("Fetched 12 URLs (0 not modified, 4 failed): 9 new, 0 updated, 0 unchanged, "
                             "5 teasers kept aside, 0 invalid, 0 skipped files\n")
    assert result.stderr == failures(site.base)
    posts = by_title(searchsvc)
    assert len(posts) == 9
    # The real posts: their full bodies as the blog's own pages show them, menus and footers left out.
    for post in site.real:
        stored = posts[post.title]
        assert stored["body"] == shown(post.body)
        assert stored["author"] == "Kanat"
        assert stored["date"] == post.iso + "Z"  # the page's meta tag gives +00:00
        assert stored["url"] == site.base + post.path
    # The post that moved: its full body, at its new address; the listing's teaser was kept aside.
    moved = posts["Synthetic post that moved"]
    assert moved["body"] == site.post("moved-post").body and moved["url"] == site.base + "/content/moved-post-new"
    # Posts whose page failed keep their teaser (the posts that did arrive are not lost).
    for slug in ("broken-server", "slow-post", "private-draft", "report-file"):
        post = site.post(slug)
        assert posts[post.title]["body"] == post.teaser != post.body
        assert posts[post.title]["author"] == SYNTHETIC_AUTHOR
    assert not any("Copyright notice" in p["body"] or "Contact us" in p["body"] for p in posts.values())

    log = site.requests()
    assert [r.path for r in log][:2] == ["/robots.txt", "/"]
    assert sum(r.path == "/robots.txt" for r in log) == 1
    assert not any(r.path.startswith("/private/") for r in log)  # robots.txt said no
    assert {r.user_agent for r in log} == {USER_AGENT}
    gaps = [b.at - a.at for a, b in zip(log, log[1:], strict=False)]
    assert min(gaps) >= DELAY * 0.9, gaps  # one request at a time, DELAY apart (server clock)


@pytest.mark.slow  # three crawls, each waiting out the slow page's timeout
def test_a_second_run_fetches_only_what_changed(searchsvc, site):
    searchsvc("follow", *WEB, site.base + "/")
    first = len(site.requests())
    site.change_post("moved-post", "This is a synthetic test post written for searchsvc's tests, now revised.\n\n"
                                   "Its second paragraph was revised too: heliotrope.")
    result = searchsvc("follow", *WEB, site.base + "/")
    assert result.stdout == ("Fetched 12 URLs (7 not modified, 4 failed): 0 new, 1 updated, 8 unchanged, "
                             "0 invalid, 0 skipped files\n")
    assert result.stderr == failures(site.base)
    again = site.requests()[first:]
    downloaded = sorted(r.path for r in again if r.status == 200)
    # The one changed page in full; robots.txt, and the slow page that never finished, are asked each run.
    assert downloaded == ["/content/moved-post-new", "/content/slow-post", "/files/report-file.pdf", "/robots.txt"]
    unchanged = [r for r in again if r.status == 304]
    assert len(unchanged) == 7 and all(r.if_none_match and r.if_modified_since for r in unchanged)
    assert by_title(searchsvc)["Synthetic post that moved"]["body"].startswith("This is a synthetic test post "
                                                                               "written for searchsvc's tests, now")
    # A rebuild from a run of 304s keeps every post as the index holds it.
    before = searchsvc.export()
    result = searchsvc("follow", "--rebuild", *WEB, site.base + "/")
    assert "0 new, 0 updated, 9 unchanged, 0 removed" in result.stdout
    assert searchsvc.export() == before


def test_a_post_deleted_from_the_index_is_fetched_again_not_taken_as_unchanged(searchsvc, site):
    searchsvc("follow", *WEB, site.base + "/rss.xml")
    [gone] = [p for p in searchsvc.export() if p["title"] == site.real[3].title]
    assert searchsvc("delete", gone["id"]).exit_code == 0
    result = searchsvc("follow", *WEB, site.base + "/rss.xml")
    assert result.exit_code == 0, result.output
    # The feed gave the deleted post, so it is fetched in full again: its two summaries are teasers
    # kept aside for their pages (one 304, one fetched again for the deleted post).
    assert "1 new, 0 updated, 2 unchanged, 2 teasers kept aside" in result.stdout
    assert gone in searchsvc.export()


def test_follow_a_feed_fetches_pages_only_for_entries_without_their_full_text(searchsvc, site):
    result = searchsvc("follow", *WEB, site.base + "/rss.xml")
    assert result.exit_code == 0, result.output
    assert result.stdout == ("Fetched 3 URLs (0 not modified, 0 failed): 4 new, 0 updated, 0 unchanged, "
                             "2 teasers kept aside, 0 invalid, 0 skipped files\n")
    assert [r.path for r in site.requests()] == ["/robots.txt", "/rss.xml", site.real[2].path, site.real[3].path]
    posts = by_title(searchsvc)
    assert {t: p["body"] for t, p in posts.items()} == {p.title: shown(p.body) for p in site.real}
    # Dates in UTC, from the feed (GMT) and from the pages' meta tags (+00:00) alike.
    assert [posts[p.title]["date"] for p in site.real] == [p.iso + "Z" for p in site.real]


def test_ingest_a_feed_url_reads_the_feed_alone(searchsvc, site):
    result = searchsvc("ingest", *WEB, site.base + "/atom.xml")
    assert result.exit_code == 0, result.output
    assert result.stdout == ("Fetched 1 URL (0 not modified, 0 failed): 4 new, 0 updated, 0 unchanged, 0 invalid, "
                             "0 skipped files\n")
    assert [r.path for r in site.requests()] == ["/robots.txt", "/atom.xml"]
    assert {t: p["body"] for t, p in by_title(searchsvc).items()} == {p.title: shown(p.body) for p in site.real}


def test_follow_a_sitemap(searchsvc, site):
    result = searchsvc("follow", *WEB, site.base + "/sitemap.xml")
    assert result.exit_code == 1
    assert result.stderr == (f"{site.base}/private/private-draft: not fetched: robots.txt disallows it\n"
                             f"{site.base}/content/broken-server: HTTP 500\n")
    assert {t: p["body"] for t, p in by_title(searchsvc).items()} == {p.title: shown(p.body) for p in site.real}
    # `ingest` of a sitemap says what to do instead.
    result = searchsvc("ingest", *WEB, site.base + "/sitemap.xml")
    assert result.stderr == (f"{site.base}/sitemap.xml: a sitemap lists pages but holds no posts: `searchsvc follow` "
                             "reads the pages it lists\n")


def test_an_unreadable_robots_txt_allows_nothing(searchsvc, site):
    site.pages["/robots.txt"] = Page(b"down", status=503)
    result = searchsvc("follow", *WEB, site.base + "/")
    assert result.exit_code == 1
    assert result.stderr == (f"{site.base}/: not fetched: robots.txt answered HTTP 503, so nothing is fetched from "
                             f"{site.base}\n")
    assert [r.path for r in site.requests()] == ["/robots.txt"]
    assert searchsvc.export() == []


def test_robots_txt_disallowing_us_by_name_and_a_crawl_delay(searchsvc, site):
    site.pages["/robots.txt"] = Page(b"User-agent: searchsvc\nDisallow: /content/open*\nCrawl-delay: 0.3\n",
                                     content_type="text/plain")
    result = searchsvc("follow", "--delay", "0", "--timeout", str(TIMEOUT), site.base + "/rss.xml")
    assert result.stderr == f"{site.base}{site.real[3].path}: not fetched: robots.txt disallows it\n"
    log = site.requests()
    assert min(b.at - a.at for a, b in zip(log, log[1:], strict=False)) >= 0.27


def test_the_crawl_stays_on_the_site_and_within_max_pages(searchsvc, site):
    site.pages["/elsewhere"] = Page(listing_page(site.real[:2], {site.real[0].slug: "http://192.0.2.1/x"}, 0, 1))
    result = searchsvc("follow", *WEB, site.base + "/elsewhere")
    assert result.exit_code == 0, result.output
    assert "note: 1 links to other sites were not followed" in result.stderr
    assert [r.path for r in site.requests()] == ["/robots.txt", "/elsewhere", site.real[1].path]
    result = searchsvc("follow", *WEB, "--max-pages", "2", site.base + "/")
    assert f"{site.base}/: note: the crawl stopped at --max-pages 2: 4 more addresses were not fetched" in result.stderr
    assert "Fetched 2 URLs" in result.stdout


def test_redirects_to_other_schemes_and_oversized_answers_are_refused(searchsvc, site):
    site.pages["/to-file"] = Page(b"", status=302, location="file:///etc/passwd")
    site.pages["/loop"] = Page(b"", status=302, location="/loop")
    result = searchsvc("ingest", *WEB, site.base + "/to-file", site.base + "/loop", site.base + "/nothing")
    assert result.exit_code == 1
    assert result.stderr == (f"{site.base}/to-file: redirects to 'file:///etc/passwd', which is not an http(s) "
                             "address\n"
                             f"{site.base}/loop: more than 5 redirects\n"
                             f"{site.base}/nothing: HTTP 404\n")


def test_a_dripping_answer_and_a_compression_bomb_are_cut_off(searchsvc, site):
    """A server sending a byte every 0.05 s never trips a read timeout; the whole answer's does.
    A gzip body inflating past the bound is stopped."""
    site.pages["/drip"] = Page(post_page(site.real[0]), drip=0.05)
    site.pages["/bomb"] = Page(gzip.compress(b"<p>" + b" " * (40 * 1024 * 1024)), encoding="gzip")
    started = time.monotonic()
    result = searchsvc("ingest", *WEB, site.base + "/drip", site.base + "/bomb")
    assert time.monotonic() - started < 5
    assert result.stderr == (f"{site.base}/drip: timed out after {TIMEOUT:g} s\n"
                             f"{site.base}/bomb: too large: more than 16 MB\n")
    assert searchsvc.export() == []


def test_a_damaged_fetch_state_is_ignored_with_a_warning(searchsvc, site, index_dir):
    searchsvc("ingest", *WEB, site.base + "/atom.xml")
    (index_dir / STATE_FILE).write_text("{not json", encoding="utf-8")
    result = searchsvc("ingest", *WEB, site.base + "/atom.xml")
    assert result.exit_code == 0
    assert result.stderr.startswith(f"{index_dir / STATE_FILE}: warning: not read (")
    assert result.stderr.endswith("); every page is fetched in full\n")
    assert "0 new, 0 updated, 4 unchanged" in result.stdout
    assert json.loads((index_dir / STATE_FILE).read_text())["version"] == 2  # written afresh


def test_cli_refuses_a_follow_of_something_not_a_url(searchsvc):
    result = searchsvc("follow", "sample_posts/")
    assert result.exit_code == 2
    assert "'sample_posts/' is not an http(s) URL" in result.stderr


# -- feeds and pages as files -------------------------------------------------------------------

def test_saved_feeds_and_pages_are_read_as_files(searchsvc, write):
    site = Site()
    site.build("https://blog.example.org")
    rss = write("statements.rss", rss_feed(site.real, site.base, full={site.real[0].slug}))
    page = write("post.html", post_page(site.real[1], site.base))
    result = searchsvc("ingest", rss, page)
    assert result.exit_code == 0, result.output
    assert result.stdout == "Read 2 files: 4 new, 0 updated, 0 unchanged, 0 invalid, 0 skipped files\n"
    posts = by_title(searchsvc)
    # The feed's post 0 is full; post 1 comes whole from its saved page (its canonical address is the
    # feed's link); posts 2 and 3 are known by the feed's summaries only.
    assert [posts[p.title]["body"] for p in site.real] == [shown(site.real[0].body), shown(site.real[1].body),
                                                           site.real[2].teaser, site.real[3].teaser]
    assert posts[site.real[1].title]["url"] == site.base + site.real[1].path
    atom = write("statements.atom", atom_feed(site.real, site.base))
    result = searchsvc("ingest", atom)
    assert result.stdout == "Read 1 file: 0 new, 3 updated, 1 unchanged, 0 invalid, 0 skipped files\n"
    assert {t: p["body"] for t, p in by_title(searchsvc).items()} == {p.title: shown(p.body) for p in site.real}


def test_a_feed_entry_without_a_title_is_reported_at_its_line(searchsvc, write):
    feed = (b'<?xml version="1.0"?>\n<rss version="2.0"><channel><title>Fictional feed</title>\n'
            b"<item><title>One</title><description>A synthetic body.</description></item>\n"
            b"<item>\n<description>No title here.</description></item>\n"
            b"<item><title>Three</title><description>Another synthetic body.</description></item>\n"
            b"</channel></rss>\n")
    path = write("feed.xml", feed)
    result = searchsvc("ingest", path)
    assert result.exit_code == 1
    assert result.stderr == f"{path}:4: missing required field 'title'\n"
    assert sorted(by_title(searchsvc)) == ["One", "Three"]


def test_things_that_are_not_feeds_or_pages(searchsvc, write):
    notfeed = write("notes.xml", b"<notes><n>a synthetic note</n></notes>")
    empty = write("empty.html", b"")
    sitemap = write("sitemap.xml", b'<?xml version="1.0"?><urlset><url><loc>https://x.example/a</loc></url></urlset>')
    result = searchsvc("ingest", notfeed, empty, sitemap)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"{notfeed}: not an RSS or Atom feed")
    assert lines[1].startswith(f"{empty}: not an HTML page")
    assert lines[2] == (f"{sitemap}: a sitemap lists pages but holds no posts: `searchsvc follow URL` reads the "
                        "pages of a sitemap on the web")


def test_a_listing_file_then_the_post_page_replaces_the_teaser(searchsvc, write):
    site = Site()
    site.build("https://blog.example.org")
    post = site.synthetic[1]
    links = {post.slug: site.base + post.path}
    result = searchsvc("ingest", write("listing.html", listing_page([post], links, 0, 1)))
    assert result.exit_code == 0, result.output
    assert by_title(searchsvc)[post.title]["body"] == post.teaser
    result = searchsvc("ingest", write("post.html", post_page(post, site.base)))
    assert "0 new, 1 updated" in result.stdout
    assert by_title(searchsvc)[post.title]["body"] == post.body
    # The listing read again keeps the longer body.
    result = searchsvc("ingest", write("listing2.html", listing_page([post], links, 0, 1)))
    assert "1 teaser kept aside" in result.stdout
    assert by_title(searchsvc)[post.title]["body"] == post.body


def test_html_in_feeds_and_pages_is_text_never_markup(searchsvc, write, client_for, index_dir):
    hostile = ('<p>A synthetic paragraph.</p><script>alert("x")</script><img src=x onerror="alert(1)">'
               '<p>Second <b>bold</b> paragraph.</p>')
    feed = ('<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
            '<title>Hostile &lt;script&gt;alert(2)&lt;/script&gt; title</title>'
            f"<link>https://blog.example.org/h</link><description><![CDATA[{hostile}]]></description>"
            "</item></channel></rss>")
    searchsvc("ingest", write("h.rss", feed))
    [post] = searchsvc.export()
    assert post["body"] == "A synthetic paragraph.\n\nSecond bold paragraph."
    client = client_for(index_dir)
    page = client.get(f"/posts/{post['id']}").get_data(as_text=True)
    assert "<script>alert" not in page and "onerror" not in page


@pytest.mark.parametrize("name", ["listing.html", "post.html"])
def test_pages_saved_in_another_encoding(searchsvc, write, name):
    site = Site()
    site.build("https://blog.example.org")
    post = site.synthetic[0]
    post.title = "Sentetik yazı: Çarşamba günü ığdır"
    page = (listing_page([post, site.synthetic[1]], {}, 0, 1) if name == "listing.html" else post_page(post))
    page = page.decode("utf-8").replace('charset="utf-8"', 'charset="windows-1254"').encode("windows-1254")
    result = searchsvc("ingest", write(name, page))
    assert result.exit_code == 0, result.output
    assert post.title in by_title(searchsvc)


def test_state_file_is_in_the_index_folder_and_never_holds_bodies(searchsvc, site, index_dir):
    searchsvc("follow", *WEB, site.base + "/rss.xml")
    state = json.loads(Path(index_dir / STATE_FILE).read_text())
    assert set(state["urls"]) == {site.base + p for p in ("/rss.xml", site.real[2].path, site.real[3].path)}
    assert all(set(entry) == {"etag", "last_modified", "kind", "links", "more", "posts", "post_url"}
               for entry in state["urls"].values())


def test_robots_txt_behind_a_redirect_is_obeyed(searchsvc, site):
    site.pages["/robots.txt"] = Page(b"", status=301, location="/robots-moved.txt")
    site.pages["/robots-moved.txt"] = Page(b"User-agent: *\nDisallow: /content/\n", content_type="text/plain")
    result = searchsvc("follow", *WEB, site.base + "/rss.xml")
    assert result.stderr == "".join(f"{site.base}{p.path}: not fetched: robots.txt disallows it\n"
                                    for p in site.real[2:])
    assert not any(r.path.startswith("/content/") for r in site.requests())


def test_a_start_url_that_redirects_to_another_host_is_followed_there(searchsvc, site):
    """http -> https, example.org -> www.example.org: the site is where the start URL leads."""
    port = site.base.rsplit(":", 1)[1]
    site.pages["/start"] = Page(b"", status=301, location=f"{site.base}/rss.xml")
    result = searchsvc("follow", *WEB, f"http://localhost:{port}/start")
    assert result.exit_code == 0, result.output
    assert "4 new" in result.stdout
    assert {site.real[2].path, site.real[3].path} <= {r.path for r in site.requests()}


def test_a_gzip_sitemap(searchsvc, site):
    site.pages["/sitemap.xml.gz"] = Page(gzip.compress(site.pages["/sitemap.xml"].body),
                                         content_type="application/x-gzip")
    result = searchsvc("follow", *WEB, site.base + "/sitemap.xml.gz")
    assert {t: p["body"] for t, p in by_title(searchsvc).items()} == {p.title: shown(p.body) for p in site.real}
    assert result.stderr.count("\n") == 2  # the private page and the broken one, as from the plain sitemap


def test_related_posts_beside_a_post_do_not_make_it_a_listing(searchsvc, write):
    site = Site()
    site.build("https://blog.example.org")
    post = site.real[0]
    related = "".join(f'<article class="node-teaser"><h3><a href="{p.path}">{p.title}</a></h3><p>{p.teaser}</p>'
                      "</article>" for p in site.real[1:])
    page = post_page(post, site.base).replace(b"</main>", f'<div class="related-posts">{related}</div></main>'.encode())
    result = searchsvc("ingest", write("post.html", page))
    assert result.exit_code == 0, result.output
    [stored] = searchsvc.export()
    assert stored["title"] == post.title and stored["body"] == shown(post.body)


def test_markdown_from_a_feed_is_rendered_and_searched_as_text(searchsvc, write, client_for, index_dir):
    feed = b'''<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>x</id>
<entry><title>A synthetic Markdown entry</title><id>https://blog.example.org/md</id>
<link href="https://blog.example.org/md"/><updated>2021-01-01T00:00:00Z</updated>
<content type="text/markdown">## A heading

Some *emphasis* and a [linked word](https://blog.example.org/zanzibar).</content></entry></feed>'''
    result = searchsvc("ingest", write("md.atom", feed))
    assert result.exit_code == 0, result.output
    [post] = searchsvc.export()
    assert post["body_format"] == "markdown" and post["body"].startswith("## A heading")
    client = client_for(index_dir)
    page = client.get(f"/posts/{post['id']}").get_data(as_text=True)
    assert "<em>emphasis</em>" in page and "*emphasis*" not in page
    assert client.get("/api/search?q=linked").get_json()["total"] == 1
    assert client.get("/api/search?q=zanzibar").get_json()["total"] == 0  # only in the link's address


def test_a_page_or_feed_in_turkish_gets_turkish_stems(searchsvc, write, client_for, index_dir):
    """The language a page (`<html lang>`) or feed (`<language>`) declares is the post's `lang`."""
    page = ('<!DOCTYPE html><html lang="tr"><head><meta charset="utf-8"><title>Sentetik yazı</title></head><body>'
            '<article><h1>Sentetik bir deneme yazısı</h1><p>Bu yazı searchsvc testleri için uydurulmuştur ve '
            "kimsenin açıklaması değildir. Borsada işlemler bugün sakin geçti; yatırımcılar bekledi.</p>"
            "<p>İkinci paragraf da uydurmadır.</p></article></body></html>")
    feed = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
            "<language>tr</language><item><title>Sentetik haber</title><link>https://blog.example.org/tr</link>"
            "<description>Uydurma bir metin: borsanın kapanışı bekleniyor.</description></item></channel></rss>")
    result = searchsvc("ingest", write("tr.html", page), write("tr.rss", feed))
    assert result.exit_code == 0, result.output
    assert {p["title"]: p.get("lang") for p in searchsvc.export()} == {"Sentetik bir deneme yazısı": "tr",
                                                                        "Sentetik haber": "tr"}
    client = client_for(index_dir)
    found = client.get("/api/search?q=borsa").get_json()
    assert found["total"] == 2


def test_a_canonical_link_to_another_site_is_not_taken(searchsvc, site):
    """Ids derive from the url: a page naming another site's post as its canonical address would
    replace that post."""
    post = site.synthetic[0]
    site.pages["/impostor"] = Page(post_page(post).replace(
        b"</head>", b'<link rel="canonical" href="https://victim.example.org/their-post"></head>'))
    site.pages["/honest"] = Page(post_page(post).replace(
        b"</head>", f'<link rel="canonical" href="{site.base}/content/honest-post"></head>'.encode()))
    searchsvc("ingest", *WEB, site.base + "/impostor", site.base + "/honest")
    assert sorted(p["url"] for p in searchsvc.export()) == [f"{site.base}/content/honest-post",
                                                           f"{site.base}/impostor"]


def test_addresses_that_are_not_http_are_each_a_problem(searchsvc, write):
    good = write("a.jsonl", '{"title": "A synthetic post", "body": "A synthetic body."}\n')
    result = searchsvc("ingest", "ftp://files.example.org/a.rss", "http://exa mple.org/", good)
    assert result.exit_code == 1
    assert result.stderr == ("ftp://files.example.org/a.rss: not an http(s) address: only http:// and https:// "
                             "addresses are fetched\n"
                             "http://exa mple.org/: not an http(s) address: only http:// and https:// addresses are "
                             "fetched\n")
    assert result.stdout == ("Read 1 file and fetched 2 URLs (0 not modified, 2 failed): 1 new, 0 updated, "
                             "0 unchanged, 0 invalid, 0 skipped files\n")


def test_a_date_found_only_in_the_address_keeps_no_invented_time(searchsvc, site):
    """htmldate finds /2018/03/04/ in an address: the day is the page's, a time would be ours."""
    post = site.synthetic[0]
    page = post_page(post).replace(b'<meta property="article:published_time"', b'<meta property="x"').replace(
        post.date.encode(), b"")
    site.pages["/2018/03/04/synthetic-post"] = Page(page.replace(b"dc:date dc:created", b"x"))
    searchsvc("ingest", *WEB, site.base + "/2018/03/04/synthetic-post")
    assert [p["date"] for p in searchsvc.export()] == ["2018-03-04"]


def test_a_fetch_state_nested_too_deeply_is_ignored_with_a_warning(searchsvc, site, index_dir):
    """The second review round: 400 KB of brackets made every later crawl fail with an unexpected
    RecursionError (a bug report) until someone deleted the file."""
    searchsvc("ingest", *WEB, site.base + "/atom.xml")
    (index_dir / STATE_FILE).write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    result = searchsvc("ingest", *WEB, site.base + "/atom.xml")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == (f"{index_dir / STATE_FILE}: warning: not read (nested too deeply); every page is "
                             "fetched in full\n")
    assert "0 new, 0 updated, 4 unchanged" in result.stdout
    assert json.loads((index_dir / STATE_FILE).read_text())["version"] == 2


def test_a_fetch_state_too_large_for_the_next_run_is_not_written(searchsvc, site, index_dir, monkeypatch):
    """The second review round: the state was written whatever its size, then passed over by the
    next run (over its bound), which saved only its own answers: every other site's lost."""
    from searchsvc.ingest import follow

    assert searchsvc("ingest", *WEB, site.base + "/atom.xml").exit_code == 0
    before = (index_dir / STATE_FILE).read_bytes()
    monkeypatch.setattr(follow, "MAX_STATE_BYTES", len(before) + 10)
    result = searchsvc("ingest", *WEB, site.base + "/rss.xml")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.endswith(f"{index_dir / STATE_FILE}: warning: not saved: it would be larger than "
                                  f"{len(before) + 10:,} bytes, more than the next run reads; the state before "
                                  "this run is kept\n")
    assert (index_dir / STATE_FILE).read_bytes() == before
