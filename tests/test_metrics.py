"""/metrics: Prometheus's text format, the same totals whichever gunicorn worker answers."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from pathlib import Path

from conftest import SAMPLE_POSTS, run_cli, running_server


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _samples(text: str) -> dict[str, float]:
    """`name{labels}` -> value, for our own metrics."""
    found = {}
    for line in text.splitlines():
        if line.startswith("searchsvc_"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def test_metrics_add_up_every_workers_requests(tmp_path):
    index = tmp_path / "index"
    assert run_cli("ingest", "--index", str(index), str(SAMPLE_POSTS / "posts")).returncode == 0
    temp = tmp_path / "tmp"
    temp.mkdir()
    with running_server(index, tmp_path / "server.log", workers=2, env={"TMPDIR": str(temp)}) as base:
        for n in range(30):
            assert _get(f"{base}/api/search?q=uyghur&page={n % 3 + 1}")[0] == 200
        for path in ("/no/such/page", "/api/posts/no-such-post", "/api/search?q=%22"):
            _get(base + path)
        status, text = _get(base + "/metrics")
        assert status == 200
        samples = _samples(text)
        # Two workers answered these; the scrape, from either, counts all of them.
        assert samples['searchsvc_http_requests_total{method="GET",route="/api/search",status="200"}'] == 30
        assert samples['searchsvc_http_requests_total{method="GET",route="/api/search",status="400"}'] == 1
        assert samples['searchsvc_http_requests_total{method="GET",route="/api/posts/<post_id>",status="404"}'] == 1
        assert samples['searchsvc_http_requests_total{method="GET",route="unmatched",status="404"}'] == 1
        assert samples['searchsvc_http_request_duration_seconds_count{route="/api/search",status="200"}'] == 30
        assert samples['searchsvc_http_request_duration_seconds_count{route="/api/search",status="400"}'] == 1
        assert samples["searchsvc_search_duration_seconds_count"] == 30
        health = json.loads(_get(base + "/healthz")[1])
        assert (samples["searchsvc_index_posts"], samples["searchsvc_index_generation"]) == (health["posts"], 1)
        assert samples["searchsvc_index_up"] == 1 and samples["searchsvc_index_check_failures_total"] == 0
        assert 0 <= samples["searchsvc_index_commit_age_seconds"] < 3600
        # The path a client typed never becomes a label.
        assert "no-such-post" not in text and "/no/such/page" not in text
        # The healthz probes of running_server are counted like any request.
        assert samples['searchsvc_http_requests_total{method="GET",route="/healthz",status="200"}'] >= 1
        [folder] = list(temp.glob("searchsvc-metrics-*"))
        assert any(folder.glob("counter_*.db"))
    assert list(temp.glob("searchsvc-metrics-*")) == []  # removed with the server


def test_a_damaged_index_shows_in_metrics(tmp_path):
    index = tmp_path / "index"
    assert run_cli("ingest", "--index", str(index), str(SAMPLE_POSTS / "posts")).returncode == 0
    with running_server(index, tmp_path / "server.log", workers=1) as base:
        [segment] = index.glob("g*/*.seg")
        segment.write_bytes(segment.read_bytes()[:1000])
        assert _get(base + "/api/search?q=uyghur")[0] == 503
        samples = _samples(_get(base + "/metrics")[1])
        assert samples["searchsvc_index_up"] == 0
        assert samples["searchsvc_index_check_failures_total"] == 1
        assert samples['searchsvc_http_requests_total{method="GET",route="/api/search",status="503"}'] == 1
        # Repaired by a rebuild: up again, and the failure stays counted.
        assert run_cli("ingest", "--rebuild", "--index", str(index), str(SAMPLE_POSTS / "posts")).returncode == 0
        assert _get(base + "/api/search?q=uyghur")[0] == 200
        samples = _samples(_get(base + "/metrics")[1])
        assert (samples["searchsvc_index_up"], samples["searchsvc_index_check_failures_total"]) == (1, 1)
        assert samples["searchsvc_index_generation"] == 2


def _access_lines(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def test_access_log_is_json_lines_without_the_client_by_default(tmp_path):
    index = tmp_path / "index"
    assert run_cli("ingest", "--index", str(index), str(SAMPLE_POSTS / "posts")).returncode == 0
    log = tmp_path / "server.log"
    with running_server(index, log, workers=1, args=("--access-log",)) as base:
        request = urllib.request.Request(base + "/api/search?q=%C3%BCr%C3%BCmqi+OR+uyghur",
                                         headers={"X-Forwarded-For": "203.0.113.7"})
        urllib.request.urlopen(request, timeout=30).read()
        # A malformed request (a space in its target), and a path in UTF-8.
        with socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), timeout=10) as raw:
            raw.sendall(b"GET /api/search?q=a b c HTTP/1.1\r\nHost: x\r\n\r\n")
            raw.recv(1000)
        _get(base + "/api/posts/%C3%BCr%C3%BCmqi")
    [line] = [e for e in _access_lines(log) if e["path"] == "/api/search"]
    assert [e["status"] for e in _access_lines(log) if e["path"] == "/api/posts/ürümqi"] == [404]
    text = log.read_text()
    assert "Invalid request: " in text and "ip=" not in text  # gunicorn's own warning, without the client
    assert set(line) == {"time", "method", "path", "query", "status", "bytes", "ms"}
    assert (line["method"], line["query"], line["status"]) == ("GET", "q=%C3%BCr%C3%BCmqi+OR+uyghur", 200)
    assert line["bytes"] > 0 and line["ms"] >= 0 and line["time"].endswith("Z")
    assert "203.0.113" not in log.read_text()


def test_access_log_can_keep_the_clients_network(tmp_path):
    index = tmp_path / "index"
    assert run_cli("ingest", "--index", str(index), str(SAMPLE_POSTS / "posts")).returncode == 0
    log = tmp_path / "server.log"
    with running_server(index, log, workers=1, env={"SEARCHSVC_TRUST_PROXY": "1"},
                        args=("--access-log", "--access-log-client", "truncated")) as base:
        for forwarded in ("198.51.100.1, 203.0.113.7", "2001:db8:1:2::1"):
            request = urllib.request.Request(base + "/api/search?q=x", headers={"X-Forwarded-For": forwarded})
            urllib.request.urlopen(request, timeout=30).read()
    clients = [e["client"] for e in _access_lines(log) if e["path"] == "/api/search"]
    assert clients == ["203.0.113.0/24", "2001:db8:1::/48"]
    assert "203.0.113.7" not in log.read_text()
