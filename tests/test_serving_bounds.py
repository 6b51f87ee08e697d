"""`searchsvc serve` against clients that pipeline requests and never read the answers, the
word caches' bound in bytes, and line separators in the JSON access log."""

from __future__ import annotations

import gc
import json
import socket
import time
import tracemalloc
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from conftest import Searchsvc, running_server

from searchsvc.index.analysis import WORD_CACHE_BYTES, fold, text_analyzer, turkish_stem

BIG_ID = "big-placeholder"
BIG_PARAGRAPH = "Dana Placeholder wrote this synthetic paragraph about nothing in particular. " * 20


@pytest.fixture(scope="module")
def big_index(tmp_path_factory) -> Path:
    """A 1.5 MB synthetic post by a fictional author, plus a small one to search for."""
    root = tmp_path_factory.mktemp("big")
    body = "\n\n".join([BIG_PARAGRAPH] * 1000)  # about 1.5 MB: a page too large for the socket buffers
    posts = [
        {"id": BIG_ID, "title": "A very long placeholder", "date": "2020-01-01", "author": "Dana Placeholder",
         "body": body},
        {"id": "small-placeholder", "title": "Quokka census", "date": "2020-02-01", "author": "Dana Placeholder",
         "body": "A short synthetic note: the quokka census counted seven."},
    ]
    source = root / "posts.jsonl"
    source.write_text("".join(json.dumps(p) + "\n" for p in posts), encoding="utf-8")
    result = Searchsvc(root / "index")("ingest", source)
    assert result.exit_code == 0, result.output
    return root / "index"


def get_json(base: str, path: str) -> tuple[float, dict]:
    """The JSON answer and how long it took; the socket's timeout bounds the wait."""
    started = time.monotonic()
    with urllib.request.urlopen(base + path, timeout=5) as response:
        assert response.status == 200
        return time.monotonic() - started, json.loads(response.read())


def pipeline_without_reading(port: int, connections: int, requests: int, path: str) -> list[socket.socket]:
    """`connections` sockets, each sending `requests` pipelined GETs of `path` and reading nothing."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    sockets = []
    for _ in range(connections):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(request * requests)
        sockets.append(sock)
    return sockets


@pytest.mark.slow
def test_pipelined_requests_never_read_do_not_hold_the_threads(big_index, tmp_path):
    """24 connections x 10 pipelined GETs of a 1.5 MB post page, never read, against the default
    workers and threads: for 10 s, /healthz and a search from a fresh client each answer (and
    correctly), every time, within the probe's 5 s socket timeout."""
    latencies: dict[str, list[float]] = {"/healthz": [], "/api/search?q=quokka": []}
    with running_server(big_index, tmp_path / "server.log") as base:
        attackers = pipeline_without_reading(urlsplit(base).port, 24, 10, f"/posts/{BIG_ID}")
        try:
            time.sleep(1)  # the first answers are being written
            end = time.monotonic() + 10
            while time.monotonic() < end:
                waited, health = get_json(base, "/healthz")
                assert health["status"] == "ok"
                latencies["/healthz"].append(waited)
                waited, found = get_json(base, "/api/search?q=quokka")
                assert [hit["id"] for hit in found["hits"]] == ["small-placeholder"]
                latencies["/api/search?q=quokka"].append(waited)
                time.sleep(0.5)
        finally:
            for sock in attackers:
                sock.close()
    print({path: [round(w, 3) for w in found] for path, found in latencies.items()})


def read_responses(sock: socket.socket, count: int) -> list[tuple[bytes, bytes]]:
    """(head, body) of `count` responses with Content-Length, read in order from `sock`."""
    stream = sock.makefile("rb")
    answers = []
    for _ in range(count):
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            line = stream.readline()
            assert line, f"the connection ended after {len(answers)} responses"
            head += line
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        answers.append((head, stream.read(length)))
    return answers


def test_a_pipelining_client_that_reads_gets_every_response_whole(big_index, tmp_path):
    """Three pipelined GETs of the 1.5 MB page and a /healthz, on one thread, read slowly after
    a pause: four answers, in order, each whole (the page three times the same)."""
    env = {"SEARCHSVC_THREADS": "1"}
    with running_server(big_index, tmp_path / "server.log", workers=1, env=env) as base:
        with socket.create_connection(("127.0.0.1", urlsplit(base).port), timeout=10) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
            page = f"GET /posts/{BIG_ID} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
            sock.sendall(page * 3 + b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            time.sleep(1)  # the first page is held for this client; the thread is free
            waited, health = get_json(base, "/healthz")
            assert health["status"] == "ok"
            answers = read_responses(sock, 4)
    assert [head.split(b"\r\n")[0] for head, _ in answers] == [b"HTTP/1.1 200 OK"] * 4
    pages = [body for _, body in answers[:3]]
    assert pages[0] == pages[1] == pages[2] and len(pages[0]) > 1_500_000
    assert pages[0].rstrip().endswith(b"</html>") and pages[0].count(b"Dana Placeholder wrote") >= 20_000
    assert json.loads(answers[3][1])["status"] == "ok"


def test_a_pipelining_client_that_never_reads_is_cut_off(big_index, tmp_path):
    """SEARCHSVC_SEND_TIMEOUT=2, one worker with one thread: ten pipelined GETs of the page,
    never read. The page is written once (not ten times), searches answer meanwhile, and after
    the send timeout the connection is reset: the client gets less than two pages, then an error."""
    log = tmp_path / "server.log"
    env = {"SEARCHSVC_THREADS": "1", "SEARCHSVC_SEND_TIMEOUT": "2"}
    with running_server(big_index, log, workers=1, env=env, args=("--access-log",)) as base:
        (sock,) = pipeline_without_reading(urlsplit(base).port, 1, 10, f"/posts/{BIG_ID}")
        with sock:
            for _ in range(4):
                _, found = get_json(base, "/api/search?q=quokka")
                assert found["total"] == 1
                time.sleep(0.5)
            time.sleep(2)  # past the send timeout
            received = 0
            with pytest.raises(ConnectionResetError):
                while chunk := sock.recv(1 << 20):
                    received += len(chunk)
            assert 0 < received < 2 * 1_500_000
    text = log.read_text()
    assert text.count(f'"path": "/posts/{BIG_ID}"') == 1
    assert f"/posts/{BIG_ID}: the previous response unread for 2 s; connection reset" in text


def test_line_separators_are_escaped_in_the_access_log(big_index, tmp_path):
    """A path with U+2028, U+2029 and U+0085 (percent-encoded, as clients send them) is one
    access-log line whose JSON gives the path back; the raw line has none of those characters."""
    log = tmp_path / "server.log"
    path = "/posts/a\u2028b\u2029c\x85d"
    with running_server(big_index, log, workers=1, args=("--access-log",)) as base:
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(base + quote(path), timeout=5)
        assert missing.value.code == 404
        missing.value.close()
    raw = log.read_bytes()
    for separator in ("\u2028", "\u2029", "\x85"):
        assert separator.encode() not in raw
    lines = [line for line in raw.decode().split("\n") if line.startswith('{"time"')]
    assert [json.loads(line)["path"] for line in lines if "/posts/a" in line] == [path]
    assert len(raw.decode().splitlines()) == len(raw.decode().split("\n")) - raw.decode().endswith("\n")


def test_the_word_caches_are_bounded_in_bytes():
    """12,000 distinct 900-letter query words through the English and Turkish analysis (as each
    query word goes, for `text` and `text_tr`): each of the three word caches stays within
    WORD_CACHE_BYTES by its own count, and the memory kept after them within the three bounds
    (by tracemalloc: 17 MB; bounded by entries it was 68 MB). Short words are still answered
    from the caches, and rightly."""
    words = [f"{n:06d}{'placeholder' * 81}"[:900] for n in range(12_000)]
    english, turkish = text_analyzer("en"), text_analyzer("tr")
    caches = (fold, turkish_stem, english.items[2]._stem)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for word in words:
            assert len(list(english(word))) == len(list(turkish(word))) == 1
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert all(0 < cache.nbytes <= WORD_CACHE_BYTES for cache in caches), [c.nbytes for c in caches]
    assert kept <= 3 * WORD_CACHE_BYTES + 2_000_000, kept
    assert [t.text for t in english("Running placeholders")] == ["run", "placehold"]
    assert fold("İstanbul") == "istanbul" and "istanbul" in {fold(w) for w in ["İstanbul"] * 2}


def test_one_client_holding_every_connection_idle_keeps_no_one_out(big_index, tmp_path):
    """The second review round: 1,100 idle sockets against one worker (gunicorn stops accepting
    at 1,000) made /healthz time out, and reopened every header timeout they kept everyone out.
    The oldest idle connection is now closed for each new one past the limit."""
    with running_server(big_index, tmp_path / "server.log", workers=1) as base:
        port = urlsplit(base).port
        idle = []
        try:
            for _ in range(1100):
                idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            time.sleep(0.5)  # the worker has taken every one of them from the listen queue
            for _ in range(5):
                _, health = get_json(base, "/healthz")  # the socket's 5 s timeout bounds each
                assert health["status"] == "ok"
                _, found = get_json(base, "/api/search?q=quokka")
                assert [hit["id"] for hit in found["hits"]] == ["small-placeholder"]
            closed = 0
            for sock in idle[:200]:  # the oldest were closed by the server
                sock.settimeout(2)
                try:
                    closed += sock.recv(1) == b""
                except OSError:
                    closed += 1
            assert closed >= 100
        finally:
            for sock in idle:
                sock.close()
