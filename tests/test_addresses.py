"""Issue 22: the crawler cannot be steered to another host or port.

Two loopback servers: A (`site`, the crawled site) and B (`other`, another server on the same
address, another port, standing for an intranet host or 169.254.169.254). Every test hands A
addresses that lead to B in a shape two URL parsers read differently (`\\@`, user info, an IPv4
written as one number), or plainly (a redirect of the start URL, of robots.txt), and asserts that
B's request log stays empty and that the output says what was refused. Posts are the seed's real
ones or synthetic ones by a fictional author (tests/fixture_site.py).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from fixture_site import Page, Site, by_title, listing_page, serving

DELAY = 0.0
TIMEOUT = 2.0
WEB = ("--delay", str(DELAY), "--timeout", str(TIMEOUT), "--quiet")


@pytest.fixture
def other() -> Iterator[Site]:
    """Server B: another fixture blog on 127.0.0.1, another port."""
    with serving() as served:
        yield served


def port(site: Site) -> int:
    return int(site.base.rsplit(":", 1)[1])


def first_address(name: str) -> str:
    """The first address the resolver gives for `name` (localhost: 127.0.0.1, or ::1 first)."""
    return socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)[0][4][0]


def listing_linking(site: Site, href: str) -> Page:
    """A's listing of one real post whose link is `href`."""
    return Page(listing_page(site.real[:1], {site.real[0].slug: href}, 0, 1))


# -- links: one reading of each address -----------------------------------------------------------

def backslash_at(site: Site, other: Site) -> str:
    # urllib.parse reads the host after the @ (A); urllib3 connects to the one before it (B).
    return f"http://127.0.0.1:{port(other)}\\@127.0.0.1:{port(site)}/content/secret"


def test_a_link_that_parsers_read_as_two_hosts_never_reaches_the_other_one(searchsvc, site, other):
    link = backslash_at(site, other)
    other.pages["/content/secret"] = Page(b"<h1>Secret</h1><p>Intranet only.</p>")
    site.pages["/start"] = listing_linking(site, link)
    result = searchsvc("follow", *WEB, site.base + "/start")
    assert other.requests() == [], [r.path for r in other.requests()]
    assert result.exit_code == 1
    problem, skipped = result.stderr.splitlines()
    assert problem == f"{link}: not fetched: the address has a backslash, which parsers read differently"
    # Nor is its teaser a post of this site under that address (a post belongs to its site).
    assert skipped.startswith(f"{site.base}/start:") and f"it links to {link!r}, which is read two ways (" in skipped
    assert result.stdout.startswith("Fetched 2 URLs (0 not modified, 1 failed): 0 new")


def test_a_redirect_that_parsers_read_as_two_hosts_is_not_followed(searchsvc, site, other):
    link = backslash_at(site, other)
    other.pages["/content/secret"] = Page(b"<h1>Secret</h1><p>Intranet only.</p>")
    site.pages["/start"] = listing_linking(site, "/content/moving")
    site.pages["/content/moving"] = Page(b"", status=302, location=link)
    result = searchsvc("follow", *WEB, site.base + "/start")
    assert other.requests() == [], [r.path for r in other.requests()]
    assert result.exit_code == 1
    assert result.stderr == (f"{site.base}/content/moving: redirects to {link!r}: not fetched: the address has a "
                             "backslash, which parsers read differently\n")
    # The start URL's redirect goes through the same reading.
    result = searchsvc("ingest", *WEB, site.base + "/content/moving")
    assert other.requests() == []
    assert result.stderr.startswith(f"{site.base}/content/moving: redirects to {link!r}: not fetched: ")


@pytest.mark.parametrize(("shape", "reason"), [
    ("http://user@127.0.0.1:{a}/content/x", "the address has user info (user@host)"),
    ("http://127.0.0.1:{a}@127.0.0.1:{b}/content/x", "the address has user info (user@host)"),
    ("http://127.0.0.1:{a}/content\\x", "the address has a backslash, which parsers read differently"),
    ("http://2130706433:{b}/content/x", "the host is an IPv4 address in an unusual form (write it as a.b.c.d)"),
    ("http://0x7f.1:{b}/content/x", "the host is an IPv4 address in an unusual form (write it as a.b.c.d)"),
    ("http://127.1:{b}/content/x", "the host is an IPv4 address in an unusual form (write it as a.b.c.d)"),
    ("http://0177.0.0.1:{b}/content/x", "the host is an IPv4 address in an unusual form (write it as a.b.c.d)"),
    ("http://127.0.0.1%3a{b}/content/x", "the host is not a valid host name"),
])
def test_links_of_odd_shapes_are_each_a_problem_and_reach_nobody(searchsvc, site, other, shape, reason):
    link = shape.format(a=port(site), b=port(other))
    site.pages["/start"] = listing_linking(site, link)
    result = searchsvc("follow", *WEB, site.base + "/start")
    assert other.requests() == [], [r.path for r in other.requests()]
    assert [r.path for r in site.requests()] == ["/robots.txt", "/start"]
    assert result.exit_code == 1
    problem, skipped = result.stderr.splitlines()
    assert problem == f"{link}: not fetched: {reason}"
    assert skipped.startswith(f"{site.base}/start:") and f"it links to {link!r}, which is read two ways (" in skipped


@pytest.mark.parametrize("shape", ["http://127.0.0.1:{a}:{b}/content/x", "http://127.0.0.1:99999/content/x",
                                   "http://127.0.0.1:+{b}/content/x"])
def test_links_with_a_port_that_is_no_port_are_no_links(searchsvc, site, other, shape):
    site.pages["/start"] = listing_linking(site, shape.format(a=port(site), b=port(other)))
    result = searchsvc("follow", *WEB, site.base + "/start")
    assert other.requests() == []
    assert [r.path for r in site.requests()] == ["/robots.txt", "/start"]
    assert (result.exit_code, result.stderr) == (0, "")


def test_a_sitemap_listing_addresses_of_odd_shapes_reaches_only_its_own_site(searchsvc, site, other):
    bad = [backslash_at(site, other), f"http://user@127.0.0.1:{port(site)}/content/x",
           f"http://2130706433:{port(other)}/content/x"]
    locs = "".join(f"<url><loc>{u}</loc></url>" for u in [site.base + site.real[0].path, *bad])
    site.pages["/sitemap.xml"] = Page(('<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/'
                                       f'sitemap/0.9">{locs}</urlset>').encode(), content_type="application/xml")
    result = searchsvc("follow", *WEB, site.base + "/sitemap.xml")
    assert other.requests() == []
    assert result.stderr.splitlines() == [f"{u}: not fetched: {r}" for u, r in zip(bad, [
        "the address has a backslash, which parsers read differently", "the address has user info (user@host)",
        "the host is an IPv4 address in an unusual form (write it as a.b.c.d)"], strict=True)]
    assert list(by_title(searchsvc)) == [site.real[0].title]


def test_a_canonical_link_that_parsers_read_as_two_hosts_is_not_the_posts_url(searchsvc, site, other):
    post = site.real[0]
    link = backslash_at(site, other)
    site.pages[post.path] = Page(site.pages[post.path].body.replace(
        b"</head>", f'<link rel="canonical" href="{link}"></head>'.encode()))
    searchsvc("ingest", *WEB, site.base + post.path)
    assert [p["url"] for p in searchsvc.export()] == [site.base + post.path]


# -- loopback, private and link-local addresses ---------------------------------------------------

@pytest.mark.parametrize("target", [
    "http://127.0.0.1:{b}/rss.xml",  # another port of the start URL's address
    "http://localhost:{b}/rss.xml",  # a name for a loopback address
    "http://[::ffff:127.0.0.1]:{b}/rss.xml",  # IPv4 inside IPv6
])
def test_a_start_url_redirecting_to_another_loopback_server_does_not_reach_it(searchsvc, site, other, target):
    target = target.format(b=port(other))
    site.pages["/start"] = Page(b"", status=301, location=target)
    result = searchsvc("follow", *WEB, site.base + "/start")
    assert other.requests() == [], [r.path for r in other.requests()]
    assert result.exit_code == 1
    written = target.split("/")[2]
    read = written.replace("::ffff:127.0.0.1", "::ffff:7f00:1")  # IPv6 as written in its short form
    at = f"at {first_address('localhost')}, " if written.startswith("localhost") else ""
    assert result.stderr == (f"{site.base}/start: redirects to {target!r}: not fetched: {read} is {at}a loopback "
                             "address, not the start URL's own server (--allow-private fetches it)\n")
    assert searchsvc.export() == []


@pytest.mark.parametrize(("target", "said"), [
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),  # a cloud's metadata
    ("http://10.0.0.7:8080/admin", "10.0.0.7:8080 is a private address"),
    ("http://0.0.0.0:{b}/rss.xml", "0.0.0.0:{b} is an unspecified address"),  # Linux connects it to this machine
    ("http://[::1]:{b}/rss.xml", "[::1]:{b} is a loopback address"),
    ("http://[fe80::1]/", "[fe80::1] is a link-local address"),
])
def test_non_public_addresses_are_refused_before_any_connection(searchsvc, site, other, target, said):
    target, said = target.format(b=port(other)), said.format(b=port(other))
    site.pages["/start"] = Page(b"", status=302, location=target)
    result = searchsvc("ingest", *WEB, site.base + "/start")
    assert other.requests() == []
    assert result.stderr == (f"{site.base}/start: redirects to {target!r}: not fetched: {said}, not the start URL's "
                             "own server (--allow-private fetches it)\n")


def test_allow_private_fetches_where_a_start_url_leads_without_crawling_that_site(searchsvc, site, other):
    """With --allow-private the start URL's redirect to B is read, but B does not join the crawl:
    the post pages its feed links to are not fetched, and a note says so."""
    target = f"{other.base}/rss.xml"  # B's feed links to its posts by this name (issue 22: a post belongs to its site)
    site.pages["/start"] = Page(b"", status=301, location=target)
    result = searchsvc("follow", *WEB, "--allow-private", site.base + "/start")
    assert result.exit_code == 0, result.output
    assert [r.path for r in other.requests()] == ["/robots.txt", "/rss.xml"]
    assert result.stderr == (f"{site.base}/start: note: redirects to another site (127.0.0.1:{port(other)}), which "
                             f"is read but not crawled (follow {target} to crawl it)\n"
                             "note: 2 links to other sites were not followed\n")
    assert len(searchsvc.export()) == 4  # the feed's two full posts, and two teasers


def test_a_robots_txt_redirecting_to_another_loopback_server_allows_nothing(searchsvc, site, other):
    site.pages["/robots.txt"] = Page(b"", status=301, location=f"{other.base}/robots.txt")
    result = searchsvc("follow", *WEB, site.base + "/rss.xml")
    assert other.requests() == []
    assert result.exit_code == 1
    assert result.stderr == (f"{site.base}/rss.xml: not fetched: robots.txt could not be read (not fetched: "
                             f"127.0.0.1:{port(other)} is a loopback address, not the start URL's own server "
                             f"(--allow-private fetches it)), so nothing is fetched from {site.base}\n")


@pytest.mark.parametrize("start", ["http://a@127.0.0.1:{a}/rss.xml", "http://2130706433:{a}/rss.xml",
                                   "http://127.0.0.1:{b}\\@127.0.0.1:{a}/rss.xml"])
def test_a_start_url_of_an_odd_shape_is_refused(searchsvc, site, other, start):
    start = start.format(a=port(site), b=port(other))
    result = searchsvc("ingest", *WEB, start)
    assert other.requests() == [] and site.requests() == []
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{start}: not fetched: the ")


def test_the_start_urls_own_server_may_be_named_otherwise(searchsvc, site):
    """localhost and 127.0.0.1 on one port are one server: the redirect is followed."""
    site.pages["/start"] = Page(b"", status=301, location=f"http://localhost:{port(site)}/rss.xml")
    result = searchsvc("follow", *WEB, site.base + "/start")
    assert result.exit_code == 0, result.output
    assert len(searchsvc.export()) == 4


def test_follow_help_says_what_is_refused(searchsvc):
    result = searchsvc("follow", "--help")
    assert "--allow-private" in result.stdout
    assert "loopback" in result.stdout


@pytest.mark.parametrize("host, kind", [("[2002:7f00:1::]", "a loopback"), ("[2002:a9fe:a9fe::]", "a link-local"),
                                        ("[2002:a00:1::]", "a private"), ("[fec0::1]", "a site-local")])
def test_ipv4_addresses_inside_ipv6_are_judged_as_the_address_they_wrap(searchsvc, site, host, kind):
    """The fourth review round: 6to4 addresses wrapping 127.0.0.1 or the metadata address, and
    site-local fec0::/10, were public to the crawler (refused here before any connection)."""
    target = f"http://{host}:8080/latest/meta-data"
    site.pages["/start"] = Page(b"", status=302, location=target)
    result = searchsvc("ingest", *WEB, site.base + "/start")
    assert result.exit_code == 1
    assert result.stderr == (f"{site.base}/start: redirects to {target!r}: not fetched: {host}:8080 is {kind} "
                             "address, not the start URL's own server (--allow-private fetches it)\n")
