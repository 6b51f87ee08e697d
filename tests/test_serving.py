"""`searchsvc serve` against slow and stalled clients, on loopback: slowloris sockets and
request bodies sent slowly (or never) do not starve the workers, a slow reader gets a whole
export, searches answer while it streams, exports past SEARCHSVC_MAX_EXPORTS are refused at
once, a client that stops reading is cut off visibly, and threads share one Engine safely."""

from __future__ import annotations

import http.client
import json
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from conftest import Searchsvc, assert_error, running_server

from searchsvc.index.store import IndexStore
from searchsvc.search.engine import Engine
from searchsvc.search.request import request_from_params
from searchsvc.search.run import EXPORT_BATCH, iter_matches, search

HEADER_TIMEOUT = 10  # seconds: the default of SEARCHSVC_HEADER_TIMEOUT


def timed_get(base: str, path: str) -> tuple[int, float, bytes]:
    started = time.monotonic()
    with urllib.request.urlopen(base + path, timeout=30) as response:
        return response.status, time.monotonic() - started, response.read()


def slow_connection(base: str, receive_buffer: int = 16 * 1024) -> http.client.HTTPConnection:
    """A connection with a small receive buffer, so the server's writes wait on our reads."""
    url = urlsplit(base)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect((url.hostname, url.port))
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    connection.sock = sock
    return connection


def read_at(response: http.client.HTTPResponse, rate: float, stop: threading.Event | None = None) -> bytes:
    """The whole body, read at about `rate` bytes a second (until `stop` is set)."""
    body = bytearray()
    started = time.monotonic()
    while not (stop and stop.is_set()):
        chunk = response.read1(16 * 1024)
        if not chunk:
            break
        body += chunk
        ahead = len(body) / rate - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)
    return bytes(body)


def presidential_index(presidential) -> Path:
    searchsvc, ingest = presidential
    assert ingest.exit_code == 0, ingest.output
    return searchsvc.index


@pytest.mark.slow
def test_slowloris_sockets_do_not_starve_the_workers(search_index, tmp_path):
    """40 sockets trickling a request head (one header line every 2 s, reconnecting when
    closed) for 25 s: /healthz and a search, every second, each answer 200 within 2 s; the
    server answers each trickled head with 408 after the header timeout and closes it."""
    attackers = 40
    run_for = 25.0
    probes: list[tuple[str, int, float]] = []
    closed: list[tuple[float, float, bytes]] = []  # (opened, closed, what the server sent)
    with running_server(search_index, tmp_path / "server.log") as base:
        port = urlsplit(base).port
        selector = selectors.DefaultSelector()
        end = time.monotonic() + run_for

        def connect() -> None:
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            selector.register(sock, selectors.EVENT_READ, time.monotonic())

        def trickle() -> None:
            for _ in range(attackers):
                connect()
            line = 0
            while time.monotonic() < end:
                for key, _ in selector.select(timeout=2.0):  # the server answered (408) or closed
                    try:
                        sent = key.fileobj.recv(200)
                    except OSError as e:
                        sent = repr(e).encode()
                    closed.append((key.data, time.monotonic(), sent))
                    selector.unregister(key.fileobj)
                    key.fileobj.close()
                    connect()
                line += 1
                for key in list(selector.get_map().values()):
                    try:
                        key.fileobj.sendall(b"X-Trickle-%d: 1\r\n" % line)
                    except OSError:
                        pass  # closed by the server: select reports it next round

        attack = threading.Thread(target=trickle)
        attack.start()
        time.sleep(1)  # every attacking socket is open
        while time.monotonic() < end - 1:
            for path in ("/healthz", "/api/search?q=uyghur"):
                status, waited, _ = timed_get(base, path)
                probes.append((path, status, waited))
            time.sleep(1)
        attack.join()
        for key in list(selector.get_map().values()):
            key.fileobj.close()

    assert len(probes) >= 30
    assert {status for _, status, _ in probes} == {200}
    worst = max(probes, key=lambda p: p[2])
    assert worst[2] < 2.0, f"a probe waited {worst[2]:.1f} s: {worst[0]}"
    # The first 40 and the 40 that replaced them were all cut off by the header timeout.
    assert len(closed) >= 2 * attackers
    for opened, at, sent in closed:
        assert sent.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), sent
        assert HEADER_TIMEOUT - 0.5 <= at - opened <= HEADER_TIMEOUT + 3


@pytest.mark.slow
def test_request_bodies_sent_slowly_or_never_do_not_starve_the_workers(search_index, tmp_path):
    """12 sockets trickling a declared 60,000-byte body a byte a second and 12 declaring 10
    bytes they never send, each replaced once the server closes it, for 12 s against 2 workers
    of 8 threads: /healthz, every second, answers 200 within 2 s, and each of those requests is
    answered at once with Connection: close. gunicorn used to drain such a body in the pool
    thread (5 s and more each): 8 of 11 probes failed at a 4 s timeout."""
    per_kind = 12
    run_for = 12.0
    heads = {kind: b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n" % length
             for kind, length in (("trickle", 60_000), ("silent", 10))}
    probes: list[tuple[int, float]] = []
    answered: list[tuple[str, float, bytes]] = []  # (kind, seconds to the server's close, what it sent)
    with running_server(search_index, tmp_path / "server.log") as base:
        port = urlsplit(base).port
        selector = selectors.DefaultSelector()
        end = time.monotonic() + run_for

        def connect(kind: str) -> None:
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(heads[kind])
            selector.register(sock, selectors.EVENT_READ, (kind, time.monotonic(), bytearray()))

        def attack() -> None:
            for kind in heads:
                for _ in range(per_kind):
                    connect(kind)
            while time.monotonic() < end:
                tick = time.monotonic() + 1
                closed = []
                while (left := tick - time.monotonic()) > 0:
                    for key, _ in selector.select(timeout=left):
                        kind, opened, received = key.data
                        try:
                            chunk = key.fileobj.recv(65536)
                        except OSError:
                            chunk = b""
                        if chunk:
                            received += chunk
                            continue
                        answered.append((kind, time.monotonic() - opened, bytes(received)))
                        selector.unregister(key.fileobj)
                        key.fileobj.close()
                        closed.append(kind)
                for key in list(selector.get_map().values()):
                    if key.data[0] == "trickle":
                        with suppress(OSError):
                            key.fileobj.send(b"a")
                for kind in closed:
                    connect(kind)

        attack_thread = threading.Thread(target=attack)
        attack_thread.start()
        time.sleep(1)
        while time.monotonic() < end - 1:
            status, waited, _ = timed_get(base, "/healthz")
            probes.append((status, waited))
            time.sleep(1)
        attack_thread.join()
        for key in list(selector.get_map().values()):
            key.fileobj.close()

    assert len(probes) >= 8
    assert {status for status, _ in probes} == {200}
    assert max(waited for _, waited in probes) < 2.0, probes
    for kind in heads:
        assert sum(1 for k, _, _ in answered if k == kind) >= 2 * per_kind, kind
    for kind, took, sent in answered:
        assert sent.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\nConnection: close\r\n" in sent, (kind, sent)
        assert took < 2.0, (kind, took)


@pytest.mark.slow
def test_exports_past_the_bound_are_refused_at_once(presidential, tmp_path):
    """SEARCHSVC_MAX_EXPORTS=1, one worker: an export whose client reads nothing holds the one
    place; another export gets 503 too_many_exports with Retry-After at once, a search still
    answers, and once the first client hangs up an export goes through again. Without the
    bound, 16 such clients took all 16 threads and every /healthz failed until the send timeout."""
    index = presidential_index(presidential)
    with running_server(index, tmp_path / "server.log", workers=1, env={"SEARCHSVC_MAX_EXPORTS": "1"}) as base:
        held = slow_connection(base)
        held.request("GET", "/api/export?format=jsonl")
        response = held.getresponse()
        assert response.status == 200
        assert len(response.read(1000)) == 1000  # and nothing more: the server's writes wait
        started = time.monotonic()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + "/api/export?format=csv", timeout=10)
        assert time.monotonic() - started < 2.0
        assert refused.value.code == 503 and refused.value.headers["Retry-After"] == "30"
        error = json.loads(refused.value.read())["error"]
        assert (error["status"], error["code"], error["param"]) == (503, "too_many_exports", None)
        status, waited, _ = timed_get(base, "/api/search?q=tax")
        assert status == 200 and waited < 2.0
        held.close()  # the server's next write fails, and the stream's place is given back
        deadline = time.monotonic() + 5
        while True:
            try:
                status, _, body = timed_get(base, "/api/export?format=jsonl&q=genocide")
                break
            except urllib.error.HTTPError as e:
                assert e.code == 503 and time.monotonic() < deadline, "the place was not given back"
                time.sleep(0.2)
        assert status == 200 and body.endswith(b"\n")


def test_an_export_holds_its_place_until_its_stream_ends_or_is_closed(search_index, client_for):
    """In-process, MAX_EXPORTS=1: an export being streamed holds the place (503 with
    Retry-After for the next), searches still answer, and closing it or reading it to the end
    gives the place back."""
    client = client_for(search_index, MAX_EXPORTS=1)
    streaming = client.get("/api/export?format=jsonl", buffered=False)
    assert streaming.status_code == 200
    refused = client.get("/api/export?format=csv", buffered=True)
    assert_error(refused, 503, "too_many_exports",
                 message="this server process is already streaming as many exports as it allows (1); "
                         "try again in 30 seconds")
    assert refused.headers["Retry-After"] == "30"
    assert client.get("/api/search?q=pamphlet").status_code == 200
    streaming.close()
    for _ in range(2):  # each read to its end
        assert client.get("/api/export?format=csv", buffered=True).status_code == 200
    assert_error(client.get("/api/export?format=xlsx"), 400, "bad_format", "format")
    assert client.get("/api/export?format=jsonl", buffered=True).status_code == 200


@pytest.mark.slow
def test_a_slow_reader_gets_the_whole_export(presidential, tmp_path):
    """10,419 posts (40 MB of JSON Lines) read at 800 KB/s through a 16 KB receive buffer:
    about 50 s, longer than gunicorn's 30 s worker timeout, which used to cut it (with sync
    workers this client got 6,711 of 10,419 lines and a truncated last one)."""
    index = presidential_index(presidential)
    expected = {record["id"]: record for record in Searchsvc(index).export()}
    with running_server(index, tmp_path / "server.log") as base:
        connection = slow_connection(base)
        started = time.monotonic()
        connection.request("GET", "/api/export?format=jsonl")
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("Transfer-Encoding") == "chunked"
        count = int(response.getheader("X-Searchsvc-Count"))
        # http.client raises IncompleteRead if the chunked body ends without its last chunk.
        body = read_at(response, rate=800_000)
        took = time.monotonic() - started
        connection.close()

    assert took > 35, f"the download took {took:.0f} s: not longer than the old worker timeout"
    assert body.endswith(b"\n")
    lines = body.decode("utf-8").splitlines()
    assert count == len(lines) == len(expected) == 10_419
    records = [json.loads(line) for line in lines]
    assert sorted(r["id"] for r in records) == sorted(expected)
    for record in records:
        assert record.pop("score") is None
        assert record == expected[record["id"]]


@pytest.mark.slow
def test_searches_answer_while_an_export_streams_slowly(presidential, tmp_path):
    """One worker process: an export read at 200 KB/s holds a thread for the whole test, and
    meanwhile 16 different searches, 4 at a time on other connections, each answer within
    2 s with exactly the JSON of a fresh single-threaded search of the same index."""
    index = presidential_index(presidential)
    queries = [{"q": "health care"}, {"q": "tax", "sort": "oldest", "page": "3"},
               {"q": '"armed forces"', "per_page": "50"}, {"q": "war OR peace", "from": "1900", "to": "1950"},
               {"q": "immigr*", "sort": "newest"}, {"q": "", "author": "Barack Obama"},
               {"q": "energy", "page": "2", "per_page": "20"}, {"q": "veterans hospital"},
               {"q": "title:proclamation", "from": "1990"}, {"q": "farm -tax", "sort": "oldest"},
               {"q": "", "from": "1960", "to": "1962-06"}, {"q": "soviet union", "per_page": "100"},
               {"q": "educat* reform"}, {"q": "genocide"}, {"q": "independence day", "page": "4"},
               {"q": "", "sort": "oldest", "page": "7"}]
    engine = Engine(IndexStore(index))
    try:
        expected = []
        for params in queries:
            result = search(engine, request_from_params({k: [v] for k, v in params.items()})).to_json()
            result.pop("took_ms")
            expected.append(result)
    finally:
        engine.close()

    stop = threading.Event()
    streamed: list[bytes] = []
    with running_server(index, tmp_path / "server.log", workers=1) as base:
        connection = slow_connection(base)
        connection.request("GET", "/api/export?format=csv")
        response = connection.getresponse()
        assert response.status == 200
        reader = threading.Thread(target=lambda: streamed.append(read_at(response, 200_000, stop)))
        reader.start()
        try:
            time.sleep(1)
            with ThreadPoolExecutor(4) as clients:
                answers = list(clients.map(lambda p: timed_get(base, "/api/search?" + urlencode(p)), queries))
            assert reader.is_alive(), "the export ended before the searches did: not a test of both at once"
        finally:
            stop.set()
            reader.join()
            connection.close()
    for params, want, (status, waited, body) in zip(queries, expected, answers, strict=True):
        got = json.loads(body)
        got.pop("took_ms")
        assert status == 200 and waited < 2.0, (params, waited)
        assert got == want, params
    assert streamed[0].startswith("\ufeffid,title,date,author,url,score,body\r\n".encode())


@pytest.mark.slow
def test_a_client_that_stops_reading_is_cut_off(presidential, tmp_path):
    """SEARCHSVC_SEND_TIMEOUT=2: a client that reads 200 KB of an export and then nothing
    for 6 s is reset; reading on fails (never a clean, short end), and the thread is free."""
    index = presidential_index(presidential)
    log = tmp_path / "server.log"
    with running_server(index, log, workers=1, env={"SEARCHSVC_SEND_TIMEOUT": "2", "SEARCHSVC_THREADS": "1"}) as base:
        connection = slow_connection(base)
        connection.request("GET", "/api/export?format=jsonl")
        response = connection.getresponse()
        assert response.status == 200
        assert len(response.read(200_000)) == 200_000
        time.sleep(6)
        with pytest.raises((ConnectionResetError, http.client.IncompleteRead)):
            response.read()
        connection.close()
        # The worker's one thread is free again.
        status, waited, _ = timed_get(base, "/healthz")
        assert status == 200 and waited < 2.0
    assert "no progress for 2 s while sending the response" in log.read_text()


def test_request_heads_are_read_whole_before_a_thread_takes_them(search_index, tmp_path):
    """Keep-alive and pipelined requests, a head in pieces, a head that never ends (408 after
    SEARCHSVC_HEADER_TIMEOUT) and one too large (431), on one thread."""

    def exchange(port: int, *pieces: bytes, pause: float = 0.3) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            for piece in pieces:
                sock.sendall(piece)
                time.sleep(pause)
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
            return received

    get = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    env = {"SEARCHSVC_HEADER_TIMEOUT": "2", "SEARCHSVC_THREADS": "1"}
    with running_server(search_index, tmp_path / "server.log", workers=1, env=env) as base:
        port = urlsplit(base).port
        answers = exchange(port, get + b"\r\n" + get + b"\r\n", get + b"Connection: close\r\n\r\n")
        assert answers.count(b"HTTP/1.1 200 OK\r\n") == 3
        in_pieces = exchange(port, b"\r\nGET /healthz HT", b"TP/1.1\r\nConnection: close\r", b"\n\r\n")
        assert in_pieces.startswith(b"HTTP/1.1 200 OK\r\n")
        started = time.monotonic()
        assert exchange(port, get) == b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        assert 1.5 < time.monotonic() - started < 5
        too_large = exchange(port, get + b"X-Big: " + b"a" * 70_000 + b"\r\n")
        assert too_large.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
        # A declared body is never read: answered and closed at once (not after a 5 s drain).
        for framing in (b"Content-Length: 5\r\n", b"Transfer-Encoding: chunked\r\n"):
            started = time.monotonic()
            answer = exchange(port, get + framing + b"\r\n", pause=0)
            assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\nConnection: close\r\n" in answer
            assert time.monotonic() - started < 1.5
        assert timed_get(base, "/healthz")[0] == 200


def test_an_export_outlives_a_commit(tmp_path):
    """An export keeps reading from the searcher that found its matches after a commit
    replaces it (the engine used to close it: ReaderClosed mid-stream)."""
    posts = tmp_path / "posts.jsonl"
    total = 3 * EXPORT_BATCH
    posts.write_text("".join(json.dumps({"id": f"p{n:03}", "title": f"Post {n}", "date": f"2020-01-{n % 28 + 1:02}",
                                         "body": f"Common words and number {n}."}) + "\n" for n in range(total)),
                     encoding="utf-8")
    searchsvc = Searchsvc(tmp_path / "index")
    assert searchsvc("ingest", posts).exit_code == 0
    engine = Engine(IndexStore(searchsvc.index))
    try:
        count, _, matches = iter_matches(engine, request_from_params({"q": ["common"]}))
        first = [next(matches) for _ in range(EXPORT_BATCH + 1)]
        more = tmp_path / "more.jsonl"
        more.write_text(json.dumps({"id": "new", "title": "New", "body": "Common and new."}) + "\n", encoding="utf-8")
        assert searchsvc("ingest", more).exit_code == 0
        assert engine.searcher().doc_count() == total + 1  # the engine moved on
        exported = first + list(matches)
    finally:
        engine.close()
    assert count == len(exported) == total
    assert sorted(record.id for record, _ in exported) == [f"p{n:03}" for n in range(total)]


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("SEARCHSVC_HEADER_TIMEOUT", "0", "SEARCHSVC_HEADER_TIMEOUT must be a number of seconds (more than 0), got '0'"),
    ("SEARCHSVC_SEND_TIMEOUT", "a minute",
     "SEARCHSVC_SEND_TIMEOUT must be a number of seconds (more than 0), got 'a minute'"),
    ("SEARCHSVC_KEEPALIVE", "-1", "SEARCHSVC_KEEPALIVE must be a number of seconds (0 or more), got '-1'"),
    ("SEARCHSVC_MAX_EXPORTS", "0", "SEARCHSVC_MAX_EXPORTS must be a whole number (1 or more), got '0'"),
    ("SEARCHSVC_RATE_LIMIT", "lots",
     "a rate limit must look like '120/minute' (per second, minute, hour or day), got 'lots'"),
    ("SEARCHSVC_BASE_URL", "search.example.org",
     "SEARCHSVC_BASE_URL must be an absolute http(s) URL such as 'https://search.example.org/', "
     "got 'search.example.org'"),
])
def test_a_bad_setting_stops_serve_with_a_clear_error(search_index, variable, value, message):
    result = subprocess.run([sys.executable, "-m", "searchsvc", "serve", "--index", str(search_index)],
                            capture_output=True, text=True, timeout=60, env={**os.environ, variable: value})
    assert result.returncode == 1
    assert result.stderr == f"Error: {message}\n"
