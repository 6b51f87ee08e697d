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
    """24 kill -9s spread over the whole run of an ingest or a rebuild, commit included:
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
        # Spread over the whole run and a little past it, so some kills land during the commit.
        delay = (n // 4 + rng.random()) / (len(trials) // 4) * timings[(name, mode)] * 1.1
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
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
        generations = sorted(p.name for p in index.glob("g*"))
        assert len(generations) <= 2, generations  # the current one and the one before it
        shutil.rmtree(index)
    assert len(outcomes) == 24
    assert "old" in outcomes and "new" in outcomes, outcomes


def _damaged_message(index: Path, reason: str) -> str:
    return (f"the index at {index} is damaged and cannot be read ({reason}); "
            "rebuild it from your files with `searchsvc ingest --rebuild PATH...`")


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_a_damaged_index_answers_503_and_info_says_why(tmp_path, client_for, damage):
    index = tmp_path / "index"
    posts = Path(__file__).parent.parent / "sample_posts" / "posts"
    assert run_cli("ingest", "--index", str(index), str(posts)).returncode == 0
    [segment] = index.glob("g*/*.seg")
    if damage == "truncate":
        with segment.open("r+b") as f:
            f.truncate(1000)
        reason = "EOFError: Ran out of input"
    else:
        segment.unlink()
        reason = f"FileNotFoundError: [Errno 2] No such file or directory: '{segment}'"
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
    assert page.status_code == 503 and "is damaged and cannot be read" in page.get_data(as_text=True)
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
