"""The web edge: the Flask app factory, the JSON API, the HTML pages and feed, and the server."""

from searchsvc.web.app import create_app

__all__ = ["create_app"]
