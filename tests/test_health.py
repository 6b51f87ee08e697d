"""/healthz while searches hold the engine (review of issue 22): every search holds its process's
engine lock for up to the search time limit, and /healthz took the same lock, so one client's
slow searches made the health checks time out and the load balancer drop the replica. Now
/healthz answers from the last look at the index when a search holds it, looks again when it is
free (a newer commit, a damaged file), and a search's wait for the lock counts against its time
limit. Synthetic posts only, by fictional authors."""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import SAMPLE_POSTS, Searchsvc, assert_error, run_cli, running_server

from searchsvc.web.context import engine_of

SYLLABLES = ["ka", "lo", "mi", "ra", "te", "su", "no", "vi", "de", "pa", "zu", "ren", "tor", "bel", "gan", "dor"]
AUTHORS = ["Dana Placeholder", "Sam Example", "Alex Fictional", "Robin Sample"]
PROBE_BOUND = 1.5  # seconds: under HAProxy's `timeout check 2s` (deploy/haproxy.cfg)


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))


def _health(base: str) -> tuple[int, dict]:
    """Status and JSON of /healthz; the socket timeout is the bound (a timeout raises)."""
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=PROBE_BOUND) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _segment(index: Path) -> Path:
    """The largest segment file of the index's current generation."""
    generation = json.loads((index / "searchsvc-index.json").read_text())["generation"]
    return max((index / generation).glob("*.seg"), key=lambda p: p.stat().st_size)


@contextmanager
def _engine_held(app):
    """The app's engine held by another thread, as a search holds it for as long as it runs."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with engine_of(app).reading():
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    try:
        yield
    finally:
        release.set()
        holder.join(10)


def _get_within(client, path: str, seconds: float):
    """`client.get(path)` from another thread; None if it has not answered within `seconds`."""
    answer = []
    getter = threading.Thread(target=lambda: answer.append(client.get(path)), daemon=True)
    getter.start()
    getter.join(seconds)
    return answer[0] if answer else None


def test_healthz_answers_while_a_search_holds_the_engine_and_looks_again_after(tmp_path, client_for):
    """Before: /healthz waited for the lock as long as the search held it (here: no answer within
    1 s). Now it answers at once from the last look; a commit made meanwhile, or a damaged
    segment, is reported as soon as the lock is free."""
    searchsvc = Searchsvc(tmp_path / "index")
    assert searchsvc("ingest", SAMPLE_POSTS / "posts").exit_code == 0
    client = client_for(searchsvc.index, VERIFY_EVERY=0)
    app = client.application
    before = client.get("/healthz").get_json()
    assert before["status"] == "ok" and before["posts"] == 4
    source = tmp_path / "new.jsonl"
    source.write_text(json.dumps({"id": "h1", "title": "Quokka census", "author": "Dana Placeholder",
                                  "body": "A synthetic note: the quokka census counted seven."}) + "\n")
    with _engine_held(app):
        answered = _get_within(client, "/healthz", 1.0)
        assert answered is not None, "/healthz waited for the search holding the engine"
        assert (answered.status_code, answered.get_json()) == (200, before)
        assert searchsvc("ingest", source).exit_code == 0
        # The search in progress reads the commit it opened: that is what this process serves.
        assert _get_within(client, "/healthz", 1.0).get_json() == before
        metrics = _get_within(client, "/metrics", 1.0)
        assert metrics is not None and "searchsvc_index_posts 4.0" in metrics.get_data(as_text=True)
    after = client.get("/healthz").get_json()
    assert after["posts"] == 5 and after["generation"] == before["generation"]
    assert after["commit"] != before["commit"]
    with _engine_held(app):
        with _segment(searchsvc.index).open("ab") as f:  # grown: a cut mapped file ends its reader (SIGBUS)
            f.write(b"\0" * 100)
        assert _get_within(client, "/healthz", 1.0) is not None
    time.sleep(0.3)  # past SIZE_CHECK_SECONDS: the sizes are looked at again
    message = assert_error(client.get("/healthz"), 503, "index_damaged")
    assert str(_segment(searchsvc.index).parent) in message


def test_a_search_waiting_for_the_engine_counts_the_wait_in_its_time_limit(tmp_path, client_for):
    """Before: a search queued behind another waited for it (here 3 s), then ran with a limit of
    its own, and answered 200 after 3 s. Now the wait is part of its limit (0.5 s): 503
    search_timeout at 0.5 s, saying why; the same search answers once the engine is free."""
    searchsvc = Searchsvc(tmp_path / "index")
    assert searchsvc("ingest", SAMPLE_POSTS / "posts").exit_code == 0
    client = client_for(searchsvc.index, SEARCH_TIMEOUT=0.5)
    started = time.monotonic()
    with _engine_held(client.application):
        answered = _get_within(client, "/api/search?q=uyghur", 3.0)
        waited = time.monotonic() - started
        assert answered is not None, "the search waited past 3 s for the engine"
        message = assert_error(answered, 503, "search_timeout")
        assert message == ("the server was busy with other searches for 0.5 s, the search time limit, "
                           "and this one was not started; retry in a few seconds")
        assert waited < 2.0
    assert client.get("/api/search?q=uyghur").get_json()["total"] > 0


@pytest.fixture(scope="module")
def synthetic_index(tmp_path_factory) -> Path:
    """3,000 synthetic posts of 50-400 made-up words (about 20,000 distinct ones): 64 fuzzy words
    OR'd together take 1.3-1.7 s to search here, so they run up to a limit of 1 s."""
    root = tmp_path_factory.mktemp("synthetic")
    rng = random.Random(7)
    words = sorted({_word(rng) for _ in range(20000)})
    with (root / "posts.jsonl").open("w", encoding="utf-8") as out:
        for i in range(3000):
            out.write(json.dumps({
                "id": f"s{i}", "title": " ".join(rng.choice(words) for _ in range(6)),
                "date": f"{rng.randint(1990, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                "author": rng.choice(AUTHORS), "body": " ".join(rng.choice(words) for _ in range(rng.randint(50, 400))),
            }) + "\n")
    done = run_cli("ingest", "--index", str(root / "index"), str(root / "posts.jsonl"))
    assert done.returncode == 0, done.stderr
    return root / "index"


def _slow_query(rng: random.Random) -> str:
    return " OR ".join(_word(rng) + "~2" for _ in range(64))


@pytest.mark.slow  # a server under load for about 10 s
def test_healthz_answers_within_the_check_timeout_while_slow_searches_run(synthetic_index, tmp_path):
    """One process, 4 threads, 3 clients each sending distinct searches that run up to the
    limit (1 s), one after another; 8 probes of /healthz, every 0.5 s, each given 1.5 s (HAProxy
    gives 2 s). Before: the first probe got no answer. Now every probe answers ok with the
    commit served (in 0.06-0.08 s), every search answers within its limit, the wait for the
    engine included (plus slack for the shared cores), a new commit is reported while the
    searches go on, and a damaged segment makes /healthz answer 503 index_damaged."""
    index = synthetic_index
    env = {"SEARCHSVC_SEARCH_TIMEOUT": "1", "SEARCHSVC_VERIFY_EVERY": "0"}
    with running_server(index, tmp_path / "server.log", workers=1, env=env, args=("--threads", "4")) as base:
        status, before = _health(base)
        assert status == 200 and before["posts"] == 3000
        stop = threading.Event()
        searches: list[tuple[float, float, int, str]] = []  # started, ended, status, error message

        def search_slowly(seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(40):  # bounded: 40 searches of about 1 s each at most
                if stop.is_set():
                    return
                started = time.monotonic()
                try:
                    with urllib.request.urlopen(f"{base}/api/search?q={quote(_slow_query(rng))}", timeout=30) as r:
                        status, message = r.status, ""
                except urllib.error.HTTPError as e:
                    error = json.loads(e.read())["error"]
                    status, message = e.code, f"{error['code']}: {error['message']}"
                except OSError as e:  # no answer: reported by the assertions below, not lost in the thread
                    status, message = 0, repr(e)
                searches.append((started, time.monotonic(), status, message))

        clients = [threading.Thread(target=search_slowly, args=(seed,)) for seed in range(3)]
        for client in clients:
            client.start()
        try:
            time.sleep(0.5)
            probes = []
            for _ in range(8):
                started = time.monotonic()
                try:
                    status, health = _health(base)
                except OSError as e:  # socket.timeout included: no answer within the bound
                    raise AssertionError(f"/healthz gave no answer within {PROBE_BOUND} s: {e}") from None
                probes.append((started, time.monotonic()))
                assert (status, health) == (200, before)
                time.sleep(0.5)
            # A new commit is served, and reported, while the slow searches go on.
            source = tmp_path / "new.jsonl"
            source.write_text(json.dumps({"id": "n1", "title": "Quokka census", "author": "Dana Placeholder",
                                          "body": "A synthetic note: the quokka census counted seven."}) + "\n")
            assert run_cli("ingest", "--index", str(index), str(source)).returncode == 0
            deadline = time.monotonic() + 15
            while (health := _health(base)[1])["commit"] == before["commit"]:
                assert time.monotonic() < deadline, "the new commit was never reported"
                time.sleep(0.2)
            assert health["posts"] == 3001 and health["status"] == "ok"
            slow_phase = list(searches)
            # A damaged segment is reported (503), even with searches in flight. Grown, not cut: a
            # search reading a mapped file that is cut dies of SIGBUS (README, "Durability and checks").
            with _segment(index).open("ab") as f:
                f.write(b"\0" * 100)
            deadline = time.monotonic() + 15
            while (found := _health(base))[0] == 200:
                assert time.monotonic() < deadline, "the damaged segment was never reported"
                time.sleep(0.2)
            assert found[0] == 503 and found[1]["error"]["code"] == "index_damaged"
        finally:
            stop.set()
            for client in clients:
                client.join(60)
    # The searches were slow and in flight all through the probes: each probe began while one
    # ran, each was stopped at the limit, running or waiting for the engine (both are 503).
    assert all(status == 503 and message.startswith("search_timeout: ") for _, _, status, message in slow_phase), \
        slow_phase
    for started, _ in probes:
        assert any(begun < started < ended for begun, ended, _, _ in slow_phase), (started, slow_phase)
    # Every search answered within its limit, the wait for the engine included (1 s; slack for the shared cores).
    assert max(ended - begun for begun, ended, _, _ in slow_phase) < 1.8, slow_phase
