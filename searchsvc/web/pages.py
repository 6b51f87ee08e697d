"""The HTML pages: search, post, and the Atom feed (feed.py). Thin views over the same SearchResult as the API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request, url_for
from markupsafe import Markup

from searchsvc.errors import BadRequest
from searchsvc.search.posts import archive_contents, get_post, marked_post, similar_posts
from searchsvc.search.request import SearchRequest, request_from_params
from searchsvc.search.run import search
from searchsvc.web.context import engine
from searchsvc.web.feed import FEED_ENTRIES, FeedLinks, atom_feed
from searchsvc.web.metrics import observe_search
from searchsvc.web.timeline import timeline

pages = Blueprint("pages", __name__)


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
        observe_search(result.took_ms / 1000)
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
        title_html, body_html = _shown(record, q)
    except BadRequest:
        title_html, body_html = _shown(record, "")
    accessed = date.today().isoformat()
    return render_template(
        "post.html",
        post=record,
        q=q,
        title_html=title_html,
        body_html=body_html,
        citation=citation(record, _site_root() + url_for("pages.post_page", post_id=post_id), accessed),
        similar=similar_posts(engine(), post_id, limit=5),
    )


def _shown(record: Any, q: str) -> tuple[Markup, Markup]:
    """The title and body as HTML with the words of `q` marked: a Markdown body as the index
    stores it, rendered and sanitised (markup.py), any other (and Markdown too long to render)
    escaped as text."""
    shown = marked_post(engine(), record, q, text_body=False)
    return shown.title.html(), shown.body.html() if shown.html is None else shown.html


@pages.get("/feed.atom")
def feed() -> Response:
    """The newest matches of a search as an Atom feed, so a search can be followed."""
    args = request.args.to_dict(flat=False)
    args["sort"], args["page"], args["per_page"] = ["newest"], ["1"], [str(FEED_ENTRIES)]
    search_request = request_from_params(args)
    result = search(engine(), search_request)
    observe_search(result.took_ms / 1000)
    root = _site_root()
    params = search_request.to_params(sort=None, page=None, per_page=None)
    links = FeedLinks(
        feed=root + url_for("pages.feed", **params),
        search_page=root + url_for("pages.search_page", **params),
        post=lambda post_id: root + url_for("pages.post_page", post_id=post_id),
    )
    body = atom_feed(result, links)
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


def _link_maker(search_request: SearchRequest):
    """url(**changes): this search's permalink with some parameters changed."""

    def url(endpoint: str = "pages.search_page", **changes: Any) -> str:
        if "page" not in changes and endpoint == "pages.search_page":
            changes["page"] = None  # any other change starts again at page 1
        return url_for(endpoint, **search_request.to_params(**changes))

    return url
