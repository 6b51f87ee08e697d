"""The JSON API: thin views over the search core. Every error goes through errors.py."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from searchsvc.index.schema import SCHEMA_VERSION
from searchsvc.search.posts import get_post, marked_post, similar_posts
from searchsvc.search.request import request_from_params
from searchsvc.search.run import search
from searchsvc.web.context import engine, export_slots
from searchsvc.web.exports import export_response
from searchsvc.web.metrics import observe_search
from searchsvc.web.openapi import openapi_document

api = Blueprint("api", __name__)


@api.after_request
def allow_any_origin(response: Response) -> Response:
    """Other tools call the API from browsers: any origin may GET it."""
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Expose-Headers"] = (
        "Content-Disposition, X-Searchsvc-Query, X-Searchsvc-Filters, X-Searchsvc-Count, "
        "X-Searchsvc-Exported-At, X-Searchsvc-Index-Version, X-Searchsvc-Commit"
    )
    return response


@api.get("/api/search")
def api_search() -> Response:
    result = search(engine(), request_from_params(request.args.to_dict(flat=False)))
    observe_search(result.took_ms / 1000)
    return jsonify(result.to_json())


@api.get("/api/posts/<post_id>")
def api_post(post_id: str) -> Response:
    record = get_post(engine(), post_id)
    data = record.to_json()
    q = request.args.get("q", "")
    if q.strip() or record.markdown:
        shown = marked_post(engine(), record, q, text_body=bool(q.strip()))
        if q.strip():
            data["title_highlighted"], data["body_highlighted"] = str(shown.title.html()), str(shown.body.html())
        if record.markdown:  # null when it is too long to render: `body` is shown as plain text
            data["body_html"] = None if shown.html is None else str(shown.html)
    return jsonify(data)


@api.get("/api/posts/<post_id>/similar")
def api_similar(post_id: str) -> Response:
    hits = similar_posts(engine(), post_id)
    return jsonify({"id": post_id, "similar": [hit.to_json() for hit in hits]})


@api.get("/api/export")
def api_export() -> Response:
    return export_response(engine(), request.args.to_dict(flat=False), export_slots())


@api.get("/api/openapi.json")
def api_openapi() -> Response:
    return jsonify(openapi_document())


@api.get("/healthz")
def healthz() -> Response:
    opened = engine().health()  # never waits for a search; raises the index's error: answered as 503
    return jsonify({"status": "ok", "posts": opened.posts, "generation": opened.generation,
                    "commit": opened.commit, "committed": opened.committed, "schema_version": SCHEMA_VERSION})
