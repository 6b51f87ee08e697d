"""Web addresses as a crawl needs them: read once, checked, joined without raising, cleaned, compared.

One reading of every address: `parse` reads a URL into an `Address` (scheme, host, port, the
path and query sent), and the site check, robots.txt, the delay and the connection all use that
value, never the string again. Two parsers disagree on some strings: urllib.parse reads the host
of `http://B\\@A/` as A where urllib3 connects to B, drops tabs that urllib3 refuses, takes
`2130706433` for a name that the resolver reads as 127.0.0.1. So a URL that any two of them could
read differently (a backslash, user info, a control character, an odd port or IPv4 form) is
refused, as a problem `URL: not fetched: reason`, before anyone connects.

urllib.parse raises ValueError on some addresses found on the web (`http://[oops/`: an
unclosed IPv6 bracket); one such link must be one problem, never the end of a run, so every
parse of an address from a page, a feed or a header goes through these.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

# Query parameters that track a click and never name a different page (Google Analytics' utm_*,
# Facebook's, Google Ads', Mailchimp's, HubSpot's).
_TRACKING = ("utm_", "fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "_hsenc", "_hsmi", "mkt_tok")
DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMBER = re.compile(r"0x[0-9a-f]*|[0-9]+")  # what the WHATWG URL standard reads as a part of an IPv4 address


class BadAddress(ValueError):
    """An address that is not fetched; its message says why."""


@dataclass(frozen=True)
class Address:
    """One reading of a URL: what is compared, paced, asked of robots.txt and connected to."""

    scheme: str  # "http" or "https"
    host: str  # lower case, ASCII (IDNA), no trailing dot; an IPv6 address without brackets
    port: int
    target: str  # the path and query, as sent in the request line

    @property
    def netloc(self) -> str:
        """The host (in brackets if IPv6) and the port unless it is the scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.target}"

    @property
    def site(self) -> str:
        """The server (its host, and its port if not the scheme's default): what "the same site"
        means for a crawl. http:// and https:// of a server are one site."""
        return self.netloc

    @property
    def origin(self) -> str:
        """The scheme, host and port: whose robots.txt rules it (RFC 9309)."""
        return f"{self.scheme}://{self.netloc}"


def parse(url: str) -> Address:
    """`url` read once; raises BadAddress saying why it is not fetched."""
    if "\\" in url:
        # WHATWG parsers (browsers) read it as "/", urllib3 as part of the path, urllib.parse as
        # part of the user info or host.
        raise BadAddress("the address has a backslash, which parsers read differently")
    if any(c < " " or c == "\x7f" for c in url):
        # urllib.parse silently drops tabs and line breaks that other parsers refuse or keep.
        raise BadAddress("the address has a control character")
    try:
        parts = urlsplit(url)
    except ValueError as e:
        raise BadAddress(f"cannot be read ({e})") from None
    if " " in parts.netloc:  # in the path and query, a space is sent as %20 by everyone
        raise BadAddress("the host is not a valid host name")
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise BadAddress("not an http(s) address")
    netloc = parts.netloc
    if "@" in netloc:
        raise BadAddress("the address has user info (user@host)")
    if netloc.startswith("["):
        inside, bracket, rest = netloc[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise BadAddress("the host is not a valid host name")
        host, port_text = _ipv6(inside), rest[1:] if rest else ""
        has_port = bool(rest)
    else:
        name, colon, port_text = netloc.partition(":")
        host, has_port = _name(name), bool(colon)
    if has_port and port_text:
        if not (port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65536):
            raise BadAddress("the port is not a number from 1 to 65535")
        port = int(port_text)
    else:
        port = DEFAULT_PORTS[scheme]
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Address(scheme, host, port, target)


def _ipv6(text: str) -> str:
    try:
        if "%" in text:
            raise ValueError  # a zone names an interface of this machine
        return ipaddress.IPv6Address(text).compressed
    except ValueError:
        raise BadAddress("the host is not a valid host name") from None


def _name(text: str) -> str:
    """A host name in the one form every later step uses (lower case, IDNA, no trailing dot)."""
    name = text.lower()
    name = name[:-1] if name.endswith(".") else name
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise BadAddress("the host is not a valid host name") from None
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise BadAddress("the host is not a valid host name")
    if _NUMBER.fullmatch(labels[-1]):
        # An IPv4 address: only as four decimal numbers. The resolver also reads 2130706433,
        # 0x7f.1, 127.1 and 0177.0.0.1 as 127.0.0.1, each a "site" of its own to a string compare.
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            raise BadAddress("the host is an IPv4 address in an unusual form (write it as a.b.c.d)") from None
    return name


def is_url(text: str) -> bool:
    """An absolute http(s) address with a host (which `parse` may still refuse, saying why)."""
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
    https:// where its pages say http://), the host as `parse` reads it, and no trailing slash on
    the path ("/post/" and "/post" are one page on nearly every site). An address `parse`
    refuses is its own key."""
    try:
        address = parse(clean(url))
    except BadAddress:
        return url
    path, _, query = address.target.partition("?")
    return urlunsplit(("", address.site, path.rstrip("/") or "/", query, ""))


def same_but_www(a: str, b: str) -> bool:
    """Whether two sites (`Address.site`) are one host but for a leading `www.`: one site, to a
    crawl's start URL and its redirect, and to the posts a feed names."""
    return a.removeprefix("www.") == b.removeprefix("www.")


def site(url: str) -> str:
    """The server of `url` (`Address.site`); "" for an address `parse` refuses, which is no
    site's."""
    try:
        return parse(url).site
    except BadAddress:
        return ""
