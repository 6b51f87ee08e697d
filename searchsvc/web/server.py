"""`searchsvc serve`: the app under gunicorn, a production WSGI server, not Flask's dev server.

Worker processes, each with a pool of threads sharing one Engine (one open index); the
request heads are read by each process's event loop (worker.py), so slow clients cost a
socket, not a thread.
"""

from __future__ import annotations

import math
import os
from typing import Any

import gunicorn.http.wsgi
from gunicorn.app.base import BaseApplication

from searchsvc import settings
from searchsvc.web import create_app
from searchsvc.web.accesslog import JsonAccessLog
from searchsvc.web.metrics import MULTIPROC_DIR
from searchsvc.web.worker import HeadReadingWorker, WholeResponse


def _child_exit(server: Any, worker: Any) -> None:
    """A worker that stopped: its live gauges leave /metrics (its counts stay, as Prometheus expects)."""
    if os.environ.get(MULTIPROC_DIR):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


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


def serve(index: str, host: str, port: int, workers: int, threads: int, access_log: bool = False,
          control_socket: str | None = None, access_log_client: str = "omit") -> None:
    """Serve the API and pages until interrupted.

    Raises BadSetting for a SEARCHSVC_* setting that cannot be read.
    """
    seconds = {setting.name: setting.from_environ() for setting in settings.of("server")}
    # Settings errors (a bad rate limit) stop here, not in every worker.
    trust_proxy = create_app({"INDEX": index}).config["TRUST_PROXY"]
    worker = HeadReadingWorker.with_timeouts(header_timeout=seconds["header_timeout"],
                                             send_timeout=seconds["send_timeout"])
    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "worker_class": worker,
        "threads": threads,
        "keepalive": math.ceil(seconds["keepalive"]),  # gunicorn takes whole seconds
        # The arbiter restarts a worker whose event loop misses 30 s of heartbeats; the loop
        # never waits on a client, so a long export in a thread is never cut by it.
        "timeout": 30,
        # Static files are written like any response (worker.py: a thread never waits for a client
        # that does not read); sendfile() would wait in the thread.
        "sendfile": False,
        "graceful_timeout": 5,
        "accesslog": "-" if access_log else None,
        "logger_class": JsonAccessLog.configured(client=access_log_client, trust_proxy=trust_proxy),
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "searchsvc",
        # gunicorn 25+ binds a control socket at one path per user ($XDG_RUNTIME_DIR/gunicorn.ctl or
        # ~/.gunicorn/gunicorn.ctl): a second server on the host silently takes it over, and the
        # first to stop deletes it under the other. Off unless given a path of this server's own.
        "control_socket_disable": control_socket is None,
        "child_exit": _child_exit,
    }
    if control_socket is not None:
        options["control_socket"] = os.path.abspath(control_socket)
    # The Server header names no software or version an attacker could look up.
    gunicorn.http.wsgi.SERVER = "searchsvc"
    gunicorn.http.wsgi.Response = WholeResponse  # what gunicorn.http.wsgi.create() makes for each request
    Server(options, {"INDEX": index}).run()
