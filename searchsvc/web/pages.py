"""The HTML pages: search, post, Atom feed. Thin views over the same SearchResult as the API."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Any
from xml.etree import ElementTree as ET

from flask import Blueprint, Response, current_app, render_template, request, url_for

from searchsvc.errors import BadRequest
from searchsvc.search.posts import archive_contents, get_post, highlighted_post, similar_posts
from searchsvc.search.request import SearchRequest, request_from_params
from searchsvc.search.run import search
from searchsvc.web.context import engine
from searchsvc.web.timeline import timeline

pages = Blueprint("pages", __name__)

FEED_ENTRIES = 20
SITE_NAME = "searchsvc"
# Characters XML 1.0 does not allow even as references (U+FFFE, most C0 controls, lone
# surrogates): ElementTree writes them as they are, and one makes the whole feed unreadable.
_NOT_XML = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@pages.get("/")
def search_page() -> tuple[str, int]:
    """The search form and its results; invalid input re-renders the form with the message."""
    args = request.args.to_dict(flat=False)
    typed = {name: (args.get(name) or [""])[-1] for name in ("q", "from", "to", "sort", "page", "per_page")}
    typed_authors = [a for a in args.get("author", []) if a.strip()]
    errors: dict[str, str] = {}
    result = None
    try:
        search_request = request_from_params(args)
        result = search(engine(), search_request)
    except BadRequest as e:
        errors[e.param or "q"] = str(e)
    status = 400 if errors else 200
    return render_template(
        "search.html",
        result=result,
        typed=typed,
        typed_authors=typed_authors,
        errors=errors,
        summary=archive_contents(engine()),
        timeline=timeline(result) if result else None,
        link=_link_maker(result.request) if result else None,
    ), status


@pages.get("/posts/<post_id>")
def post_page(post_id: str) -> str:
    """A whole post, highlighted when arriving from a search, with a citation and similar posts."""
    record = get_post(engine(), post_id)
    q = request.args.get("q", "")
    try:
        title, body = highlighted_post(engine(), record, q)
    except BadRequest:
        title, body = highlighted_post(engine(), record, "")
    accessed = date.today().isoformat()
    return render_template(
        "post.html",
        post=record,
        q=q,
        title_html=title.html(),
        body_html=body.html(),
        citation=citation(record, _site_root() + url_for("pages.post_page", post_id=post_id), accessed),
        similar=similar_posts(engine(), post_id, limit=5),
    )


@pages.get("/feed.atom")
def feed() -> Response:
    """The newest matches of a search as an Atom feed, so a search can be followed."""
    args = request.args.to_dict(flat=False)
    args["sort"], args["page"], args["per_page"] = ["newest"], ["1"], [str(FEED_ENTRIES)]
    search_request = request_from_params(args)
    result = search(engine(), search_request)
    root = _site_root()
    params = search_request.to_params(sort=None, page=None, per_page=None)
    ET.register_namespace("", "http://www.w3.org/2005/Atom")
    atom = "{http://www.w3.org/2005/Atom}"
    xml = ET.Element(atom + "feed")
    what = f"“{search_request.q}”" if search_request.q else "all posts"
    ET.SubElement(xml, atom + "title").text = f"{SITE_NAME}: {what}"
    ET.SubElement(xml, atom + "id").text = root + url_for("pages.feed", **params)
    ET.SubElement(xml, atom + "link", rel="self", href=root + url_for("pages.feed", **params))
    ET.SubElement(xml, atom + "link", rel="alternate", type="text/html",
                  href=root + url_for("pages.search_page", **params))
    dates = [hit.date for hit in result.hits if hit.date]
    ET.SubElement(xml, atom + "updated").text = _atom_date(max(dates)) if dates else _now()
    ET.SubElement(ET.SubElement(xml, atom + "author"), atom + "name").text = SITE_NAME
    for hit in result.hits:
        entry = ET.SubElement(xml, atom + "entry")
        link = root + url_for("pages.post_page", post_id=hit.id)
        ET.SubElement(entry, atom + "title").text = hit.title
        ET.SubElement(entry, atom + "id").text = link
        ET.SubElement(entry, atom + "link", rel="alternate", type="text/html", href=link)
        ET.SubElement(entry, atom + "updated").text = _atom_date(hit.date) if hit.date else _now()
        if hit.author:
            ET.SubElement(ET.SubElement(entry, atom + "author"), atom + "name").text = hit.author
        summary = ET.SubElement(entry, atom + "summary", type="html")
        summary.text = str(hit.snippet_html)  # escaped again by the XML writer, as type="html" wants
    body = _NOT_XML.sub("", ET.tostring(xml, encoding="unicode", xml_declaration=True))
    return Response(body, mimetype="application/atom+xml", content_type="application/atom+xml; charset=utf-8")


def _site_root() -> str:
    """The start of links read outside the page (feeds, citations): SEARCHSVC_BASE_URL when set,
    else the Host header the client sent, which anyone can forge."""
    return current_app.config["BASE_URL"] or request.url_root.rstrip("/")


def citation(record: Any, page_url: str, accessed: str) -> str:
    """Author, “Title”, date, URL, date accessed: one line to paste into an article."""
    parts = []
    if record.author:
        parts.append(f"{record.author}.")
    parts.append(f"“{record.title}.”")
    if record.date:
        parts.append(f"{_long_date(record.date.value)}.")
    parts.append(f"{record.url or page_url}.")
    parts.append(f"Accessed {_long_date(datetime.fromisoformat(accessed))}.")
    return " ".join(parts)


def _long_date(value: datetime) -> str:
    return f"{value.day} {value.strftime('%B')} {value.year}"


def _atom_date(text: str) -> str:
    """Atom wants a full timestamp with an offset; a day-precise date is midnight UTC."""
    if len(text) == 10:
        return text + "T00:00:00Z"
    return text if text.endswith("Z") else text + "Z"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _link_maker(search_request: SearchRequest):
    """url(**changes): this search's permalink with some parameters changed."""

    def url(endpoint: str = "pages.search_page", **changes: Any) -> str:
        if "page" not in changes and endpoint == "pages.search_page":
            changes["page"] = None  # any other change starts again at page 1
        return url_for(endpoint, **search_request.to_params(**changes))

    return url
