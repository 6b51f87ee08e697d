"""Faults: an ingest killed at any moment, a full disk, a damaged or foreign index."""

from __future__ import annotations

import gzip
import itertools
import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PRESIDENTIAL, run_cli

SMALL, LARGE = 500, 1400  # posts in the killed batch: one writer process, then a helper too


def _lines(start: int, count: int) -> list[str]:
    with gzip.open(PRESIDENTIAL, "rt", encoding="utf-8") as f:
        return list(itertools.islice(f, start, start + count))


def _export(index: Path) -> list[str]:
    done = run_cli("export", "--index", str(index))
    assert done.returncode == 0, done.stderr
    return sorted(done.stdout.splitlines())


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for_new_toc(index: Path, before: set[Path], process: subprocess.Popen, limit: float = 60) -> None:
    """Return once a table of contents not in `before` appears (a commit has begun)."""
    deadline = time.monotonic() + limit
    while process.poll() is None and time.monotonic() < deadline:
        if set(index.rglob("*.toc*")) - before:
            return
        time.sleep(0.002)


@pytest.fixture(scope="module")
def kill_setup(tmp_path_factory):
    """An index of 300 posts, batches to add, and every state a kill may leave behind."""
    root = tmp_path_factory.mktemp("kill")
    base_posts = root / "base.jsonl"
    base_posts.write_text("".join(_lines(0, 300)), encoding="utf-8")
    batches = {}
    for name, count in (("small", SMALL), ("large", LARGE)):
        path = root / f"{name}.jsonl"
        path.write_text("".join(_lines(300, count)), encoding="utf-8")
        batches[name] = path
    base = root / "base-index"
    assert run_cli("ingest", "--index", str(base), str(base_posts)).returncode == 0
    states = {"base": _export(base)}
    timings = {}
    for name, path in batches.items():
        for mode in ("add", "rebuild"):
            index = root / f"{name}-{mode}"
            shutil.copytree(base, index)
            started = time.monotonic()
            args = ["ingest", "--index", str(index), str(path)] + (["--rebuild"] if mode == "rebuild" else [])
            assert run_cli(*args).returncode == 0
            timings[(name, mode)] = time.monotonic() - started
            states[(name, mode)] = _export(index)
    return root, base, batches, states, timings


def test_ingest_killed_at_random_moments_leaves_the_last_commit(kill_setup, tmp_path):
    """24 kill -9s spread over the whole run of an ingest or a rebuild, eight during its commit:
    each time the index holds exactly the posts of the old or the new commit, no helper
    process outlives the ingest, and the next ingest needs no cleanup."""
    root, base, batches, states, timings = kill_setup
    rng = random.Random(20261124)
    outcomes = []
    extra = tmp_path / "one.jsonl"
    extra.write_text(json.dumps({"id": "after-kill", "title": "A synthetic post after the kill",
                                 "body": "Written by a fictional author to prove the index is writable."}) + "\n",
                     encoding="utf-8")
    trials = [(name, mode) for name in ("small", "large") for mode in ("add", "rebuild")] * 6
    for n, (name, mode) in enumerate(trials):
        index = tmp_path / f"trial{n}"
        shutil.copytree(base, index)
        args = [sys.executable, "-m", "searchsvc", "ingest", "--quiet", "--index", str(index), str(batches[name])]
        if mode == "rebuild":
            args.append("--rebuild")
        tocs = set(index.rglob("*.toc*"))
        started = time.monotonic()
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if n < 16:
            # Kills spread over the run up to its commit, which a one-off timing cannot place.
            time.sleep((n // 4 + rng.random()) / 4 * timings[(name, mode)] * 0.9)
        else:
            # Kills timed from the commit's own start (its table of contents appearing), not from a
            # run time measured once: on a loaded machine a fixed delay never reaches the commit.
            _wait_for_new_toc(index, tocs, process)
            time.sleep(rng.random() * (0.2 if n < 20 else 1.0))
        delay = time.monotonic() - started
        helpers = _children(process.pid)
        process.send_signal(signal.SIGKILL)
        process.wait()
        deadline = time.monotonic() + 5
        while any(_alive(h) for h in helpers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(h) for h in helpers), f"trial {n}: a helper outlived the killed ingest"

        now = _export(index)
        if now == states["base"]:
            outcomes.append("old")
        elif now == states[(name, mode)]:
            outcomes.append("new")
        else:
            pytest.fail(f"trial {n} ({name} {mode}, killed after {delay:.2f} s): a state no commit made")
        # No stale lock, no manual cleanup: the next ingest proceeds at once.
        after = run_cli("ingest", "--wait", "0", "--index", str(index), str(extra))
        assert after.returncode == 0, after.stderr
        assert len(_export(index)) == len(now) + 1
        generations = sorted(p.name for p in index.glob("g*") if p.is_dir())
        assert len(generations) <= 2, generations  # the current one and the one before it
        shutil.rmtree(index)
    assert len(outcomes) == 24
    assert "old" in outcomes and "new" in outcomes, outcomes


def _damaged_message(index: Path, problem: str) -> str:
    return (f"the index at {index} is damaged: {problem}; "
            "rebuild it from your files with `searchsvc ingest --rebuild PATH...`")


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_a_damaged_index_answers_503_and_info_says_why(tmp_path, client_for, damage):
    index = tmp_path / "index"
    posts = Path(__file__).parent.parent / "sample_posts" / "posts"
    assert run_cli("ingest", "--index", str(index), str(posts)).returncode == 0
    [segment] = index.glob("g*/*.seg")
    if damage == "truncate":
        size = segment.stat().st_size
        with segment.open("r+b") as f:
            f.truncate(1000)
        reason = f"{segment} has 1,000 bytes, its commit wrote {size:,}"
    else:
        segment.unlink()
        reason = f"{segment} is missing"
    expected = _damaged_message(index, reason)

    info = run_cli("info", "--index", str(index))
    assert (info.returncode, info.stdout, info.stderr) == (1, "", f"Error: {expected}\n")
    client = client_for(index)
    for path in ("/healthz", "/api/search?q=uyghur", "/api/export?q=uyghur", "/api/posts/x"):
        response = client.get(path)
        assert response.status_code == 503, path
        assert response.get_json() == {"error": {"status": 503, "code": "index_damaged", "message": expected,
                                                 "param": None}}
    page = client.get("/?q=uyghur")
    assert page.status_code == 503 and "is damaged: " in page.get_data(as_text=True)
    # An incremental ingest refuses to write into it; a rebuild replaces it.
    add = run_cli("ingest", "--index", str(index), str(posts))
    assert (add.returncode, add.stderr) == (1, f"Error: {expected}\n")
    rebuilt = run_cli("ingest", "--rebuild", "--index", str(index), str(posts))
    assert rebuilt.returncode == 0, rebuilt.stderr
    fresh = client_for(index)
    assert fresh.get("/api/search?q=uyghur").get_json()["total"] == 4


def test_a_foreign_directory_is_never_unpickled(tmp_path, client_for):
    """A directory we did not create, holding a Whoosh-looking table of contents whose
    unpickling would run code: 503, and the code never runs."""
    import pickle

    sentinel = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(sentinel), "w"))

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "_MAIN_1.toc").write_bytes(pickle.dumps(Exploit()))
    (foreign / "g000001").mkdir()
    (foreign / "g000001" / "_MAIN_1.toc").write_bytes(pickle.dumps(Exploit()))
    client = client_for(foreign)
    for path in ("/healthz", "/api/search?q=x", "/"):
        assert client.get(path).status_code == 503
    body = client.get("/api/search?q=x").get_json()
    assert body["error"]["code"] == "not_an_index"
    for command in (["info"], ["search", "x"], ["export"], ["ingest", str(tmp_path / "none.jsonl")]):
        done = run_cli(*command, "--index", str(foreign))
        assert done.returncode == 1
        assert "is not a searchsvc index" in done.stderr, done.stderr
    assert not sentinel.exists()
    assert sorted(p.name for p in foreign.rglob("*")) == ["_MAIN_1.toc", "_MAIN_1.toc", "g000001"]


def test_ingest_while_serving_keeps_every_answer_whole(tmp_path):
    """A server under steady query load while posts are added three times and the index is
    rebuilt: no 5xx, every response internally consistent, new posts found within a second."""
    import threading
    import urllib.error
    import urllib.request

    from conftest import SAMPLE_POSTS, running_server

    index = tmp_path / "index"
    base_posts = tmp_path / "base.jsonl"
    base_posts.write_text("".join(_lines(0, 300)), encoding="utf-8")
    assert run_cli("ingest", "--index", str(index), str(base_posts), str(SAMPLE_POSTS / "posts")).returncode == 0

    def fetch(base: str, path: str) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(base + path, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as e:
            with e:
                return e.code, {}

    problems: list[str] = []
    checked = [0]
    stop = threading.Event()

    def load(base: str, query: str) -> None:
        while not stop.is_set():
            status, body = fetch(base, f"/api/search?q={query}&per_page=20")
            if status != 200:
                problems.append(f"{query}: HTTP {status}")
                continue
            ids = [hit["id"] for hit in body["hits"]]
            for name in ("author", "year"):
                if sum(f["count"] for f in body["facets"][name]) != body["total"]:
                    problems.append(f"{query}: {name} facets do not sum to the total {body['total']}")
            if len(set(ids)) != len(ids) or len(ids) != min(20, body["total"]):
                problems.append(f"{query}: a page with repeated or missing hits")
            checked[0] += 1

    with running_server(index, tmp_path / "server.log") as base:
        threads = [threading.Thread(target=load, args=(base, q)) for q in ("president", "states+OR+zeppelin*")]
        for thread in threads:
            thread.start()
        try:
            everything = [base_posts, SAMPLE_POSTS / "posts"]
            for n in range(4):
                post = tmp_path / f"new{n}.jsonl"
                post.write_text(json.dumps({
                    "id": f"new-{n}", "title": f"Synthetic post zeppelin{n}", "author": "Zed Fictional",
                    "body": f"A fictional author writes about zeppelin{n} for this test."}) + "\n", encoding="utf-8")
                everything.append(post)
                args = ["ingest", "--index", str(index), *map(str, everything if n == 3 else [post])]
                done = run_cli(*args, *(["--rebuild"] if n == 3 else []))
                assert done.returncode == 0, done.stderr
                committed = time.monotonic()
                while fetch(base, f"/api/search?q=zeppelin{n}")[1].get("total") != 1:
                    assert time.monotonic() - committed < 1.0, f"post {n} not found within a second"
                    time.sleep(0.02)
                time.sleep(0.5)  # queries keep running between the writes
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    assert problems == []
    assert checked[0] > 20


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB file system of its own (tmpfs; needs root, as CI has)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.parametrize("rebuild", [False, True])
def test_a_full_disk_is_a_clear_error_and_the_index_stays_searchable(small_disk, tmp_path, rebuild):
    from searchsvc.web import create_app

    index = small_disk / "index"
    posts = Path(__file__).parent.parent / "sample_posts" / "posts"
    assert run_cli("ingest", "--index", str(index), str(posts)).returncode == 0
    before = _export(index)
    big = tmp_path / "big.jsonl"
    big.write_text("".join(_lines(0, 1500)), encoding="utf-8")  # an index of far more than 4 MB

    args = ["ingest", "--index", str(index), str(big)] + (["--rebuild"] if rebuild else [])
    full = run_cli(*args)
    assert (full.returncode, full.stdout) == (1, "")
    assert full.stderr == (f"Error: no space left on the disk while writing the index at {index}: nothing "
                           "was written and the index is as it was; free some space and ingest again\n")
    assert _export(index) == before
    app = create_app({"INDEX": str(index), "TESTING": True})
    assert app.test_client().get("/api/search?q=uyghur").get_json()["total"] == 4
    app.extensions["searchsvc.engine"].close()
    # The unfinished segment's space is given back: a small ingest fits again at once.
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps({"id": "fits", "title": "A small synthetic post", "body": "It fits."}) + "\n",
                   encoding="utf-8")
    again = run_cli("ingest", "--index", str(index), str(one))
    assert again.returncode == 0, again.stderr
    assert len(_export(index)) == len(before) + 1
