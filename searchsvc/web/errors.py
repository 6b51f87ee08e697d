"""One error shape for every failure, translated once here:

    {"error": {"status": 400, "code": "bad_date", "message": "...", "param": "from"}}
"""

from __future__ import annotations

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from ..errors import SearchsvcError


def error_response(status: int, code: str, message: str, param: str | None = None) -> Response:
    response = jsonify({"error": {"status": status, "code": code, "message": message, "param": param}})
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(SearchsvcError)
    def core_error(e: SearchsvcError) -> Response:
        return error_response(e.status, e.code, str(e), getattr(e, "param", None))

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException) -> Response:
        status = e.code or 500
        code = (e.name or "error").lower().replace(" ", "_")
        message = "no such page or API route" if status == 404 else (e.description or e.name)
        response = error_response(status, code, message)
        if status == 405 and e.get_response().headers.get("Allow"):
            response.headers["Allow"] = e.get_response().headers["Allow"]
        return response

    @app.errorhandler(Exception)
    def unexpected(e: Exception) -> Response:
        # Never a traceback to a client; the log has it.
        app.logger.exception("unexpected error")
        return error_response(500, "internal_error", "an unexpected error occurred")
