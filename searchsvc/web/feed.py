"""The Atom feed of a search: its newest matches as entries, so a search can be followed."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from xml.etree import ElementTree as ET

from searchsvc.dates import utc_timestamp
from searchsvc.search.results import SearchResult

FEED_ENTRIES = 20
SITE_NAME = "searchsvc"
# Characters XML 1.0 does not allow even as references (U+FFFE, most C0 controls, lone
# surrogates): ElementTree writes them as they are, and one makes the whole feed unreadable.
_NOT_XML = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ATOM = "{http://www.w3.org/2005/Atom}"


@dataclass(frozen=True)
class FeedLinks:
    """Absolute URLs: the feed itself, the same search as a page, and a post's page."""

    feed: str
    search_page: str
    post: Callable[[str], str]


def atom_feed(result: SearchResult, links: FeedLinks) -> str:
    """The feed's XML text."""
    search_request = result.request
    ET.register_namespace("", "http://www.w3.org/2005/Atom")
    xml = ET.Element(_ATOM + "feed")
    what = f"“{search_request.q}”" if search_request.q else "all posts"
    ET.SubElement(xml, _ATOM + "title").text = f"{SITE_NAME}: {what}"
    ET.SubElement(xml, _ATOM + "id").text = links.feed
    ET.SubElement(xml, _ATOM + "link", rel="self", href=links.feed)
    ET.SubElement(xml, _ATOM + "link", rel="alternate", type="text/html", href=links.search_page)
    dates = [hit.date for hit in result.hits if hit.date]
    ET.SubElement(xml, _ATOM + "updated").text = _atom_date(max(dates)) if dates else utc_timestamp()
    ET.SubElement(ET.SubElement(xml, _ATOM + "author"), _ATOM + "name").text = SITE_NAME
    for hit in result.hits:
        entry = ET.SubElement(xml, _ATOM + "entry")
        link = links.post(hit.id)
        ET.SubElement(entry, _ATOM + "title").text = hit.title
        ET.SubElement(entry, _ATOM + "id").text = link
        ET.SubElement(entry, _ATOM + "link", rel="alternate", type="text/html", href=link)
        ET.SubElement(entry, _ATOM + "updated").text = _atom_date(hit.date) if hit.date else utc_timestamp()
        if hit.author:
            ET.SubElement(ET.SubElement(entry, _ATOM + "author"), _ATOM + "name").text = hit.author
        summary = ET.SubElement(entry, _ATOM + "summary", type="html")
        summary.text = str(hit.snippet_html)  # escaped again by the XML writer, as type="html" wants
    return _NOT_XML.sub("", ET.tostring(xml, encoding="unicode", xml_declaration=True))


def _atom_date(text: str) -> str:
    """Atom wants a full timestamp with an offset; a day-precise date is midnight UTC."""
    if len(text) == 10:
        return text + "T00:00:00Z"
    return text if text.endswith("Z") else text + "Z"
