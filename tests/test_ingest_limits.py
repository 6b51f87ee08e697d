"""The bounds of an ingest: a record too large, a file too large to read whole, a decompression
bomb; each is one problem naming its place, and every other record is still ingested."""

from __future__ import annotations

import gzip
import json

import pytest

from searchsvc import settings
from searchsvc.errors import BadSetting

POST = {"title": "Fictional statement one", "author": "A. Example", "body": "Synthetic body text."}
POST2 = {"title": "Fictional statement two", "author": "B. Example", "body": "More synthetic text."}
BIG = {"title": "Fictional and long", "body": "word " * 500}  # 2.5 KB


def jsonl(*records: dict) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def titles(searchsvc) -> list[str]:
    return sorted(post["title"] for post in searchsvc.export())


@pytest.fixture
def small_records(monkeypatch):
    monkeypatch.setenv("SEARCHSVC_MAX_RECORD_BYTES", "2KB")


def bomb(prefix: bytes, megabytes: int) -> bytes:
    """A gzip file of `prefix` then `megabytes` MB of spaces: gzip members of 8 MB each, written
    once and repeated (a file of several members is one stream), so the test writes little."""
    member = gzip.compress(b" " * (8 << 20))
    return gzip.compress(prefix) + member * (megabytes // 8)


def test_a_line_over_the_bound_is_one_problem_and_the_lines_around_it_are_kept(searchsvc, write, small_records):
    path = write("a.jsonl", jsonl(POST, BIG, POST2))
    compressed = write("b.jsonl.gz", gzip.compress(jsonl(BIG).encode()))
    result = searchsvc("ingest", path, compressed)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{path}:2: too large: the line is longer than 2 KB (SEARCHSVC_MAX_RECORD_BYTES)",
        f"{compressed}:1: too large: the line is longer than 2 KB (SEARCHSVC_MAX_RECORD_BYTES)",
    ]
    assert result.stdout == "Read 2 files: 2 new, 0 updated, 0 unchanged, 2 invalid, 0 skipped files\n"
    assert titles(searchsvc) == ["Fictional statement one", "Fictional statement two"]


def test_a_line_of_exactly_the_bound_is_read(searchsvc, write, monkeypatch):
    line = json.dumps({**POST, "body": "x" * 1000})
    monkeypatch.setenv("SEARCHSVC_MAX_RECORD_BYTES", str(len(line)))
    result = searchsvc("ingest", write("a.jsonl", line + "\n" + line))  # the last without its newline
    assert result.exit_code == 0, result.output
    assert titles(searchsvc) == ["Fictional statement one"]


@pytest.mark.parametrize("name, content", [
    ("many.json", json.dumps([POST2, BIG])),
    ("rows.csv", "title,body\n" + "One,Body\n" * 300),
    ("post.md", "---\ntitle: Long\n---\n" + "word " * 500),
    ("page.txt", "Title\nSa, 12/29/2020 - 13:24 -- A. Example\n" + "word " * 500),
    ("many.json.gz", gzip.compress(json.dumps([POST2, BIG]).encode())),
])
def test_a_file_read_whole_over_the_bound_is_one_problem_naming_it(searchsvc, write, small_records, name, content):
    path = write(name, content)
    result = searchsvc("ingest", path, write("a.jsonl", jsonl(POST)))
    assert result.exit_code == 1
    once = " once decompressed" if name.endswith(".gz") else ""
    assert result.stderr == (f"{path}: too large to read whole: more than 2 KB (SEARCHSVC_MAX_RECORD_BYTES){once}; "
                             "split it, or write it as JSON Lines, which is read a line at a time\n")
    assert titles(searchsvc) == ["Fictional statement one"]


def test_a_decompression_bomb_is_stopped_and_the_records_before_it_kept(searchsvc, write):
    lines = write("bomb.jsonl.gz", bomb(jsonl(POST).encode(), 64))
    whole = write("bomb.json.gz", bomb(b"[", 64))
    result = searchsvc("ingest", lines, whole, write("b.jsonl", jsonl(POST2)))
    assert result.exit_code == 1
    ratio = ("stopped reading: it inflates to more than 100 times its compressed size (SEARCHSVC_MAX_GZIP_RATIO), "
             "as a decompression bomb does")
    assert result.stderr.splitlines() == [f"{lines}:2: {ratio}", f"{whole}: {ratio}"]
    assert titles(searchsvc) == ["Fictional statement one", "Fictional statement two"]


def test_the_ratio_is_a_setting(searchsvc, write, monkeypatch):
    monkeypatch.setenv("SEARCHSVC_MAX_GZIP_RATIO", "2000")  # more than deflate reaches: no cap at all
    result = searchsvc("ingest", write("spaces.jsonl.gz", bomb(jsonl(POST).encode(), 16)))
    assert result.exit_code == 0, result.output  # read to the end: 16 MB of spaces is a blank line
    assert titles(searchsvc) == ["Fictional statement one"]


@pytest.mark.parametrize("text, value", [("50MB", 50_000_000), ("2 kb", 2_000), ("1GB", 10**9), ("512", 512)])
def test_sizes_are_read_in_powers_of_1000(text, value):
    assert settings.MAX_RECORD_BYTES.value(text) == value


@pytest.mark.parametrize("variable, value, message", [
    ("SEARCHSVC_MAX_RECORD_BYTES", "50MiB", "SEARCHSVC_MAX_RECORD_BYTES must be a size such as '50MB' (B, KB, MB "
     "or GB), got '50MiB'"),
    ("SEARCHSVC_MAX_RECORD_BYTES", "0", "SEARCHSVC_MAX_RECORD_BYTES must be a size such as '50MB' (B, KB, MB or GB), "
     "got '0'"),
    ("SEARCHSVC_MAX_GZIP_RATIO", "1.5", "SEARCHSVC_MAX_GZIP_RATIO must be a whole number (1 or more), got '1.5'"),
])
def test_a_bad_bound_stops_the_ingest_before_it_reads(searchsvc, write, monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    result = searchsvc("ingest", write("a.jsonl", jsonl(POST)))
    assert result.exit_code == 1
    assert result.stderr == f"Error: {message}\n"
    with pytest.raises(BadSetting):
        getattr(settings, variable.removeprefix("SEARCHSVC_")).from_environ()


def test_records_of_millions_of_tiny_values_are_refused_before_they_are_parsed(searchsvc, write):
    """Each "[]" or "ab" takes some 20 times its text once parsed: a record of a million of them
    is refused, counted in its text, so no shape of 50 MB can take a GB."""
    many = '{"title": "Many", "body": "b", "x": [' + "[]," * 1_000_000 + "[]]}"
    lines = write("a.jsonl", jsonl(POST) + many + "\n" + jsonl(POST2))
    whole = write("b.json", "[" + many + "]")
    cells = write("c.csv", "title,body\nOne,Body\n" + "ab," * 1_000_000 + "\nTwo,Body\n")
    result = searchsvc("ingest", lines, whole, cells)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{lines}:2: too large: more than 1,000,000 strings, lists and objects in one record",
        f"{whole}: too large to read whole: more than 1,000,000 strings, lists and objects; write it as JSON "
        "Lines, which is read a line at a time",
        f"{cells}:3: too large: line 3 has more than 1,000,000 fields; the row is not read",
    ]
    assert titles(searchsvc) == ["Fictional statement one", "Fictional statement two", "One", "Two"]


def test_a_listing_page_and_front_matter_have_bounds_of_their_own(searchsvc, write):
    """A line takes up to 50 times its text (a str each), and YAML some 100 times: a listing page
    is at most 5 MB, a front matter 1 MB; YAML aliases, which repeat a value by reference, are not
    read at all (a few lines of them nest into billions of values)."""
    page = write("page.txt", "Title\nSa, 12/29/2020 - 13:24 -- A. Example\n" + "ab\n" * 1_700_000)
    front = write("a.md", "---\ntitle: A\ntags:\n" + "- a\n" * 250_001 + "---\nBody\n")
    aliases = write("b.md", "---\ntitle: A\nx: &x [a, a, a]\ny: [*x, *x, *x]\n---\nBody\n")
    result = searchsvc("ingest", page, front, aliases)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{page}: too large to read whole: more than 5 MB for a listing page; split it",
        f"{front}:1: the YAML front matter is longer than 1 MB: it is for the title, date, author and such (the "
        "post's text goes below it)",
        f"{aliases}:4: invalid YAML front matter: aliases (*name) are not read in front matter",
    ]
