"""What an ingest run does to the index: duplicates, re-ingest, updates, --strict, --rebuild,
one writer at a time, and the export round trip."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PRESIDENTIAL, SAMPLE_POSTS, SEED_LISTING, Searchsvc, run_cli

from searchsvc import settings
from searchsvc.cli import cli
from searchsvc.index.schema import SCHEMA_VERSION
from searchsvc.index.store import IndexStore


def posts(n: int, start: int = 0, **extra) -> str:
    """Synthetic posts by fictional authors."""
    return "".join(
        json.dumps({"id": f"p{i}", "title": f"Synthetic post {i}", "date": f"2020-01-{1 + i % 28:02d}",
                    "author": "Fictional Author", "body": f"Body number {i}.", **extra}) + "\n"
        for i in range(start, start + n)
    )


def toc_files(index_dir: Path) -> list[str]:
    marker = IndexStore(index_dir).marker()
    return sorted(p.name for p in (index_dir / marker.generation).glob("*.toc"))


def test_same_id_twice_in_one_run_last_wins(searchsvc, write):
    a = write("a.jsonl", json.dumps({"id": "x", "title": "First", "body": "one"}) + "\n")
    b = write("b.jsonl", json.dumps({"id": "y", "title": "Other", "body": "two"}) + "\n"
                         + json.dumps({"id": "x", "title": "Second", "body": "three"}) + "\n")
    result = searchsvc("ingest", a, b)
    assert result.exit_code == 0
    assert result.stderr == f"{b}:2: warning: id 'x' also at {a}:1; the last one wins\n"
    assert result.stdout == "Read 2 files: 2 new, 0 updated, 0 unchanged, 0 invalid, 0 skipped files\n"
    assert [(p["id"], p["title"]) for p in searchsvc.export()] == [("x", "Second"), ("y", "Other")]


def test_reingesting_unchanged_posts_changes_nothing(searchsvc, index_dir):
    first = searchsvc("ingest", SAMPLE_POSTS / "posts")
    assert first.stdout == "Read 4 files: 4 new, 0 updated, 0 unchanged, 0 invalid, 0 skipped files\n"
    before, tocs = searchsvc.export(), toc_files(index_dir)
    again = searchsvc("ingest", SAMPLE_POSTS / "posts")
    assert again.exit_code == 0
    assert again.stdout == "Read 4 files: 0 new, 0 updated, 4 unchanged, 0 invalid, 0 skipped files\n"
    assert toc_files(index_dir) == tocs  # no commit at all
    assert searchsvc.export() == before


def test_changed_posts_are_updated_in_place(searchsvc, write):
    searchsvc("ingest", write("a.jsonl", posts(3)))
    changed = posts(1, 1).replace("Body number 1.", "Corrected body.")
    result = searchsvc("ingest", write("b.jsonl", posts(1, 0) + changed + posts(2, 3)))
    assert result.stdout == "Read 1 file: 2 new, 1 updated, 1 unchanged, 0 invalid, 0 skipped files\n"
    exported = {p["id"]: p["body"] for p in searchsvc.export()}
    assert exported == {"p0": "Body number 0.", "p1": "Corrected body.", "p2": "Body number 2.",
                        "p3": "Body number 3.", "p4": "Body number 4."}
    assert searchsvc.info()["posts"] == 5


def test_strict_writes_nothing_when_anything_is_invalid(searchsvc, write):
    searchsvc("ingest", write("a.jsonl", posts(2)))
    before = searchsvc.export()
    bad = write("b.jsonl", posts(2, 5) + '{"title": "no body"}\n')
    result = searchsvc("ingest", "--strict", bad)
    assert result.exit_code == 1
    assert result.stderr == (f"{bad}:3: missing required field 'body'\n"
                             "Error: 1 invalid; nothing was written (--strict)\n")
    assert searchsvc.export() == before
    ok = searchsvc("ingest", "--strict", write("c.jsonl", posts(2, 5)))
    assert ok.exit_code == 0 and searchsvc.info()["posts"] == 4


def test_rebuild_replaces_the_index_and_old_readers_keep_working(searchsvc, write, index_dir):
    searchsvc("ingest", write("a.jsonl", posts(5)))
    old = IndexStore(index_dir).open()
    old_searcher = old.searcher()
    result = searchsvc("ingest", "--rebuild", write("b.jsonl", posts(2, 3)))
    assert result.exit_code == 0
    assert result.stdout == ("Rebuilt index from 1 file: 0 new, 0 updated, 2 unchanged, "
                             "3 removed, 0 invalid, 0 skipped files\n")
    assert [p["id"] for p in searchsvc.export()] == ["p3", "p4"]
    # A searcher opened before the swap still reads the old generation in full.
    assert old_searcher.doc_count() == 5
    assert sorted(d["id"] for d in old_searcher.documents()) == ["p0", "p1", "p2", "p3", "p4"]
    old_searcher.close()
    generations = sorted(p.name for p in index_dir.iterdir() if p.name.startswith("g"))
    # current and previous only, each with its manifest
    assert generations == ["g000001", "g000001.manifest.json", "g000002", "g000002.manifest.json"]
    searchsvc("ingest", "--rebuild", write("c.jsonl", posts(1)))
    generations = sorted(p.name for p in index_dir.iterdir() if p.name.startswith("g"))
    assert generations == ["g000002", "g000002.manifest.json", "g000003", "g000003.manifest.json"]


def test_export_then_rebuild_round_trips_exactly(searchsvc, write, tmp_path):
    records = [
        {"title": "Offset date", "date": "2020-12-29T13:24:00+03:00", "author": "A. Example",
         "body": "Body one.\n\nSecond paragraph with “quotes” and ünïcode.", "url": "https://example.org/1"},
        {"title": "Undated", "body": "No date, no author.", "lang": "en", "rating": 3.5},
        {"id": "given-id", "title": "Day only", "date": "March 9, 2021", "body": "Body <b>three</b>."},
    ]
    searchsvc("ingest", write("a.jsonl", "".join(json.dumps(r) + "\n" for r in records)),
              SAMPLE_POSTS / "posts")
    first = searchsvc("export").stdout
    exported = tmp_path / "export.jsonl"
    exported.write_text(first, encoding="utf-8")
    result = searchsvc("ingest", "--rebuild", exported)
    assert result.stdout.startswith("Rebuilt index from 1 file: 0 new, 0 updated, 7 unchanged, 0 removed")
    assert searchsvc("export").stdout == first
    # And into a brand-new index elsewhere.
    other = run_cli("ingest", "--index", str(tmp_path / "other"), str(exported))
    assert other.returncode == 0, other.stderr
    assert run_cli("export", "--index", str(tmp_path / "other")).stdout == first


def test_an_api_export_read_back_in_is_unchanged(searchsvc, write, tmp_path, client_for):
    """/api/export adds each match's "score" (null when sorted by date): the search's ranking, not
    post data. It used to make every post "updated", with its score stored in it."""
    searchsvc("ingest", write("a.jsonl", posts(3)), SAMPLE_POSTS / "posts")
    before = searchsvc("export").stdout
    client = client_for(searchsvc.index)
    for query in ("", "q=synthetic"):
        exported = tmp_path / "api-export.jsonl"
        exported.write_bytes(client.get(f"/api/export?format=jsonl&{query}").get_data())
        scores = {type(json.loads(line)["score"]) for line in exported.read_text(encoding="utf-8").splitlines()}
        assert scores == ({type(None)} if not query else {float})
        result = searchsvc("ingest", exported)
        assert result.exit_code == 0, result.output
        count = 7 if not query else 3
        assert result.stdout == f"Read 1 file: 0 new, 0 updated, {count} unchanged, 0 invalid, 0 skipped files\n"
        assert result.stderr == (f"{exported}: note: {count} records have a top-level 'score', the ranking a "
                                 "search export adds: it is not stored as post data\n")
        assert searchsvc("export").stdout == before


def test_a_score_that_is_text_or_a_list_is_post_data(searchsvc, write):
    path = write("a.jsonl", "".join(json.dumps({"id": f"s{i}", "title": "T", "body": "B", "score": score}) + "\n"
                                    for i, score in enumerate(["4 stars", [1, 2], 3.5])))
    result = searchsvc("ingest", path)
    assert result.exit_code == 0
    assert result.stderr == (f"{path}: note: 1 record has a top-level 'score', the ranking a search export "
                             "adds: it is not stored as post data\n")
    assert [p.get("score") for p in searchsvc.export()] == ["4 stars", [1, 2], None]


# A synthetic post by a fictional author, and a blog listing showing its start, as the seed's
# listing shows posts (../shared/seed/): title, date line, the first lines of the body.
FULL_POST = {"title": "A fictional river report", "date": "2021-03-09T10:00", "author": "Ada Fictional",
             "body": "The river rose two metres overnight, and the\nold bridge was closed at dawn.\n\n"
                     "A second paragraph that only the post itself carries.", "tags": ["water"]}
LISTING = """Fictional River Blog

A fictional river report
Sa, 03/09/2021 - 10:00 -- Ada Fictional
The river rose two metres overnight, and the old bridge…
Read more

A second fictional post
Sa, 03/10/2021 - 09:00 -- Ada Fictional
Only the listing carries this one.

Subscribe to Fictional River Blog
"""


def test_a_listing_teaser_never_replaces_a_longer_body(searchsvc, write, tmp_path):
    """Re-reading a scraped listing used to replace a full post by its teaser ("1 updated")."""
    full = write("full.jsonl", json.dumps(FULL_POST) + "\n")
    page = write("page.txt", LISTING)
    searchsvc("ingest", full)
    [stored] = searchsvc.export()
    result = searchsvc("ingest", page)
    assert result.exit_code == 0, result.output
    assert result.stdout == ("Read 1 file: 1 new, 0 updated, 0 unchanged, 1 teaser kept aside, 0 invalid, "
                             "0 skipped files\n")
    assert result.stderr == (f"{page}:3: warning: post {stored['id']!r} is a teaser of the longer body in the "
                             "index; kept the longer body\n")
    assert [p for p in searchsvc.export() if p["id"] == stored["id"]] == [stored]
    # In one run too, the teaser read after the post, and in a rebuild.
    for options in ((), ("--rebuild",)):
        other = Searchsvc(tmp_path / f"other{len(options)}")
        result = other("ingest", *options, full, page)
        assert result.stderr == (f"{page}:3: warning: post {stored['id']!r} is a teaser of the longer body at "
                                 f"{full}:1; kept the longer body\n")
        assert "2 new, 0 updated, 0 unchanged, 1 teaser kept aside" in result.stdout
        assert [p for p in other.export() if p["id"] == stored["id"]] == [stored]


def test_a_teaser_never_replaces_a_longer_body_but_a_shorter_post_does(searchsvc, write):
    """A listing's body is a teaser even when its words differ from the stored post (issue 15: a
    teaser never replaces a longer body); a shorter record from any other format is a correction."""
    searchsvc("ingest", write("full.jsonl", json.dumps(FULL_POST) + "\n"))
    corrected = write("page.txt", LISTING.replace("two metres", "three metres"))
    result = searchsvc("ingest", corrected)
    assert result.stdout == ("Read 1 file: 1 new, 0 updated, 0 unchanged, 1 teaser kept aside, 0 invalid, "
                             "0 skipped files\n")
    bodies = {p["title"]: p["body"] for p in searchsvc.export()}
    assert bodies["A fictional river report"] == FULL_POST["body"]
    shorter = write("short.jsonl", json.dumps({**FULL_POST, "body": "The river rose two metres overnight."}) + "\n")
    result = searchsvc("ingest", shorter)
    assert result.stdout == "Read 1 file: 0 new, 1 updated, 0 unchanged, 0 invalid, 0 skipped files\n"
    bodies = {p["title"]: p["body"] for p in searchsvc.export()}
    assert bodies["A fictional river report"] == "The river rose two metres overnight."
    # A teaser longer than the stored body (the post grew since) is applied.
    longer = write("longer.txt", LISTING.replace("the old bridge…", "the old bridge held, and the new one too, "
                                                                     "and the ferry ran all night long as well"))
    result = searchsvc("ingest", longer)
    assert "1 updated" in result.stdout and "kept aside" not in result.stdout


def test_the_seed_listing_after_its_posts_changes_nothing(searchsvc):
    """The sample posts carry the same text as the seed listing: nothing to keep, nothing to update."""
    searchsvc("ingest", SAMPLE_POSTS / "posts")
    before = searchsvc.export()
    result = searchsvc("ingest", SEED_LISTING)
    assert result.stdout == "Read 1 file: 0 new, 0 updated, 4 unchanged, 0 invalid, 0 skipped files\n"
    assert searchsvc.export() == before


def test_export_to_a_file(searchsvc, tmp_path):
    searchsvc("ingest", SAMPLE_POSTS / "posts")
    target = tmp_path / "out.jsonl"
    result = searchsvc("export", "--output", target)
    assert result.exit_code == 0
    assert result.stderr == f"Exported 4 posts to {target}\n"
    assert target.read_text(encoding="utf-8") == searchsvc("export").stdout


def test_delete_known_and_unknown_ids(searchsvc, write):
    searchsvc("ingest", write("a.jsonl", posts(3)))
    result = searchsvc("delete", "p1", "nope", "p2")
    assert result.exit_code == 1
    assert result.stdout == "Deleted 2 posts, 1 not found\n"
    assert result.stderr == "not found: nope\n"
    assert [p["id"] for p in searchsvc.export()] == ["p0"]
    assert searchsvc("delete", "p0").exit_code == 0
    assert searchsvc.export() == []


def test_second_writer_waits_then_fails_with_index_busy(searchsvc, write, index_dir):
    searchsvc("ingest", write("a.jsonl", posts(1)))
    store = IndexStore(index_dir)
    path = write("b.jsonl", posts(1, 1))
    with store.locked(wait=0):  # the lock another process would hold while it writes
        started = time.monotonic()
        busy = run_cli("ingest", "--wait", "1", "--index", str(index_dir), path)
        waited = time.monotonic() - started
    assert busy.returncode == 1
    assert busy.stderr == (f"Error: index busy: another process is writing to {index_dir} "
                           "(waited 1 s; try again later or give a longer --wait)\n")
    assert waited >= 1
    assert [p["id"] for p in searchsvc.export()] == ["p0"]
    assert searchsvc("ingest", path).exit_code == 0  # no stale lock left behind


def test_second_writer_proceeds_when_the_first_finishes(searchsvc, write, index_dir):
    searchsvc("ingest", write("a.jsonl", posts(1)))
    path = write("b.jsonl", posts(1, 1))
    with IndexStore(index_dir).locked(wait=0):
        waiting = subprocess.Popen(
            [sys.executable, "-m", "searchsvc", "ingest", "--wait", "30", "--index", str(index_dir), path],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        assert waiting.poll() is None  # still waiting for the lock
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    assert out == "Read 1 file: 1 new, 0 updated, 0 unchanged, 0 invalid, 0 skipped files\n"


@pytest.mark.slow  # real processes: kept out of the fast tier, run by CI
def test_killed_rebuild_leaves_the_old_index_untouched(searchsvc, index_dir, tmp_path):
    searchsvc("ingest", SAMPLE_POSTS / "posts")
    before = searchsvc("export").stdout
    proc = subprocess.Popen(
        [sys.executable, "-m", "searchsvc", "ingest", "--rebuild", "--index", str(index_dir),
         str(PRESIDENTIAL)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    # Kill once the new generation exists and the writer has started putting segments in it.
    while time.monotonic() < deadline:
        fresh = index_dir / "g000002"
        if fresh.exists() and any(fresh.iterdir()):
            break
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert searchsvc("export").stdout == before
    assert searchsvc.info()["generation"] == "g000001"
    again = searchsvc("ingest", SAMPLE_POSTS / "posts")
    assert again.exit_code == 0
    assert not (index_dir / "g000002").exists()  # the half-built generation is cleaned up


def test_foreign_directory_is_never_opened_or_written(searchsvc, index_dir, write):
    index_dir.mkdir()
    (index_dir / "thesis.docx").write_bytes(b"precious")
    for args in (("ingest", write("a.jsonl", posts(1))), ("info",), ("export",), ("delete", "x")):
        result = searchsvc(*args)
        assert result.exit_code == 1
        assert result.stderr.endswith(
            f"Error: {index_dir} is not a searchsvc index (it has no searchsvc-index.json; it holds "
            "thesis.docx (a file)); refusing to open it: choose another --index directory\n")
    assert sorted(p.name for p in index_dir.iterdir()) == ["thesis.docx"]


def test_missing_index(searchsvc, index_dir):
    for command in ("info", "export"):
        result = searchsvc(command)
        assert result.exit_code == 1
        assert result.stderr == f"Error: no index at {index_dir}: create one with `searchsvc ingest PATH...`\n"


def test_other_schema_version_asks_for_a_rebuild(searchsvc, index_dir, tmp_path):
    searchsvc("ingest", SAMPLE_POSTS / "posts")
    marker = index_dir / "searchsvc-index.json"
    data = json.loads(marker.read_text())
    marker.write_text(json.dumps({**data, "schema_version": 0}))
    result = searchsvc("info")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: the index at {index_dir} was built with schema version 0, this searchsvc uses "
        f"version {SCHEMA_VERSION}: rebuild it with `searchsvc ingest --rebuild PATH...` (or `searchsvc export` "
        "first to keep its posts)\n")
    # Export still works, so the posts can be carried over.
    exported = tmp_path / "old.jsonl"
    assert searchsvc("export", "-o", exported).exit_code == 0
    assert searchsvc("ingest", "--rebuild", exported).exit_code == 0
    assert searchsvc.info()["schema_version"] == SCHEMA_VERSION and searchsvc.info()["posts"] == 4


def test_info_text_and_json(searchsvc, index_dir):
    searchsvc("ingest", SAMPLE_POSTS / "posts")
    info = searchsvc.info()
    assert {k: info[k] for k in ("location", "generation", "schema_version", "posts", "undated",
                                 "date_range", "authors")} == {
        "location": str(index_dir.resolve()), "generation": "g000001", "schema_version": SCHEMA_VERSION,
        "posts": 4, "undated": 0,
        "date_range": {"first": "2020-09-29T16:04:00", "last": "2020-12-29T13:24:00"},
        "authors": {"Kanat": 4},
    }
    assert info["size_bytes"] > 0 and info["last_update"].endswith("Z")
    lines = searchsvc("info").stdout.splitlines()
    assert lines[0] == f"Index:          {index_dir.resolve()} (generation g000001)"
    assert lines[2:5] == ["Posts:          4 (0 undated)", "Dates:          2020-09-29 to 2020-12-29",
                          "Authors:        1: Kanat (4)"]


def test_progress_bar_only_on_a_terminal_and_not_when_quiet(tmp_path):
    def stderr_on_a_terminal(*options: str) -> str:
        leader, follower = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "searchsvc", "ingest", *options, "--index", str(tmp_path / "ix"),
             str(SAMPLE_POSTS / "posts")], stdout=subprocess.DEVNULL, stderr=follower)
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait(timeout=60)
        os.close(leader)
        return b"".join(chunks).decode()

    assert "Reading" in stderr_on_a_terminal()
    assert "Reading" not in stderr_on_a_terminal("--quiet")


README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_has_help_with_an_example_and_is_in_the_readme(searchsvc, command):
    result = searchsvc.runner.invoke(cli, [command, "-h"])
    assert result.exit_code == 0
    assert "Example:" in result.output and f"searchsvc {command}" in result.output
    assert f"### `searchsvc {command}" in README  # a section of its own


@pytest.mark.parametrize("setting", settings.ALL, ids=lambda s: s.envvar)
def test_every_setting_is_in_the_readme_with_its_default(setting):
    rows = [line for line in README.splitlines() if line.startswith("|") and f"`{setting.envvar}`" in line]
    assert rows, f"{setting.envvar} is not in a table of the README"
    shown = f"{setting.default:g}" if isinstance(setting.default, float) else str(setting.default)
    assert any(f"`{shown}`" in row or (not shown and "| off |" in row) for row in rows), (setting.envvar, rows)


def test_python_dash_m_works():
    result = run_cli("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: searchsvc [OPTIONS] COMMAND [ARGS]...")


@pytest.mark.parametrize("command", [["search", "uyghur", "--per-page", "100"], ["export"]])
def test_output_cut_short_by_the_reader_is_not_an_error(tmp_path, command):
    """`searchsvc search ... | head -1` and `searchsvc export | head -1`: exit 0, nothing on stderr."""
    index = tmp_path / "index"
    assert run_cli("ingest", "--index", str(index), str(SAMPLE_POSTS)).returncode in (0, 1)
    shell = (f"{sys.executable} -m searchsvc {' '.join(command)} --index {index} | head -c 20 >/dev/null; "
             "exit ${PIPESTATUS[0]}")
    done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")
