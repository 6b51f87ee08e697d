"""The Flask app factory: settings, the one Engine per process, blueprints, error handlers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response

from searchsvc import settings
from searchsvc.errors import BadSetting
from searchsvc.index.store import IndexStore
from searchsvc.search.engine import Engine
from searchsvc.web.api import api
from searchsvc.web.context import attach
from searchsvc.web.errors import register_error_handlers
from searchsvc.web.exports import ExportSlots
from searchsvc.web.pages import pages
from searchsvc.web.ratelimit import install_rate_limits


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Defaults, then `SEARCHSVC_*` environment variables, then `config` (tests)."""
    app = Flask(__name__)
    app.config.from_mapping({s.name.upper(): s.default for s in (
        settings.INDEX, settings.SEARCH_TIMEOUT, settings.RATE_LIMIT, settings.EXPORT_RATE_LIMIT, settings.TRUST_PROXY,
        settings.BASE_URL, settings.MAX_EXPORTS,
    )})
    app.config.from_prefixed_env("SEARCHSVC", loads=str)
    if config:
        app.config.update(config)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    try:
        timeout = float(app.config["SEARCH_TIMEOUT"])
    except ValueError:
        given = app.config["SEARCH_TIMEOUT"]
        raise BadSetting(f"SEARCHSVC_SEARCH_TIMEOUT must be a number of seconds, got {given!r}") from None
    app.config["BASE_URL"] = _base_url(app.config["BASE_URL"])
    engine = Engine(IndexStore(app.config["INDEX"]), search_timeout=timeout or None)
    attach(app, engine, ExportSlots(_max_exports(app.config["MAX_EXPORTS"])))
    app.register_blueprint(api)
    app.register_blueprint(pages)
    register_error_handlers(app)
    install_rate_limits(app)
    app.after_request(security_headers)
    return app


def _max_exports(value: Any) -> int:
    """SEARCHSVC_MAX_EXPORTS as a whole number of 1 or more, else BadSetting."""
    text = str(value).strip()
    if not (text.isdecimal() and int(text) >= 1):
        raise BadSetting(f"SEARCHSVC_MAX_EXPORTS must be a whole number (1 or more), got {str(value)!r}")
    return int(text)


def _base_url(value: Any) -> str:
    """SEARCHSVC_BASE_URL without its trailing slash ("" when unset); BadSetting unless it is
    an absolute http(s) URL, since every feed and citation link would start with it."""
    text = str(value or "").strip()
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise BadSetting(
            f"SEARCHSVC_BASE_URL must be an absolute http(s) URL such as 'https://search.example.org/', got {text!r}"
        )
    return text.rstrip("/")


# Scripts and styles come only from our own static files: no inline script can run, so a
# post that smuggles markup past escaping still could not execute anything.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    # Searches about human-rights cases stay private: no Referer to the sources people open.
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response
