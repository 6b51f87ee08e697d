"""`/metrics` in Prometheus's text format: requests, latency, search time, the index served.

Under `searchsvc serve` every gunicorn worker counts its own requests; prometheus-client's
multiprocess mode keeps each worker's values in files of one folder (PROMETHEUS_MULTIPROC_DIR,
made fresh for each server by server.py before anything imports prometheus_client), and a
scrape adds them up, whichever worker answers it. Without that folder (the Flask test client,
`flask run`) the values are this process's own.

Labels are bounded: the route's rule ("/api/posts/<post_id>", never the path a client typed),
one of the HTTP methods, the status code.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from searchsvc.errors import SearchsvcError
from searchsvc.web.context import engine, engine_of

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"}
# Request latency: a search is milliseconds, an export may stream for minutes.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUESTS = Counter("searchsvc_http_requests_total", "HTTP requests answered", ["route", "method", "status"])
LATENCY = Histogram("searchsvc_http_request_duration_seconds",
                    "Time to the response's headers (an export's stream continues after it)", ["route", "status"],
                    buckets=_BUCKETS)
SEARCH_TIME = Histogram("searchsvc_search_duration_seconds", "Time one search took in the engine (cache hits included)",
                        buckets=_BUCKETS)
CHECK_FAILURES = Counter("searchsvc_index_check_failures_total",
                         "Times the index was found missing, damaged or of another schema version")
POSTS = Gauge("searchsvc_index_posts", "Posts in the index served", multiprocess_mode="mostrecent")
GENERATION = Gauge("searchsvc_index_generation", "Number of the generation folder served (g000003 is 3)",
                   multiprocess_mode="mostrecent")
COMMITTED = Gauge("searchsvc_index_commit_timestamp_seconds", "When the commit served was made (Unix time)",
                  multiprocess_mode="mostrecent")
COMMIT_AGE = Gauge("searchsvc_index_commit_age_seconds", "Seconds since the commit served was made",
                   multiprocess_mode="mostrecent")
UP = Gauge("searchsvc_index_up", "1 when the index can be read, 0 when searches answer 503",
           multiprocess_mode="mostrecent")

metrics = Blueprint("metrics", __name__)


def install_metrics(app: Flask) -> None:
    app.register_blueprint(metrics)
    app.before_request(_started)
    app.after_request(_counted)
    engine_of(app).on_failure = lambda failure: CHECK_FAILURES.inc()


def _started() -> None:
    g.metrics_started = time.perf_counter()


def _counted(response: Response) -> Response:
    rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
    method = request.method if request.method in _METHODS else "other"
    REQUESTS.labels(rule, method, str(response.status_code)).inc()
    started = g.get("metrics_started")
    if started is not None:
        LATENCY.labels(rule, str(response.status_code)).observe(time.perf_counter() - started)
    return response


def observe_search(seconds: float) -> None:
    SEARCH_TIME.observe(seconds)


@metrics.get("/metrics")
def metrics_page() -> Response:
    _observe_index()
    if os.environ.get(MULTIPROC_DIR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest()
    return Response(body, content_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


def _observe_index() -> None:
    """The index gauges, as this worker's engine last looked at the index: now, unless a search
    holds the engine (then as that search's look found it: Engine.health)."""
    try:
        opened = engine().health()  # as /healthz: a scrape never waits for a search
        POSTS.set(opened.posts)
        GENERATION.set(int(opened.generation[1:]))
        committed = opened.committed
    except SearchsvcError:
        UP.set(0)
        return
    UP.set(1)
    if committed is not None:
        moment = datetime.strptime(committed, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
        COMMITTED.set(moment)
        COMMIT_AGE.set(max(0.0, time.time() - moment))
