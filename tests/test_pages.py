"""The HTML pages through Flask's test client: each page, filter, permalink, the feed, errors,
escaping of hostile posts, and the security headers."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit

import feedparser
import pytest


class Page(HTMLParser):
    """Just enough of a DOM: links, elements by id, text of elements by tag and class."""

    def __init__(self, html: str):
        super().__init__()
        self.html = html
        self.links: list[tuple[str, dict[str, str]]] = []
        self.ids: dict[str, dict[str, str]] = {}
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = {k: v or "" for k, v in attrs}
        if tag == "a" and "href" in attributes:
            self.links.append((attributes["href"], attributes))
        if "id" in attributes:
            self.ids[attributes["id"]] = {"tag": tag, **attributes}

    def hrefs(self, pattern: str) -> list[str]:
        return [href for href, _ in self.links if re.search(pattern, href)]


def get(client, path: str, status: int = 200):
    response = client.get(path)
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return response, Page(response.get_data(as_text=True))


def text(response) -> str:
    """The page's HTML with runs of white space as one space (templates wrap lines)."""
    return " ".join(response.get_data(as_text=True).split())


def hit_ids(page: Page) -> list[str]:
    return [urlsplit(h).path.rsplit("/", 1)[1] for h in page.hrefs(r"^/posts/")
            if not re.search(r"/similar", h)]


def test_empty_search_shows_newest_posts_and_the_archive(client):
    response, page = get(client, "/")
    html = text(response)
    assert '<html lang="en">' in html
    assert "13 posts in the archive" in html
    assert "The archive holds 13 posts, from 2019-05-01 to 2021-01-01. Newest first:" in html
    assert hit_ids(page)[:2] == ["syn-start-2021", "syn-end-2020"]
    assert page.ids["q"]["tag"] == "input" and page.ids["from"]["tag"] == "input"
    for field in ("q", "from", "to", "author", "sort"):
        assert f'<label for="{field}">' in html


def test_query_results_with_highlights_understood_query_and_links(client):
    response, page = get(client, "/?q=running+river")
    html = text(response)
    assert "1 post match <q>running river</q>" in html
    assert "<code>run AND river</code>" in html
    assert '<p class="snippet" dir="auto">We <mark>run</mark> every morning along the <mark>river</mark>.</p>' in html
    assert page.hrefs(r"^/posts/syn-run\?q=running\+river$")
    assert page.hrefs(r"^/api/export\?q=running\+river&format=csv$")
    assert page.hrefs(r"^/api/export\?q=running\+river&format=jsonl$")
    assert page.hrefs(r"^/feed\.atom\?q=running\+river$")
    assert '<link rel="alternate" type="application/atom+xml"' in html


def test_dates_typed_as_people_write_them_stay_in_the_form(client):
    response, page = get(client, "/?" + urlencode({"from": "Dec 2020", "to": "29 December 2020"}))
    assert page.ids["from"]["value"] == "Dec 2020"
    assert page.ids["to"]["value"] == "29 December 2020"
    assert "2 posts match the filters" in text(response)


@pytest.mark.parametrize("query, field, message", [
    ("from=2021-13-45", "from", "&#39;from&#39;: invalid date &#39;2021-13-45&#39;: month must be in 1..12"),
    ("to=someday", "to", "&#39;to&#39;: invalid date &#39;someday&#39;: not a date dateutil understands"),
    ("from=2021&to=2020", "from", "&#39;from&#39; (2021) is after &#39;to&#39; (2020)"),
    ("q=%22open", "q", "the query has an opening &#34; without a closing one"),
])
def test_errors_rerender_the_form_with_the_message_next_to_the_field(client, query, field, message):
    response, page = get(client, "/?" + query, status=400)
    html = response.get_data(as_text=True)
    assert page.ids[field]["aria-invalid"] == "true"
    assert page.ids[field]["aria-describedby"] == f"{field}-error"
    assert f'<p class="error" id="{field}-error" role="alert">{message}</p>' in html
    assert "posts match" not in html


def test_facets_are_links_that_filter(client):
    _, page = get(client, "/?q=pamphlet+OR+marathon+OR+diary")
    [author_link] = page.hrefs(r"author=Ada\+Fictional")
    _, narrowed = get(client, author_link)
    assert sorted(hit_ids(narrowed)) == ["syn-run", "syn-urumqi"]
    [year_link] = page.hrefs(r"from=2019&to=2019")
    assert parse_qs(urlsplit(year_link).query) == {"q": ["pamphlet OR marathon OR diary"], "from": ["2019"],
                                                   "to": ["2019"]}


def test_timeline_bars_per_year_with_empty_years_and_links(client):
    _, page = get(client, "/?q=synthetic+OR+pamphlet&from=2017&to=2021")
    bars = [(a["data-period"], int(a["data-count"]), href) for href, a in page.links if "data-period" in a]
    assert [(p, n) for p, n, _ in bars] == [("2017", 0), ("2018", 0), ("2019", 1), ("2020", 1), ("2021", 1)]
    assert bars[2][2] == "/?q=synthetic+OR+pamphlet&from=2019&to=2019"


def test_timeline_spans_the_matches_when_no_dates_are_given(client):
    _, page = get(client, "/")
    bars = [(a["data-period"], int(a["data-count"])) for _, a in page.links if "data-period" in a]
    assert (bars[0], bars[-1], len(bars)) == (("2019-05", 1), ("2021-01", 1), 21)  # 21 months: monthly
    assert sum(n for _, n in bars) == 11  # every dated post, once


def test_timeline_is_monthly_within_two_years_and_shows_empty_months(client):
    _, page = get(client, "/?from=2020-09&to=2021-01")
    bars = [(a["data-period"], int(a["data-count"])) for _, a in page.links if "data-period" in a]
    assert bars == [("2020-09", 1), ("2020-10", 1), ("2020-11", 0), ("2020-12", 3), ("2021-01", 1)]
    assert sum(n for _, n in bars) == 6


def test_timeline_of_a_long_range_is_per_decade(client):
    _, page = get(client, "/?from=1900&to=2021")  # 122 years: more than 120 year bars
    bars = [(a["data-period"], int(a["data-count"]), href) for href, a in page.links if "data-period" in a]
    assert [p for p, _, _ in bars] == [f"{d}–{d + 9}" for d in range(1900, 2030, 10)]
    assert bars[9] == ("1990–1999", 0, "/?from=1990&to=1999")
    assert bars[11:] == [("2010–2019", 5, "/?from=2010&to=2019"), ("2020–2029", 6, "/?from=2020&to=2029")]
    assert "Matches per decade, 1900–1909 to 2020–2029." in text(get(client, "/?from=1900&to=2021")[0])


def test_timeline_of_the_longest_range_is_per_century_and_small(client):
    """from=0001&to=9998 with no matches drew 9,998 year bars: 3.7 MB."""
    response, page = get(client, "/?q=nomatchword&from=0001&to=9998")
    bars = [(a["data-period"], href) for href, a in page.links if "data-period" in a]
    assert len(bars) == 100
    # Year 0 and 9999 are not dates a filter takes: the first and last bars stop short.
    assert bars[0] == ("0001–0099", "/?q=nomatchword&from=0001&to=0099")
    assert bars[19] == ("1900–1999", "/?q=nomatchword&from=1900&to=1999")
    assert bars[-1] == ("9900–9998", "/?q=nomatchword&from=9900&to=9998")
    assert len(response.get_data()) < 60_000
    for _, href in bars[::33]:  # every bar is a valid search
        get(client, href)


def test_pagination_links_and_permalinks_reproduce_the_page(client):
    first, page = get(client, "/?per_page=5")
    [next_link] = [h for h, a in page.links if a.get("rel") == "next"]
    assert next_link == "/?page=2&per_page=5"
    second, second_page = get(client, next_link)
    assert set(hit_ids(page)).isdisjoint(hit_ids(second_page))
    again, _ = get(client, next_link)
    assert again.get_data() == second.get_data()  # the URL is the whole state


def test_post_page_highlight_citation_similar(client):
    response, page = get(client, "/posts/syn-run?q=running")
    html = response.get_data(as_text=True)
    assert '<div class="body" dir="auto">We <mark>run</mark> every morning along the river.</div>' in html
    assert "<h1 dir=\"auto\">Marathon notes</h1>" in html
    assert '<time datetime="2019-05-01">2019-05-01</time>' in html
    citation = re.search(r'<textarea id="citation" readonly rows="3">(.*?)</textarea>', html, re.S).group(1)
    assert re.fullmatch(r"Ada Fictional\. “Marathon notes\.” 1 May 2019\. http://localhost/posts/syn-run\. "
                        r"Accessed \d{1,2} \w+ \d{4}\.", citation)
    _, pamphlet = get(client, "/posts/syn-undated-1")
    assert pamphlet.hrefs(r"^/posts/syn-undated-2$")  # similar posts


def test_post_with_source_url_links_and_cites_it(tmp_path, client_for):
    from conftest import Searchsvc

    posts = tmp_path / "p.jsonl"
    posts.write_text(json.dumps({"id": "with-url", "title": "Synthetic sourced post", "body": "Text.",
                                 "url": "https://example.org/fictional/1"}) + "\n", encoding="utf-8")
    Searchsvc(tmp_path / "index")("ingest", posts)
    response, page = get(client_for(tmp_path / "index"), "/posts/with-url")
    assert page.hrefs(r"^https://example\.org/fictional/1$")
    assert re.search(r"“Synthetic sourced post\.” https://example\.org/fictional/1\. Accessed ",
                     response.get_data(as_text=True))


def test_unknown_post_and_page_are_404_pages(client):
    response, _ = get(client, "/posts/nope", status=404)
    html = response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<h1>Not found</h1>" in html and "no post with id &#39;nope&#39;" in html
    response, _ = get(client, "/no/such/page", status=404)
    assert "<h1>Not found</h1>" in response.get_data(as_text=True)


def test_hostile_post_is_escaped_on_every_page(client):
    html = client.get("/?q=ink").get_data(as_text=True)
    assert "<script>alert" not in html and "<img src=x" not in html and "<b>Eve</b>" not in html
    assert "&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt; &amp; friends" in html
    assert "&lt;b&gt;Eve&lt;/b&gt; Hostile" in html
    post = client.get("/posts/syn-hostile").get_data(as_text=True)
    assert "<script>alert" not in post and "<img src=x" not in post
    assert "&lt;img src=x onerror=alert(1)&gt;" in post
    select = client.get("/").get_data(as_text=True)
    assert '<option value="&lt;b&gt;Eve&lt;/b&gt; Hostile" >&lt;b&gt;Eve&lt;/b&gt; Hostile</option>' in select


def test_only_our_scripts_and_styles(client):
    response = client.get("/?q=run")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"
    html = response.get_data(as_text=True)
    assert re.findall(r"<script\b[^>]*>", html) == ['<script src="/static/app.js" defer>']
    assert " style=" not in html and "<style" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing from another host
    for asset in ("/static/style.css", "/static/app.js"):
        with client.get(asset) as static:
            assert static.status_code == 200


def test_atom_feed_parses_back(client):
    response = client.get("/feed.atom?q=pamphlet")
    assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    feed = feedparser.parse(response.get_data())
    assert not feed.bozo, feed.bozo_exception
    assert feed.feed.title == "searchsvc: “pamphlet”"
    assert [e.link for e in feed.entries] == ["http://localhost/posts/syn-hostile",
                                              "http://localhost/posts/syn-undated-1",
                                              "http://localhost/posts/syn-undated-2"]
    assert feed.entries[0].title == "<script>alert('title')</script> & friends"
    assert feed.entries[0].author == "<b>Eve</b> Hostile"
    assert feed.entries[0].updated == "2019-09-01T00:00:00Z"
    # type="html": our escaped snippet, escaped once more as XML text.
    assert "about &lt;mark&gt;pamphlet&lt;/mark&gt; ink" in response.get_data(as_text=True)
    assert "&amp;lt;img src=x" in response.get_data(as_text=True)
    assert "pamphlet ink" in feed.entries[0].summary


def test_feed_drops_characters_xml_does_not_allow(tmp_path, client_for):
    from xml.etree import ElementTree

    from conftest import Searchsvc

    posts = tmp_path / "p.jsonl"
    posts.write_text(json.dumps({"id": "syn-xml", "title": "Odd\ufffe title here", "date": "2019-05-01",
                                 "author": "Ada\ufffe Fictional", "body": "Odd \ufffebody\x01 and\uffff ink."}) + "\n",
                     encoding="utf-8")
    assert Searchsvc(tmp_path / "index")("ingest", posts).exit_code == 0
    client = client_for(tmp_path / "index")
    for query in ("", "?q=ink", "?q=ink%01%EF%BF%BE"):  # the query is in the feed's title
        response = client.get("/feed.atom" + query)
        assert response.status_code == 200
        ElementTree.fromstring(response.get_data())  # well-formed
        feed = feedparser.parse(response.get_data())
        assert not feed.bozo, feed.bozo_exception
        [entry] = feed.entries
        assert (entry.title, entry.author, entry.link, entry.summary) == (
            "Odd title here", "Ada Fictional", "http://localhost/posts/syn-xml", "Odd body and ink.")
    assert feed.feed.title == "searchsvc: “ink”"


@pytest.mark.parametrize("base_url, root", [("https://search.example.org/", "https://search.example.org"),
                                             ("https://example.org/archive", "https://example.org/archive")])
def test_base_url_setting_makes_feed_and_citation_links_whatever_the_host_header(
        search_index, client_for, base_url, root):
    client = client_for(search_index, BASE_URL=base_url)
    evil = {"Host": "evil.example"}
    response = client.get("/feed.atom?q=running", headers=evil)
    xml = response.get_data(as_text=True)
    assert "evil.example" not in xml
    assert re.findall(r'(?:href="|<id>)([^"<]*)', xml) == [
        f"{root}/feed.atom?q=running", f"{root}/feed.atom?q=running", f"{root}/?q=running",
        f"{root}/posts/syn-run", f"{root}/posts/syn-run"]
    assert [e.link for e in feedparser.parse(response.get_data()).entries] == [f"{root}/posts/syn-run"]
    html = client.get("/posts/syn-run", headers=evil).get_data(as_text=True)
    assert "evil.example" not in html
    citation = re.search(r'<textarea id="citation" readonly rows="3">(.*?)</textarea>', html, re.S).group(1)
    assert citation.startswith(f"Ada Fictional. “Marathon notes.” 1 May 2019. {root}/posts/syn-run. Accessed ")


@pytest.mark.parametrize("value", ["search.example.org", "/archive", "ftp://search.example.org/", "https://",
                                   "https://search.example.org/?a=1"])
def test_a_bad_base_url_is_refused_at_startup(search_index, value):
    from searchsvc.errors import BadSetting
    from searchsvc.web import create_app

    with pytest.raises(BadSetting) as error:
        create_app({"INDEX": str(search_index), "BASE_URL": value})
    assert str(error.value) == ("SEARCHSVC_BASE_URL must be an absolute http(s) URL such as "
                                f"'https://search.example.org/', got {value!r}")


def test_feed_of_bad_date_is_a_400_page(client):
    response = client.get("/feed.atom?from=nonsense")
    assert response.status_code == 400


@pytest.mark.parametrize("query", ["to=9999", "to=9999-12", "to=9999-12-31", "from=9999"])
def test_years_past_9998_are_400_on_the_page_and_the_feed(client, query):
    field = query.split("=")[0]
    message = f"&#39;{field}&#39;: invalid date &#39;{query.split('=')[1]}&#39;: the latest year allowed is 9998"
    response, page = get(client, "/?" + query, status=400)
    assert page.ids[field]["aria-invalid"] == "true"
    assert f'<p class="error" id="{field}-error" role="alert">{message}</p>' in response.get_data(as_text=True)
    feed = client.get("/feed.atom?" + query)
    assert feed.status_code == 400
    assert "<h1>Bad request</h1>" in feed.get_data(as_text=True)
    assert message in feed.get_data(as_text=True)


def test_sort_and_author_filters_on_the_page(client):
    _, page = get(client, "/?q=pamphlet+OR+marathon+OR+diary&sort=oldest")
    assert hit_ids(page) == ["syn-run", "syn-urumqi", "syn-hostile", "syn-undated-1", "syn-undated-2"]
    assert page.ids["sort"]["tag"] == "select"
    response, page = get(client, "/?author=Bora+Kurgusal&sort=newest")
    assert hit_ids(page) == ["syn-uigur", "syn-turkish"]
    assert '<option value="Bora Kurgusal" selected>' in text(response)


def test_an_unexpected_error_is_a_plain_500_page_without_a_traceback(search_index, client_for, monkeypatch):
    from searchsvc.web import pages

    def broken(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(pages, "search", broken)
    client = client_for(search_index)
    client.application.logger.disabled = True
    response = client.get("/?q=run")
    html = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "<h1>Something went wrong</h1>" in html
    assert "secret internal detail" not in html and "Traceback" not in html
    api = client.get("/api/search?q=run")
    assert api.status_code == 200  # the API's own search was not patched
