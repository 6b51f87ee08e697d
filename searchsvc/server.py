"""`searchsvc serve`: the app under gunicorn, a production WSGI server, not Flask's dev server."""

from __future__ import annotations

from typing import Any

import gunicorn.http.wsgi
from gunicorn.app.base import BaseApplication

from .web import create_app


class Server(BaseApplication):
    """gunicorn configured from our options instead of its command line."""

    def __init__(self, options: dict[str, Any], app_config: dict[str, Any]):
        self.options = options
        self.app_config = app_config
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        # Each worker builds its own app, so each has its own open index and searcher.
        return create_app(self.app_config)


def serve(index: str, host: str, port: int, workers: int, access_log: bool = False) -> None:
    """Serve the API and pages until interrupted."""
    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "worker_class": "sync",
        "timeout": 30,
        "graceful_timeout": 5,
        "accesslog": "-" if access_log else None,
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "searchsvc",
    }
    # The Server header names no software or version an attacker could look up.
    gunicorn.http.wsgi.SERVER = "searchsvc"
    create_app({"INDEX": index})  # settings errors (a bad rate limit) stop here, not in every worker
    Server(options, {"INDEX": index}).run()
