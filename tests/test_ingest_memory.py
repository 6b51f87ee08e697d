"""An ingest reads within a stated memory bound whatever it is given: run under an address-space
limit (RLIMIT_AS), a 1 GB JSON Lines line and 2 GB gzip bombs are reported and every valid
record of every file is kept. Before the bounds the line ended in 'MemoryError (a bug)', losing
the other files' records, and the bomb took 2 GB.

The inputs take little disk: the long line is a hole in a sparse file (read back as zero bytes),
and a bomb is one compressed 8 MB member written again and again.
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import subprocess
import sys

from conftest import SAMPLE_POSTS, run_cli

# The address space an ingest may take here: the README's bound for reading (900 MB), rounded
# up. Measured by lowering the limit until `ingest --strict` (which reads all and writes
# nothing) fails: sample_posts needs 50 MB; a JSON Lines record of 49 MB of plain text 200 MB,
# of text with an emoji 500 MB (Python keeps it at 4 bytes a character), of 10 million numbers
# 550 MB; a CSV file whose one cell is the text with an emoji 900 MB.
ADDRESS_SPACE = 1_000_000_000
GB = 1_000_000_000

POST = {"title": "Fictional statement one", "author": "A. Example", "body": "Synthetic body text."}
POST2 = {"title": "Fictional statement two", "author": "B. Example", "body": "More synthetic text."}


def jsonl(*records: dict) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def bomb(prefix: bytes, filler: bytes) -> bytes:
    """`prefix`, then 2 GB of `filler` (one byte) once decompressed, in a file of 2 MB."""
    member = gzip.compress(filler * (8 << 20))
    return gzip.compress(prefix) + member * (2 * GB // (8 << 20))


def ingest(*args: str, limit: int = ADDRESS_SPACE) -> subprocess.CompletedProcess[str]:
    """`searchsvc ingest ARGS` in a process of at most `limit` bytes of address space."""
    return subprocess.run([sys.executable, "-m", "searchsvc", "ingest", *args], capture_output=True, text=True,
                          timeout=120, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))


def test_reading_stays_within_the_memory_bound(tmp_path):
    posts = tmp_path / "posts"
    posts.mkdir()
    huge = posts / "huge.jsonl"
    with open(huge, "wb") as f:
        f.write(jsonl(POST) + b'{"title": "Huge", "body": "')
        f.seek(GB, os.SEEK_CUR)  # a hole of 1 GB: zero bytes when read, no disk blocks
        f.write(b'"}\n' + jsonl(POST2))
    # Newlines: the .json reader used to list the offset of every one (2 GB from 48 KB).
    (posts / "bomb.json.gz").write_bytes(bomb(b"[", b"\n"))
    (posts / "bomb.jsonl.gz").write_bytes(bomb(jsonl({**POST, "title": "Before the bomb"}), b" "))
    index = tmp_path / "index"
    result = ingest("--index", str(index), str(posts), str(SAMPLE_POSTS / "posts"))
    assert result.returncode == 1, result.stderr
    ratio = ("stopped reading: it inflates to more than 100 times its compressed size (SEARCHSVC_MAX_GZIP_RATIO), "
             "as a decompression bomb does")
    assert result.stderr.splitlines() == [
        f"{posts}/bomb.json.gz: {ratio}",
        f"{posts}/bomb.jsonl.gz:2: {ratio}",
        f"{posts}/huge.jsonl:2: too large: the line is longer than 50 MB (SEARCHSVC_MAX_RECORD_BYTES)",
    ]
    assert result.stdout == "Read 7 files: 7 new, 0 updated, 0 unchanged, 3 invalid, 0 skipped files\n"
    exported = run_cli("export", "--index", str(index))
    titles = sorted(json.loads(line)["title"] for line in exported.stdout.splitlines())
    assert titles[:3] == ["Before the bomb", "Fictional statement one", "Fictional statement two"]
    assert len(titles) == 7  # and the four sample posts


def test_a_record_just_under_the_bound_is_read_within_it(tmp_path):
    """The largest record allowed, of the text that takes the most memory: 49 MB with an emoji.
    --strict reads everything and, with the invalid record beside it, writes nothing (indexing a
    post that large is the writer's affair, and takes more)."""
    path = tmp_path / "large.jsonl"
    body = "\N{GRINNING FACE} " + "synthetic words " * 3_060_000
    path.write_text(json.dumps({**POST, "body": body}, ensure_ascii=False) + "\n" + json.dumps({"title": "No body"})
                    + "\n", encoding="utf-8")
    assert 48_000_000 < path.stat().st_size < 50_000_000
    result = ingest("--strict", "--index", str(tmp_path / "index"), str(path))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"{path}:2: missing required field 'body'",
                                          "Error: 1 invalid; nothing was written (--strict)"]


def test_a_file_that_does_not_fit_in_memory_loses_only_its_own_records(tmp_path):
    """Where the memory is less than the bounds need, the file that needs more is the problem,
    not the run: the other files' records are kept."""
    large = tmp_path / "large.jsonl"
    large.write_text(json.dumps({**POST, "body": "synthetic words " * 2_500_000}) + "\n", encoding="utf-8")
    small = tmp_path / "small.jsonl"
    small.write_bytes(jsonl(POST2))
    index = tmp_path / "index"
    result = ingest("--index", str(index), str(large), str(small), limit=150_000_000)
    assert result.returncode == 1
    assert result.stderr == (f"{large}: not enough memory to read it: its records may be up to 50 MB "
                             "(SEARCHSVC_MAX_RECORD_BYTES)\n")
    exported = run_cli("export", "--index", str(index))
    assert [json.loads(line)["title"] for line in exported.stdout.splitlines()] == ["Fictional statement two"]
