"""Web addresses as a crawl needs them: checked, joined without raising, cleaned, compared.

urllib.parse raises ValueError on some addresses found on the web (`http://[oops/`: an
unclosed IPv6 bracket); one such link must be one problem, never the end of a run, so every
parse of an address from a page, a feed or a header goes through these.
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit, urlunsplit

# Query parameters that track a click and never name a different page (Google Analytics' utm_*,
# Facebook's, Google Ads', Mailchimp's, HubSpot's).
_TRACKING = ("utm_", "fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "_hsenc", "_hsmi", "mkt_tok")


def is_url(text: str) -> bool:
    """An absolute http(s) address with a host."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        return (parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
                and not any(c.isspace() for c in parts.netloc))
    except ValueError:
        return False


def join(base: str | None, link: str, *, fragment: bool = False) -> str | None:
    """`link` resolved against `base`, `clean`ed; None when the result is not an absolute
    http(s) address (or cannot be parsed)."""
    try:
        found = urljoin(base or "", link.strip())
        return clean(found, fragment=fragment) if is_url(found) else None
    except ValueError:
        return None


def clean(url: str, *, fragment: bool = False) -> str:
    """`url` without the query parameters that only track a click, and without its #fragment
    unless `fragment` (a feed's entries may be anchors of one page): the page's address, as a
    post's `url` (and so its id) should be. The other parameters are kept exactly as written
    (re-encoded, `?q=node/12` would become another address)."""
    parts = urlsplit(url)
    query = parts.query
    if query:
        query = "&".join(piece for piece in query.split("&")
                         if not piece.split("=", 1)[0].lower().startswith(_TRACKING))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment if fragment else ""))


def key(url: str) -> str:
    """What two links to one page have in common: `clean`, no scheme (a site's feed often links
    https:// where its pages say http://), the host in lower case, and no trailing slash on the
    path ("/post/" and "/post" are one page on nearly every site)."""
    parts = urlsplit(clean(url))
    path = parts.path.rstrip("/") or "/"
    return urlunsplit(("", site(url), path, parts.query, ""))


def site(url: str) -> str:
    """The server of `url` (its host name, and its port if not the scheme's default): what "the
    same site" means for a crawl, and whose requests are paced. http:// and https:// of a server
    are one site."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port
    if port is None or (parts.scheme.lower(), port) in (("http", 80), ("https", 443)):
        return host
    return f"{host}:{port}"


def origin(url: str) -> str:
    """The scheme, host and port of `url`: whose robots.txt rules it (RFC 9309)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
