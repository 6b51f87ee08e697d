"""Every failure is translated once here: for the API (and /healthz) into one JSON shape,

    {"error": {"status": 400, "code": "bad_date", "message": "...", "param": "from"}}

and for people into an error page with the same status. Never a traceback.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from searchsvc.errors import SearchsvcError


def error_response(status: int, code: str, message: str, param: str | None = None) -> Response:
    response = jsonify({"error": {"status": status, "code": code, "message": message, "param": param}})
    response.status_code = status
    return response


_TITLES = {400: "Bad request", 404: "Not found", 405: "Method not allowed", 429: "Too many requests",
           500: "Something went wrong", 503: "The archive is unavailable"}


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def respond(status: int, code: str, message: str, param: str | None = None) -> Response:
    if wants_json():
        return error_response(status, code, message, param)
    page = render_template("error.html", status=status, title=_TITLES.get(status, "Error"), message=message)
    return Response(page, status=status, mimetype="text/html")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(SearchsvcError)
    def core_error(e: SearchsvcError) -> Response:
        response = respond(e.status, e.code, str(e), getattr(e, "param", None))
        if getattr(e, "retry_after", None) is not None:  # RateLimited, TooManyExports
            response.headers["Retry-After"] = str(e.retry_after)
        return response

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException) -> Response:
        status = e.code or 500
        code = (e.name or "error").lower().replace(" ", "_")
        message = "no such page or API route" if status == 404 else (e.description or e.name)
        response = respond(status, code, message)
        if status == 405 and e.get_response().headers.get("Allow"):
            response.headers["Allow"] = e.get_response().headers["Allow"]
        return response

    @app.errorhandler(Exception)
    def unexpected(e: Exception) -> Response:
        # Never a traceback to a client; the log has it.
        app.logger.exception("unexpected error")
        return respond(500, "internal_error", "an unexpected error occurred")
