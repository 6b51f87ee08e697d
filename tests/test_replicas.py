"""Replicas on one host and behind a load balancer."""

from __future__ import annotations

import gzip
import http.client
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from email.message import Message
from pathlib import Path

import pytest
from conftest import PRESIDENTIAL, SAMPLE_POSTS, run_cli, running_server

from searchsvc.index.store import IndexStore
from searchsvc.search.engine import Engine
from searchsvc.search.request import SearchRequest
from searchsvc.search.run import search

GUNICORNC = Path(sys.executable).parent / "gunicornc"


def _master_pid(socket_path: Path) -> int:
    done = subprocess.run([str(GUNICORNC), "-s", str(socket_path), "-c", "show stats", "-j"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["pid"]


def _appears(path: Path, limit: float = 10) -> bool:
    deadline = time.monotonic() + limit
    while not path.is_socket() and time.monotonic() < deadline:
        time.sleep(0.05)
    return path.is_socket()


def test_servers_on_one_host_never_share_a_control_socket(tmp_path):
    index = tmp_path / "index"
    assert run_cli("ingest", "--index", str(index), str(SAMPLE_POSTS / "posts")).returncode == 0
    home, runtime = tmp_path / "home", tmp_path / "run"
    home.mkdir()
    runtime.mkdir()
    env = {"HOME": str(home), "XDG_RUNTIME_DIR": str(runtime)}
    # By default none: gunicorn's own default is one path per user, which the second server took
    # over silently and the first to stop deleted under the other.
    with running_server(index, tmp_path / "a.log", env=env), running_server(index, tmp_path / "b.log", env=env):
        assert list(home.rglob("*.ctl")) == [] and list(runtime.iterdir()) == []
    # Given a path each, each server answers on its own, and stopping one leaves the other's.
    a, b = tmp_path / "a.ctl", tmp_path / "b.ctl"
    with ExitStack() as both:
        both.enter_context(running_server(index, tmp_path / "a2.log", env=env, args=("--control-socket", str(a))))
        with running_server(index, tmp_path / "b2.log", env=env, args=("--control-socket", str(b))):
            assert _appears(a) and _appears(b)  # bound by the master once its workers are up
            assert _master_pid(a) != _master_pid(b)
        assert not b.exists() and a.is_socket()
        _master_pid(a)


# Two replicas behind HAProxy (deploy/haproxy.cfg itself), a writer publishing to them, and a
# load from a process of its own.

ROOT = Path(__file__).parent.parent
LOAD = Path(__file__).parent / "loadclient.py"
QUERIES = ["uyghur", "kadeer", "china", "rights", "synthetic", "archive OR uyghur", "camps", "east turkestan"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 10) -> tuple[int, Message, dict]:
    """Status, headers (found whatever their case: HAProxy sends them in lower case) and JSON body."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.headers, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read() or b"null")


def _get_from(source: str, url: str) -> tuple[int, Message, dict]:
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10, source_address=(source, 0))
    try:
        connection.request("GET", f"{parts.path}?{parts.query}")
        response = connection.getresponse()
        return response.status, response.headers, json.loads(response.read() or b"null")
    finally:
        connection.close()


def _wait_until(check, limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, ValueError):  # not up yet, or a body that is not (yet) JSON
            pass
        time.sleep(0.1)
    raise AssertionError(f"not within {limit} s: {what}")


class Replica:
    """`searchsvc serve` on a fixed port, in a process group of its own (killed whole)."""

    def __init__(self, index: Path, port: int, log: Path):
        self.index, self.port, self.log = index, port, log
        self.process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, "SEARCHSVC_INDEX": str(self.index), "SEARCHSVC_TRUST_PROXY": "1"}
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "searchsvc", "serve", "--port", str(self.port), "--workers", "1"],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        _wait_until(lambda: _get(self.base + "/healthz")[0] == 200, 30, f"replica on {self.port} answers")

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)  # the master and its workers at once
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def commit(self) -> str | None:
        status, _, body = _get(self.base + "/healthz")
        return body["commit"] if status == 200 else None


@contextmanager
def _balancer(tmp_path: Path, replicas: list[Replica], rate_10s: int) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "SEARCHSVC_LISTEN": f"127.0.0.1:{port}", "SEARCHSVC_RATE_10S": str(rate_10s),
           "SEARCHSVC_REPLICA1": f"127.0.0.1:{replicas[0].port}", "SEARCHSVC_REPLICA2": f"127.0.0.1:{replicas[1].port}"}
    with open(tmp_path / "haproxy.log", "a") as log:
        proxy = subprocess.Popen(["haproxy", "-db", "-f", str(ROOT / "deploy" / "haproxy.cfg")], env=env,
                                 stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        # Both replicas in rotation: round robin, so four answers carry both servers' cookies.
        def both_up() -> bool:
            cookies = {_get(base + "/healthz")[1].get("Set-Cookie", "").split(";")[0] for _ in range(4)}
            return cookies == {"searchsvc_replica=r1", "searchsvc_replica=r2"}
        _wait_until(both_up, 30, "HAProxy sends to both replicas")
        yield base
    finally:
        proxy.terminate()
        proxy.wait(timeout=20)


@pytest.fixture
def replica_set(tmp_path):
    writer = tmp_path / "writer"
    assert run_cli("ingest", "--index", str(writer), str(SAMPLE_POSTS / "posts")).returncode == 0
    replicas = []
    for n in (1, 2):
        index = tmp_path / f"replica{n}"
        assert run_cli("publish", "--index", str(writer), str(index)).returncode == 0
        replicas.append(Replica(index, _free_port(), tmp_path / f"replica{n}.log"))
    try:
        for replica in replicas:
            replica.start()
        yield writer, replicas
    finally:
        for replica in replicas:
            replica.stop()


def _load(base: str, seconds: float, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(LOAD), base, str(seconds), "4", str(out), *QUERIES])


def _results(out: Path) -> list[dict]:
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.mark.slow  # about 30 s
def test_a_replica_killed_under_load_costs_no_request(replica_set, tmp_path):
    writer, replicas = replica_set
    with _balancer(tmp_path, replicas, rate_10s=1_000_000) as base:
        out = tmp_path / "load.jsonl"
        load = _load(base, 14, out)
        time.sleep(3)
        replicas[0].kill()
        time.sleep(4)
        replicas[0].start()
        assert load.wait(timeout=90) == 0
        results = _results(out)
        failed = [r for r in results if r.get("status") != 200]
        assert failed == [] and len(results) > 200, (len(results), failed[:5])
        # The restarted replica is back in rotation: the balancer's checks reach it.
        after = urllib.request.urlopen(replicas[0].base + "/metrics", timeout=10).read().decode()
        assert 'route="/healthz",status="200"' in after


@pytest.mark.slow  # about 30 s
def test_a_publish_under_load_switches_both_replicas_and_mixes_no_commits(replica_set, tmp_path):
    writer, replicas = replica_set
    old = _commit_of(writer)
    expected = {old: _totals(writer)}
    # Enough new posts that copying the new commit takes a while: the publish below is stopped
    # in the middle of it.
    more = tmp_path / "more.jsonl"
    with gzip.open(PRESIDENTIAL, "rt", encoding="utf-8") as f:
        more.write_text("".join(itertools.islice(f, 3000)), encoding="utf-8")
    # Committed on the writer before the load starts; the replicas get it while it runs.
    assert run_cli("ingest", "--index", str(writer), str(more)).returncode == 0
    new = _commit_of(writer)
    expected[new] = _totals(writer)
    assert expected[new] != expected[old]
    with _balancer(tmp_path, replicas, rate_10s=1_000_000) as base:
        out = tmp_path / "load.jsonl"
        load = _load(base, 16, out)
        time.sleep(2)
        # A publish stopped mid-copy, then killed: the replica serves its old commit throughout.
        killed = subprocess.Popen([sys.executable, "-m", "searchsvc", "publish", "--copy", "--index", str(writer),
                                   str(replicas[0].index)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_until(lambda: any(replicas[0].index.glob(".g*.partial")), 30, "the publish is copying")
        killed.send_signal(signal.SIGSTOP)
        assert any(replicas[0].index.glob(".g*.partial")) and replicas[0].commit() == old
        killed.kill()
        killed.wait()
        assert replicas[0].commit() == old
        done = run_cli("publish", "--index", str(writer), str(replicas[0].index), str(replicas[1].index))
        assert done.returncode == 0, done.stderr
        _wait_until(lambda: all(r.commit() == new for r in replicas), 5, "both replicas serve the new commit")
        switched = time.time()
        assert load.wait(timeout=90) == 0
    results = _results(out)
    assert [r for r in results if r.get("status") != 200] == []
    # Each answer is whole from one commit: its total is that commit's total for its query.
    mixed = [r for r in results if expected[r["commit"]][r["q"]] != r["total"]]
    assert mixed == []
    assert {r["commit"] for r in results} == {old, new}
    # Once both replicas said they served the new commit, no request sent got the old one.
    assert [r for r in results if r["t"] > switched and r["commit"] == old] == []
    assert any(r["t"] > switched for r in results)


def _commit_of(index: Path) -> str:
    return IndexStore(index).commit_key()[1]


def _totals(index: Path) -> dict[str, int]:
    """Each load query's total on the index as it is now, counted in this process."""
    engine = Engine(IndexStore(index))
    try:
        return {q: search(engine, SearchRequest(q=q)).total for q in QUERIES}
    finally:
        engine.close()


def test_the_balancers_rate_limit_is_one_for_all_replicas(replica_set, tmp_path):
    writer, replicas = replica_set
    with _balancer(tmp_path, replicas, rate_10s=20) as base:
        # From an address of its own (the start's probes came from 127.0.0.1).
        answers = [_get_from("127.0.0.2", f"{base}/api/search?q=uyghur") for _ in range(30)]
    statuses = [status for status, _, _ in answers]
    assert statuses == [200] * 20 + [429] * 10
    served_by = {headers.get("Set-Cookie", "").split(";")[0] for status, headers, _ in answers if status == 200}
    assert served_by == {"searchsvc_replica=r1", "searchsvc_replica=r2"}
    status, headers, body = answers[-1]
    assert body == {"error": {"status": 429, "code": "rate_limited", "message": "too many requests from this "
                              "address: at most 20 per 10 seconds; retry in 10 s", "param": None}}
    assert (headers["Retry-After"], headers["Cache-Control"]) == ("10", "no-store")
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_the_balancer_keeps_metrics_private_and_answers_json_when_no_replica_can(replica_set, tmp_path):
    writer, replicas = replica_set
    with _balancer(tmp_path, replicas, rate_10s=1_000_000) as base:
        # However the path is spelled, as long as the replicas' router would find /metrics.
        for path in ("/metrics", "//metrics", "/%6detrics", "/%2fmetrics", "/metrics/"):
            status, _, body = _get(base + path)
            assert (status, body["error"]["code"]) == (404, "not_found"), path
        assert urllib.request.urlopen(replicas[0].base + "/metrics", timeout=10).status == 200  # scraped directly
        for replica in replicas:
            replica.kill()
        _wait_until(lambda: _get(base + "/api/search?q=uyghur")[0] == 503, 15, "the balancer answers 503")
        status, headers, body = _get(base + "/api/search?q=uyghur")
    assert body == {"error": {"status": 503, "code": "no_replica",
                              "message": "no replica can answer now; retry in a few seconds", "param": None}}
    assert (headers["Content-Type"], headers["Retry-After"]) == ("application/json", "5")
    assert headers["Access-Control-Allow-Origin"] == "*" and headers["X-Content-Type-Options"] == "nosniff"
