"""Fixtures: a CLI runner bound to a fresh index on tmp_path, and paths to the shared data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def run_cli(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    """`python -m searchsvc ...` in a real process (for locking and kill tests)."""
    return subprocess.run(
        [sys.executable, "-m", "searchsvc", *args],
        capture_output=True, text=True, timeout=600, **kwargs,
    )
