"""The web edge: the Flask app factory, the JSON API, and (later) the HTML pages."""

from searchsvc.web.app import create_app

__all__ = ["create_app"]
