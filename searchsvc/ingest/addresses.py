"""Web addresses as a crawl needs them: checked, joined without raising, cleaned, compared.

urllib.parse raises ValueError on some addresses found on the web (`http://[oops/`: an
unclosed IPv6 bracket); one such link must be one problem, never the end of a run, so every
parse of an address from a page, a feed or a header goes through these.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

# Query parameters that track a click and never name a different page (Google Analytics' utm_*,
# Facebook's, Google Ads', Mailchimp's, HubSpot's).
_TRACKING = ("utm_", "fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "_hsenc", "_hsmi", "mkt_tok")


def is_url(text: str) -> bool:
    """An absolute http(s) address with a host."""
    try:
        parts = urlsplit(text)
        return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def join(base: str | None, link: str) -> str | None:
    """`link` resolved against `base`, without its #fragment and tracking parameters; None when
    the result is not an absolute http(s) address (or cannot be parsed)."""
    try:
        found = urljoin(base or "", link.strip())
    except ValueError:
        return None
    return clean(found) if is_url(found) else None


def clean(url: str) -> str:
    """`url` without its #fragment and the query parameters that only track a click: the same
    page's address, as a post's `url` (and so its id) should be."""
    parts = urlsplit(url)
    query = parts.query
    if query:
        kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if not k.lower().startswith(_TRACKING)]
        if len(kept) != len(parse_qsl(query, keep_blank_values=True)):
            query = urlencode(kept)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def key(url: str) -> str:
    """What two links to one page have in common: `clean`, the scheme and host in lower case,
    and no trailing slash on the path ("/post/" and "/post" are one page on nearly every site)."""
    parts = urlsplit(clean(url))
    path = parts.path.rstrip("/") or "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def site(url: str) -> str:
    """The scheme and host of `url`: what "the same site" means for a crawl and its politeness."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
