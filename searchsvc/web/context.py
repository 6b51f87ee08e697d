"""What a view needs from the running app: its Engine and its export slots. The blueprints
import this module, and the app factory fills it in, so neither imports the other (the
Flask tutorial's `get_db()`)."""

from __future__ import annotations

from flask import Flask, current_app

from searchsvc.search.engine import Engine
from searchsvc.web.exports import ExportSlots

_ENGINE = "searchsvc.engine"
_EXPORTS = "searchsvc.exports"


def attach(app: Flask, engine: Engine, exports: ExportSlots) -> None:
    """Give `app` its one Engine and its bound on exports streaming at once."""
    app.extensions[_ENGINE] = engine
    app.extensions[_EXPORTS] = exports


def engine() -> Engine:
    """The Engine of the running app."""
    return current_app.extensions[_ENGINE]


def engine_of(app: Flask) -> Engine:
    """The Engine of `app`, outside a request."""
    return app.extensions[_ENGINE]


def export_slots() -> ExportSlots:
    """The running app's bound on exports streaming at once."""
    return current_app.extensions[_EXPORTS]
