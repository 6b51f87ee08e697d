"""Fixtures: a CLI runner bound to a fresh index on tmp_path, and paths to the shared data."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from searchsvc.cli import cli

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SEED_LISTING = SHARED / "seed" / "east-turkestan-statements-listing.txt"
CORPORA = SHARED / "corpora"
PRESIDENTIAL = CORPORA / "us_presidential_documents.jsonl.gz"
SAMPLE_POSTS = ROOT / "sample_posts"


class Searchsvc:
    """Runs `searchsvc` commands in-process against one index directory."""

    def __init__(self, index: Path):
        self.index = index
        self.runner = CliRunner()

    def __call__(self, *args: str | os.PathLike[str]) -> Result:
        return self.runner.invoke(
            cli, [*map(str, args), "--index", str(self.index)], catch_exceptions=False
        )

    def export(self) -> list[dict]:
        result = self("export")
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in result.stdout.splitlines()]

    def info(self) -> dict:
        result = self("info", "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    return tmp_path / "index"


@pytest.fixture
def searchsvc(index_dir: Path) -> Searchsvc:
    return Searchsvc(index_dir)


@pytest.fixture
def write(tmp_path: Path):
    """Write a file under tmp_path/posts (text or bytes) and return its path as a string."""

    def _write(name: str, content: str | bytes) -> str:
        path = tmp_path / "posts" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="")
        return str(path)

    return _write


@contextmanager
def running_server(index: Path, log_path: Path, workers: int = 2, env: dict[str, str] | None = None,
                   args: tuple[str, ...] = ()) -> Iterator[str]:
    """`searchsvc serve` on a free port, the index named by SEARCHSVC_INDEX (and `env` added to
    its environment); yields the base URL once /healthz answers, and stops the server afterwards."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "SEARCHSVC_INDEX": str(index), **(env or {})}
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "searchsvc", "serve", "--port", str(port), "--workers", str(workers), *args],
            env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(base + "/healthz", timeout=5):
                        break
                except OSError:
                    assert time.monotonic() < deadline and server.poll() is None, log_path.read_text()
                    time.sleep(0.2)
            yield base
        finally:
            server.terminate()
            server.wait(timeout=20)


def run_cli(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    """`python -m searchsvc ...` in a real process (for locking and kill tests)."""
    return subprocess.run(
        [sys.executable, "-m", "searchsvc", *args],
        capture_output=True, text=True, timeout=600, **kwargs,
    )


@pytest.fixture(scope="session")
def presidential(tmp_path_factory) -> tuple[Searchsvc, Result]:
    """One index of all 10,419 presidential documents, built once per test session (about a minute)."""
    searchsvc = Searchsvc(tmp_path_factory.mktemp("presidential") / "index")
    return searchsvc, searchsvc("ingest", PRESIDENTIAL)


# Plainly synthetic posts by fictional authors, for exact expectations.
SYNTHETIC = [
    {"id": "syn-run", "title": "Marathon notes", "date": "2019-05-01", "author": "Ada Fictional",
     "body": "We run every morning along the river."},
    {"id": "syn-urumqi", "title": "Travel diary", "date": "2019-06-01", "author": "Ada Fictional",
     "body": "The train reached Urumqi at dawn."},
    {"id": "syn-turkish", "title": "Şehir notları", "date": "2019-07-01", "author": "Bora Kurgusal",
     "body": "Işık, İstanbul, dağ, çiçek, göl ve üzüm; sonra Ürümqi."},
    {"id": "syn-uigur", "title": "Old spellings", "date": "2019-08-01", "author": "Bora Kurgusal",
     "body": "An old atlas spells it Uigur, and the region Turkistan; another map has Urumchi."},
    {"id": "syn-end-2020", "title": "Last second of 2020", "date": "2020-12-31T23:59:59",
     "author": "Cem Imaginary", "body": "A synthetic post at the very end of the year."},
    {"id": "syn-start-2021", "title": "First second of 2021", "date": "2021-01-01T00:00:00",
     "author": "Cem Imaginary", "body": "A synthetic post at the very start of the year."},
    {"id": "syn-undated-1", "title": "Undated pamphlet one", "body": "No date at all on this synthetic pamphlet."},
    {"id": "syn-undated-2", "title": "Undated pamphlet two", "body": "Another synthetic pamphlet with no date."},
    {"id": "syn-hostile", "title": "<script>alert('title')</script> & friends",
     "date": "2019-09-01", "author": "<b>Eve</b> Hostile",
     "body": "Hostile body <img src=x onerror=alert(1)> about pamphlet ink & paper."},
]


@pytest.fixture(scope="session")
def search_index(tmp_path_factory) -> Path:
    """The sample posts plus the synthetic ones, ingested once."""
    root = tmp_path_factory.mktemp("search")
    posts = root / "synthetic.jsonl"
    posts.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in SYNTHETIC), encoding="utf-8")
    searchsvc = Searchsvc(root / "index")
    result = searchsvc("ingest", SAMPLE_POSTS / "posts", posts)
    assert result.exit_code == 0, result.output
    return root / "index"


@pytest.fixture(scope="session")
def client_for():
    """Make test clients for index directories; their open searchers are closed at the end."""
    from searchsvc.web import create_app

    apps = []

    def make(index: Path, **config):
        app = create_app({"INDEX": str(index), "TESTING": True, **config})
        apps.append(app)
        return app.test_client()

    yield make
    for app in apps:
        app.extensions["searchsvc.engine"].close()


@pytest.fixture(scope="session")
def client(search_index, client_for):
    return client_for(search_index)


def assert_error(response, status: int, code: str, param: str | None = None, message: str | None = None):
    """Every error has one shape."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"status", "code", "message", "param"}
    assert body["error"]["status"] == status
    assert body["error"]["code"] == code
    assert body["error"]["param"] == param
    if message is not None:
        assert body["error"]["message"] == message
    return body["error"]["message"]


# The fast tier, `pytest -m "not slow"`, is what a developer runs while working; CI runs all.
# Slow: whatever ingests a whole shared corpus (these fixtures), kills ingests, drives a
# browser, a server under load or a benchmark, or runs ingests under a memory limit.
_SLOW_FIXTURES = {"presidential", "sample", "multilingual_client", "kill_setup", "both", "server", "browser"}
_SLOW_MODULES = {"test_benchmarks", "test_corpora", "test_serving", "test_faults", "test_ingest_memory",
                 "test_publish", "test_replicas", "test_metrics",  # servers and processes started
                 # the reviews' crawls, and seeded sites crawled four times: test_follow is the fast tier's
                 "test_review_issue15", "test_review_issue15b", "test_follow_invariants"}


def pytest_collection_modifyitems(items):
    for item in items:
        if _SLOW_FIXTURES & set(item.fixturenames) or item.module.__name__ in _SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def site():
    """The Drupal-like blog of tests/fixture_site.py, served on a free loopback port."""
    from fixture_site import serving

    with serving() as served:
        yield served
