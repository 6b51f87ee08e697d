"""The Flask app factory: settings, the one Engine per process, blueprints, error handlers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app

from .. import settings
from ..engine import Engine
from ..store import IndexStore
from .errors import register_error_handlers


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Defaults, then `SEARCHSVC_*` environment variables, then `config` (tests)."""
    app = Flask(__name__)
    app.config.from_mapping(INDEX=settings.INDEX.default)
    app.config.from_prefixed_env("SEARCHSVC", loads=str)
    if config:
        app.config.update(config)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["searchsvc.engine"] = Engine(IndexStore(app.config["INDEX"]))

    from .api import api

    app.register_blueprint(api)
    register_error_handlers(app)
    return app


def engine() -> Engine:
    """The Engine of the running app."""
    return current_app.extensions["searchsvc.engine"]
