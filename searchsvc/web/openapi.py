"""The OpenAPI 3.1 description of the JSON API. Tests validate real responses against it."""

from __future__ import annotations

from typing import Any

from searchsvc.markup import MAX_HTML_CHARS, MAX_SOURCE_CHARS
from searchsvc.search.request import DEFAULT_PER_PAGE, MAX_PAGE, MAX_PER_PAGE, SORTS

_NULLABLE_STRING = {"type": ["string", "null"]}


def _param(name: str, description: str, schema: dict[str, Any], *, required: bool = False,
           array: bool = False) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": "query", "required": required,
                             "description": description, "schema": schema}
    if array:
        param["schema"] = {"type": "array", "items": schema}
        param["style"], param["explode"] = "form", True
    return param


SEARCH_PARAMS = [
    _param("q", "Query: words (AND), \"phrases\", OR, NOT or -word, parentheses, title:, author:, "
           "prefix*, fuzzy~. Empty: every post matching the filters, newest first.", {"type": "string"}),
    _param("from", "Start date at the precision given: 2020, 2020-12, Dec 2020, 2020-12-29, ISO 8601; "
           "years 1 to 9998.",
           {"type": "string"}),
    _param("to", "End date, inclusive of the whole period given (to=2020-12 runs through 31 December); "
           "years 1 to 9998.",
           {"type": "string"}),
    _param("author", "Exact author; repeat for several.", {"type": "string"}, array=True),
    _param("sort", "relevance (default with a query), newest (default without), oldest; undated last.",
           {"type": "string", "enum": list(SORTS)}),
]
PAGE_PARAMS = [
    _param("page", "Page number.", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1}),
    _param("per_page", "Hits per page.",
           {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE, "default": DEFAULT_PER_PAGE}),
]

HIT = {
    "type": "object",
    "required": ["id", "title", "date", "author", "url", "score", "title_highlighted", "snippet",
                 "matched_terms"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string"},
        "title": {"type": "string"},
        "date": {**_NULLABLE_STRING, "description": "ISO 8601, at the precision the source gave"},
        "author": _NULLABLE_STRING,
        "url": _NULLABLE_STRING,
        "score": {"type": ["number", "null"], "description": "BM25F score; null when sorted by date"},
        "title_highlighted": {"type": "string", "description": "HTML: escaped, matches in <mark>"},
        "snippet": {"type": "string", "description": "HTML: about 200 characters around the best matches"},
        "matched_terms": {"type": "array", "items": {"type": "string"}},
    },
}

FACET = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["value", "count"],
        "additionalProperties": False,
        "properties": {"value": {"type": ["string", "integer", "null"]}, "count": {"type": "integer"}},
    },
}

_COMMIT = ("The index commit that answered: the same on the writer and on every replica serving it, "
           "so pages from different commits can be told apart (null for an index older than commit ids)")

SEARCH_RESPONSE = {
    "type": "object",
    "required": ["query", "total", "page", "per_page", "pages", "hits", "facets", "did_you_mean", "skipped",
                 "took_ms", "commit"],
    "additionalProperties": False,
    "properties": {
        "query": {
            "type": "object",
            "required": ["q", "from", "to", "author", "sort", "page", "per_page", "understood"],
            "additionalProperties": False,
            "properties": {
                "q": {"type": "string"},
                "from": _NULLABLE_STRING,
                "to": _NULLABLE_STRING,
                "author": {"type": "array", "items": {"type": "string"}},
                "sort": {"type": "string", "enum": list(SORTS)},
                "page": {"type": "integer"},
                "per_page": {"type": "integer"},
                "understood": {"type": "string",
                               "description": "The query after analysis: stems, folded and respelled variants"},
            },
        },
        "total": {"type": "integer"},
        "page": {"type": "integer"},
        "per_page": {"type": "integer"},
        "pages": {"type": "integer"},
        "hits": {"type": "array", "items": {"$ref": "#/components/schemas/Hit"}},
        "facets": {
            "type": "object",
            "required": ["author", "year"],
            "additionalProperties": False,
            "properties": {"author": {"$ref": "#/components/schemas/Facet"},
                           "year": {"$ref": "#/components/schemas/Facet"}},
        },
        "did_you_mean": {
            "oneOf": [
                {"type": "null"},
                {"type": "object", "required": ["q", "total"], "additionalProperties": False,
                 "properties": {"q": {"type": "string"}, "total": {"type": "integer"}}},
            ]
        },
        "skipped": {
            "type": "array", "items": {"type": "string", "enum": ["did_you_mean"]},
            "description": "Optional parts left out to answer within the search time limit.",
        },
        "took_ms": {"type": "number"},
        "commit": {**_NULLABLE_STRING, "description": _COMMIT},
    },
}

POST = {
    "type": "object",
    "required": ["id", "title", "date", "author", "url", "body"],
    "properties": {
        "id": {"type": "string"},
        "title": {"type": "string"},
        "date": _NULLABLE_STRING,
        "author": _NULLABLE_STRING,
        "url": _NULLABLE_STRING,
        "body": {"type": "string"},
        "title_highlighted": {"type": "string", "description": "With q: HTML, matches in <mark>"},
        "body_highlighted": {"type": "string", "description": "With q: HTML, matches in <mark>"},
        "body_format": {**_NULLABLE_STRING,
                        "description": "\"markdown\" when `body` is Markdown; absent, null, \"\" or \"plain\": "
                                       "plain text"},
        "body_html": {"type": ["string", "null"],
                      "description": "Markdown posts only: the body rendered as sanitised HTML (no scripts, styles, "
                                     "event handlers, frames or images; links http(s) and mailto only), with q "
                                     "its matches in <mark>; null when the Markdown is too long to render "
                                     f"(over {MAX_SOURCE_CHARS:,} characters, or over {MAX_HTML_CHARS:,} of HTML): "
                                     "the body is then plain text, as `body_highlighted` marks it"},
    },
    "additionalProperties": True,
    "description": "The post in the record format of `searchsvc export`, extra source keys included.",
}

ERROR = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "code", "message", "param"],
            "additionalProperties": False,
            "properties": {
                "status": {"type": "integer"},
                "code": {"type": "string"},
                "message": {"type": "string"},
                "param": _NULLABLE_STRING,
            },
        }
    },
}

HEALTH = {
    "type": "object",
    "required": ["status", "posts", "generation", "commit", "committed", "schema_version"],
    "additionalProperties": False,
    "properties": {
        "status": {"const": "ok"},
        "posts": {"type": "integer"},
        "generation": {"type": "string", "description": "This server's folder of the index (g000001)"},
        "commit": {**_NULLABLE_STRING, "description": _COMMIT},
        "committed": {**_NULLABLE_STRING, "description": "When the commit was made, UTC (2026-12-01T17:13:25Z)"},
        "schema_version": {"type": "integer"},
    },
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ok(schema_ref: str, description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}}}


POST_ID = {"name": "post_id", "in": "path", "required": True, "schema": {"type": "string"}}


def openapi_document() -> dict[str, Any]:
    """The document served at /api/openapi.json."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "searchsvc",
            "version": "1",
            "description": "Full-text search over public statements. Errors always have the Error shape; "
                           "any origin may GET the API (CORS).",
        },
        "paths": {
            "/api/search": {"get": {
                "summary": "Ranked keyword and date-range search with highlighted snippets and facets",
                "parameters": SEARCH_PARAMS + PAGE_PARAMS,
                "responses": {"200": _ok("SearchResponse", "One page of hits"),
                              "400": _error("A bad query, date, sort or page"),
                              "503": _error("The index is missing, damaged or of another version")},
            }},
            "/api/posts/{post_id}": {"get": {
                "summary": "A whole post; with q, its title and body highlighted",
                "parameters": [POST_ID, _param("q", "Words to highlight", {"type": "string"})],
                "responses": {"200": _ok("Post", "The post"), "400": _error("A bad q"),
                              "404": _error("No such post"), "503": _error("The index cannot be read")},
            }},
            "/api/posts/{post_id}/similar": {"get": {
                "summary": "Posts most like this one",
                "parameters": [POST_ID],
                "responses": {"200": _ok("Similar", "Up to 10 similar posts"),
                              "404": _error("No such post"), "503": _error("The index cannot be read")},
            }},
            "/api/export": {"get": {
                "summary": "Every match of a search (no page limit), streamed",
                "parameters": SEARCH_PARAMS + [
                    _param("format", "csv (UTF-8 with BOM; a text cell starting with = + - @, tab or CR gets a "
                           "leading ' so spreadsheets do not run it as a formula) or jsonl (the record format, "
                           "raw, with score)",
                           {"type": "string", "enum": ["csv", "jsonl"], "default": "jsonl"})],
                "responses": {
                    "200": {
                        "description": "The matches, one post per row or line. Provenance in headers.",
                        "headers": {name: {"schema": {"type": "string"}, "description": text} for name, text in [
                            ("X-Searchsvc-Query", "The query as understood, JSON-encoded"),
                            ("X-Searchsvc-Filters", "from, to, author, sort, JSON-encoded"),
                            ("X-Searchsvc-Count", "Number of posts exported"),
                            ("X-Searchsvc-Exported-At", "UTC time of the export"),
                            ("X-Searchsvc-Index-Version", "Schema version and index generation"),
                            ("X-Searchsvc-Commit", "The index commit the posts come from (as /healthz's commit)"),
                        ]},
                        "content": {"text/csv": {"schema": {"type": "string"}},
                                    "application/x-ndjson": {"schema": {"type": "string"}}},
                    },
                    "400": _error("A bad query, date, sort or format"),
                    "503": {**_error("The index cannot be read, or this server process is already streaming as "
                                     "many exports as it allows (code too_many_exports, with Retry-After)"),
                            "headers": {"Retry-After": {"schema": {"type": "string"},
                                                        "description": "Seconds to wait (too_many_exports only)"}}},
                },
            }},
            "/api/openapi.json": {"get": {
                "summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3.1",
                                      "content": {"application/json": {"schema": {"type": "object"}}}}},
            }},
            "/healthz": {"get": {
                "summary": "Whether the index can be read, and how many posts it holds",
                "responses": {"200": _ok("Health", "Readable"),
                              "503": _error("Missing, damaged, foreign or of another schema version")},
            }},
        },
        "components": {"schemas": {
            "SearchResponse": SEARCH_RESPONSE,
            "Hit": HIT,
            "Facet": FACET,
            "Post": POST,
            "Similar": {"type": "object", "required": ["id", "similar"], "additionalProperties": False,
                        "properties": {"id": {"type": "string"},
                                       "similar": {"type": "array", "items": {"$ref": "#/components/schemas/Hit"}}}},
            "Health": HEALTH,
            "Error": ERROR,
        }},
    }
