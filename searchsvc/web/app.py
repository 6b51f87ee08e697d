"""The Flask app factory: settings, the one Engine per process, blueprints, error handlers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, Response

from searchsvc import settings
from searchsvc.index.store import IndexStore
from searchsvc.search.engine import Engine
from searchsvc.web.api import api
from searchsvc.web.context import attach
from searchsvc.web.errors import register_error_handlers
from searchsvc.web.exports import ExportSlots
from searchsvc.web.metrics import install_metrics
from searchsvc.web.pages import pages
from searchsvc.web.ratelimit import install_rate_limits


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Defaults, then `SEARCHSVC_*` environment variables, then `config` (tests); each setting
    is then read into its value (settings.py), or BadSetting says what is wrong."""
    app = Flask(__name__)
    app.config.from_mapping({s.key: s.default for s in settings.of("app")})
    app.config.from_prefixed_env("SEARCHSVC", loads=str)
    if config:
        app.config.update(config)
    for setting in settings.of("app"):
        app.config[setting.key] = setting.value(app.config[setting.key])
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    engine = Engine(IndexStore(app.config["INDEX"]), search_timeout=app.config["SEARCH_TIMEOUT"],
                    verify_every=app.config["VERIFY_EVERY"])
    attach(app, engine, ExportSlots(app.config["MAX_EXPORTS"]))
    app.register_blueprint(api)
    app.register_blueprint(pages)
    register_error_handlers(app)
    install_rate_limits(app)
    install_metrics(app)
    app.after_request(security_headers)
    return app


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
