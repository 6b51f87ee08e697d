"""Index folders, snapshots and replicas prepared by someone else (issue 22's second review).

1. Symbolic links planted where searchsvc writes its own files (the marker's and a manifest's
   temporary files, the write lock, Whoosh's lock, the fetch state's lock) never make a command
   write, truncate or create anything outside the folder; a folder holding files searchsvc did
   not make is not "empty" to create an index in.
2. A marker or manifest that is a link to /dev/zero or a FIFO is reported as damage, at once:
   never read until memory runs out, never waited on.
3. A table of contents whose segment list was edited (a document count or deletions that the
   segment's files cannot hold, every checksum recomputed) is damage to every reader: /healthz,
   the API and the CLI answer index_damaged instead of "ok", minutes of CPU or a traceback.

Every hostile folder is built here, and every command is the real one (CliRunner or a process,
the slow or hanging ones bounded by a timeout); the victims are files beside the folder, whose
bytes are compared before and after.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SYNTHETIC
from whoosh.filedb.structfile import StructFile

from searchsvc.cli import cli
from searchsvc.index import manifest as manifests
from searchsvc.index.store import MARKER
from searchsvc.index.toc import toc_name
from searchsvc.ingest.follow import LOCK_FILE, STATE_FILE

BOUND = 60  # seconds a command on a hostile folder may take before it counts as hanging


def run(*args: str | os.PathLike[str]):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def run_process(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    """`searchsvc ARGS` in a process of its own, stopped after BOUND seconds (a hang fails the test)."""
    return subprocess.run([sys.executable, "-m", "searchsvc", *map(str, args)], capture_output=True, text=True,
                          timeout=BOUND, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """An index of the synthetic posts, copied by each test that changes it."""
    root = tmp_path_factory.mktemp("built")
    posts = root / "posts.jsonl"
    posts.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in SYNTHETIC), encoding="utf-8")
    result = run("ingest", "--index", root / "index", posts)
    assert result.exit_code == 0, result.output
    return root / "index"


@pytest.fixture
def posts(built) -> Path:
    return built.parent / "posts.jsonl"


@pytest.fixture
def index(built, tmp_path) -> Path:
    copy = tmp_path / "index"
    shutil.copytree(built, copy)
    return copy


class Victims:
    """Files outside the folder under attack, and paths that must not come to exist."""

    def __init__(self, where: Path):
        self.where = where
        where.mkdir(exist_ok=True)
        self.files = {name: where / name for name in ("victim1.txt", "victim2.txt", "victim3.txt")}
        for name, path in self.files.items():
            path.write_bytes(f"VICTIM {name}\n".encode())
        self.absent = [where / "lock-made", where / "writelock-made", where / "fetched-lock-made"]

    def assert_untouched(self) -> None:
        for name, path in self.files.items():
            assert path.read_bytes() == f"VICTIM {name}\n".encode(), f"{path} was rewritten"
        for path in self.absent:
            assert not os.path.lexists(path), f"{path} was created"


def plant(folder: Path, victims: Victims) -> None:
    """The review's replica: hidden links where searchsvc writes the marker's and manifest's
    temporary files and its lock."""
    folder.mkdir(exist_ok=True)
    (folder / f".{MARKER}.tmp").symlink_to(victims.files["victim1.txt"])
    (folder / ".g000001.manifest.json.tmp").symlink_to(victims.files["victim2.txt"])
    (folder / ".lock").symlink_to(victims.absent[0])


PLANTED = sorted([f".{MARKER}.tmp", ".g000001.manifest.json.tmp", ".lock"])


def assert_refused_planted(output: str, folder: Path) -> None:
    assert f"{folder} is not a searchsvc index" in output
    for name in PLANTED:
        assert f"{name} (a symbolic link)" in output
    assert sorted(os.listdir(folder)) == PLANTED  # nothing added, nothing replaced
    assert all((folder / name).is_symlink() for name in PLANTED)


# -- 1. links planted where searchsvc writes -------------------------------------------------------

def test_publish_into_a_replica_with_planted_links_writes_nothing_outside(built, tmp_path):
    victims, replica = Victims(tmp_path / "outside"), tmp_path / "replica"
    plant(replica, victims)
    result = run("publish", "--index", built, replica)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"Error: {replica}: {replica} is not a searchsvc index")
    assert_refused_planted(result.stderr, replica)
    victims.assert_untouched()


def test_ingest_and_restore_into_a_folder_with_planted_links_write_nothing_outside(built, posts, tmp_path):
    victims, folder = Victims(tmp_path / "outside"), tmp_path / "folder"
    plant(folder, victims)
    result = run("ingest", "--index", folder, posts)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"Error: {folder} is not a searchsvc index")
    assert_refused_planted(result.stderr, folder)

    snap = tmp_path / "snap"
    assert run("snapshot", "--index", built, snap).exit_code == 0
    result = run("restore", "--index", folder, snap)
    assert result.exit_code == 1, result.output
    assert_refused_planted(result.stderr, folder)
    victims.assert_untouched()


def test_a_folder_with_other_hidden_files_is_not_taken_for_empty(posts, tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / ".gitignore").write_text("*\n")
    result = run("ingest", "--index", folder, posts)
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {folder} is not a searchsvc index (it has no {MARKER}; it holds .gitignore "
                             "(a file)); refusing to open it: choose another --index directory\n")
    assert os.listdir(folder) == [".gitignore"]


def test_our_own_leftovers_still_count_as_empty(posts, tmp_path):
    """A lock left by a first ingest that failed, and a killed publish's partial folder, are ours."""
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / ".lock").write_bytes(b"")
    (folder / ".g000001.partial").mkdir()
    result = run("ingest", "--index", folder, posts)
    assert result.exit_code == 0, result.output
    assert f"{len(SYNTHETIC)} new" in result.stdout
    assert not (folder / ".g000001.partial").exists()


def test_an_index_whose_lock_is_a_link_is_not_written(index, posts, tmp_path):
    victims = Victims(tmp_path / "outside")
    (index / ".lock").unlink()
    (index / ".lock").symlink_to(victims.absent[0])
    before = sorted(os.listdir(index))
    result = run("ingest", "--index", index, "--rebuild", posts)
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {index}/.lock is a symbolic link, which searchsvc never makes: refusing to "
                             f"write into {index} (remove it if the folder is yours)\n")
    assert sorted(os.listdir(index)) == before
    victims.assert_untouched()


def test_links_left_where_an_index_writes_its_temporary_files_are_removed_not_followed(index, posts, tmp_path):
    victims = Victims(tmp_path / "outside")
    (index / f".{MARKER}.tmp").symlink_to(victims.files["victim1.txt"])
    (index / ".g000001.manifest.json.tmp").symlink_to(victims.files["victim2.txt"])
    (index / ".g000002.manifest.json.tmp").symlink_to(victims.files["victim3.txt"])
    extra = tmp_path / "more.jsonl"
    extra.write_text(json.dumps({"id": "syn-extra", "title": "Extra", "body": "A synthetic extra post."}) + "\n")
    result = run("ingest", "--index", index, extra)  # a commit: its manifest
    assert result.exit_code == 0, result.output
    result = run("ingest", "--index", index, "--rebuild", extra)  # a new generation: its manifest, the marker
    assert result.exit_code == 0, result.output
    victims.assert_untouched()
    for name in (MARKER, "g000002.manifest.json"):
        assert (index / name).is_file() and not (index / name).is_symlink()
    assert not [p for p in index.iterdir() if p.name.endswith(".tmp")]
    assert json.loads(run("info", "--json", "--index", index).stdout)["posts"] == 1


def test_a_generation_whose_whoosh_lock_is_a_link_is_not_written(index, tmp_path):
    victims = Victims(tmp_path / "outside")
    lock = index / "g000001" / "MAIN_WRITELOCK"
    lock.unlink()
    lock.symlink_to(victims.absent[1])
    extra = tmp_path / "more.jsonl"
    extra.write_text(json.dumps({"id": "syn-extra", "title": "Extra", "body": "A synthetic extra post."}) + "\n")
    for command in (("ingest", extra), ("delete", "syn-run")):
        result = run(*command, "--index", index)
        assert result.exit_code == 1, result.output
        assert result.stderr.endswith(f"Error: {lock} is a symbolic link, which searchsvc never makes: refusing to "
                                      f"write into {index / 'g000001'} (remove it if the folder is yours)\n")
    victims.assert_untouched()
    assert json.loads(run("info", "--json", "--index", index).stdout)["posts"] == len(SYNTHETIC)


def test_the_fetch_states_lock_is_never_followed(index, tmp_path, site):
    victims = Victims(tmp_path / "outside")
    (index / LOCK_FILE).symlink_to(victims.absent[2])
    result = run("ingest", "--index", index, "--delay", "0.1", "--timeout", "0.5", site.base + "/atom.xml")
    assert result.exit_code == 0, result.output
    assert "4 new" in result.stdout
    assert (f"{index}/{LOCK_FILE} is a symbolic link, which searchsvc never makes: the fetch state was not saved "
            "(the next run fetches every page in full)") in result.stderr
    victims.assert_untouched()
    assert not (index / STATE_FILE).exists()


# -- 2. small files read within bounds ---------------------------------------------------------------

@pytest.fixture
def snapshot(built, tmp_path) -> Path:
    snap = tmp_path / "snap"
    result = run("snapshot", "--index", built, snap)
    assert result.exit_code == 0, result.output
    return snap


def test_a_snapshot_whose_marker_is_dev_zero_is_damaged_not_read_forever(snapshot, index):
    (snapshot / MARKER).unlink()
    (snapshot / MARKER).symlink_to("/dev/zero")
    done = run_process("restore", "--index", index, snapshot)
    assert done.returncode == 1, done.stderr
    assert done.stderr == (f"Error: the snapshot at {snapshot} is damaged: {snapshot / MARKER} is damaged or not "
                           "a searchsvc marker (it is a symbolic link, which searchsvc never makes)\n")
    assert run("info", "--json", "--index", index).exit_code == 0  # the index restored into is untouched


def test_a_marker_that_is_huge_or_a_fifo_is_damage(index, tmp_path):
    (index / MARKER).unlink()
    os.mkfifo(index / MARKER)
    done = run_process("search", "--index", index, "pamphlet")
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(f"Error: {index / MARKER} is damaged or not a searchsvc marker (it is not a "
                                  "regular file)")
    (index / MARKER).unlink()
    with open(index / MARKER, "wb") as f:
        f.truncate(1 << 30)  # a sparse GB: refused by its size, not read
    done = run_process("search", "--index", index, "pamphlet")
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(f"Error: {index / MARKER} is damaged or not a searchsvc marker (it is larger "
                                  "than 65,536 bytes, more than searchsvc ever writes there)")


def _fifo_manifest(folder: Path) -> Path:
    path = manifests.path_of(folder, "g000001")
    path.unlink()
    os.mkfifo(path)
    return path


def test_a_manifest_that_is_a_fifo_is_damage_to_check_restore_search_and_the_server(snapshot, index):
    fifo = _fifo_manifest(snapshot)
    said = f"{fifo} is damaged (not a manifest searchsvc wrote: it is not a regular file)"
    done = run_process("check", "--index", snapshot)
    assert done.returncode == 1
    assert done.stderr.startswith(f"damaged: {said}\n")
    done = run_process("restore", "--index", index, snapshot)
    assert done.returncode == 1
    assert done.stderr == f"Error: the snapshot at {snapshot} is damaged: {said}\n"
    done = run_process("search", "--index", snapshot, "pamphlet")
    assert done.returncode == 1
    assert done.stderr == f"Error: {said}\n"
    # The server's app, as every worker makes it: /healthz answers at once that it cannot serve.
    script = ("import sys, json\nfrom searchsvc.web import create_app\n"
              "client = create_app({'INDEX': sys.argv[1], 'TESTING': True}).test_client()\n"
              "for url in ('/healthz', '/api/search?q=pamphlet'):\n"
              "    answer = client.get(url)\n"
              "    error = answer.get_json()['error']\n"
              "    print(answer.status_code, error['code'], error['message'])\n")
    done = subprocess.run([sys.executable, "-c", script, str(snapshot)], capture_output=True, text=True,
                          timeout=BOUND)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"503 index_damaged {said}\n" * 2


def test_a_huge_manifest_is_refused_by_its_size(index):
    path = manifests.path_of(index, "g000001")
    with open(path, "r+b") as f:
        f.truncate((64 << 20) + 1)  # sparse: costs no disk
    done = run_process("check", "--index", index)
    assert done.returncode == 1
    assert done.stderr.startswith(f"damaged: {path} is damaged (not a manifest searchsvc wrote: it is larger than "
                                  "67,108,864 bytes, more than searchsvc ever writes there)\n")


def test_a_fetch_state_that_is_a_fifo_or_a_link_is_passed_over_with_a_warning(index, tmp_path, site):
    os.mkfifo(index / STATE_FILE)
    done = run_process("ingest", "--index", index, "--delay", "0.1", "--timeout", "0.5", site.base + "/atom.xml")
    assert done.returncode == 0, done.stderr
    assert (f"{index / STATE_FILE}: warning: not read (it is not a regular file); every page is fetched in full"
            in done.stderr)
    assert json.loads((index / STATE_FILE).read_text())["version"] == 2  # written afresh, as a file
    outside = tmp_path / "state-outside.json"
    shutil.move(index / STATE_FILE, outside)
    (index / STATE_FILE).symlink_to(outside)
    kept = outside.read_bytes()
    done = run_process("ingest", "--index", index, "--delay", "0.1", "--timeout", "0.5", site.base + "/atom.xml")
    assert done.returncode == 0, done.stderr
    assert (f"{index / STATE_FILE}: warning: not read (it is a symbolic link, which searchsvc never makes); "
            "every page is fetched in full") in done.stderr
    assert outside.read_bytes() == kept
    assert not (index / STATE_FILE).is_symlink()


# -- 3. a forged table of contents ---------------------------------------------------------------------

def forge_segments(index: Path, change) -> str:
    """Edit the segment list of the current table of contents with `change(segments)` and
    recompute the manifest's sums, as the review's forge.py does; returns the segment's id."""
    found = manifests.read(index, "g000001")
    path = index / "g000001" / toc_name(found.toc)
    data = path.read_bytes()
    stream = StructFile(io.BytesIO(data))
    for _ in range(3):
        stream.read_varint()
    stream.read_int(), stream.read_int(), stream.read_varint(), stream.read_varint(), stream.read_varint()
    stream.read_string(), stream.read_int(), stream.read_int()
    start = stream.tell()
    segments = pickle.loads(data[start:])  # the test's own file, written by the ingest above
    change(segments)
    path.write_bytes(data[:start] + pickle.dumps(segments, 4))
    files = {**found.files, path.name: manifests.file_sum(path)}
    manifests.write(index, manifests.Manifest("g000001", found.toc, files, found.committed))
    return segments[0].segid


def _set(name: str, value):
    return lambda segments: setattr(segments[0], name, value)


FORGERIES = {
    "fifty million posts": (_set("_doccount", 5 * 10**7), "says it holds 50,000,000 posts, more than its {size:,} "
                            "bytes of files can hold"),
    "a trillion posts": (_set("_doccount", 10**12), "says it holds 1,000,000,000,000 posts, more than its {size:,} "
                         "bytes of files can hold"),
    "a thousand posts too many": (_set("_doccount", len(SYNTHETIC) + 1000),
                                  f"says it holds {len(SYNTHETIC) + 1000:,} posts, which the column of its stored "
                                  "posts does not match"),
    "minus one post": (_set("_doccount", -1), "has a post count of -1"),
    "a count that is not a number": (_set("_doccount", "9"), "has a post count of '9'"),
    "a deleted post it does not hold": (_set("_deleted", {10**9}), "has deleted posts it does not hold"),
}


@pytest.mark.parametrize("forgery", FORGERIES)
def test_a_forged_post_count_is_damage_to_the_server_and_the_cli(index, client_for, forgery):
    change, problem = FORGERIES[forgery]
    segid = forge_segments(index, change)
    size = (index / "g000001" / f"MAIN_{segid}.seg").stat().st_size
    said = (f"the index at {index} is damaged: {index / 'g000001' / '_MAIN_1.toc'}: segment {segid} "
            f"{problem.format(size=size)}; rebuild it from your files with `searchsvc ingest --rebuild PATH...`")
    client = client_for(index)
    for url in ("/healthz", "/api/search?q=pamphlet"):
        answer = client.get(url)
        assert answer.status_code == 503, answer.get_data(as_text=True)
        assert answer.get_json()["error"]["code"] == "index_damaged"
        assert answer.get_json()["error"]["message"] == said
    result = run("search", "--index", index, "pamphlet")
    assert result.exit_code == 1
    assert result.stderr == f"Error: {said}\n"
    result = run("check", "--index", index)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"damaged: {said}\n")


def test_an_honest_index_passes_the_new_checks(built, client_for):
    answer = client_for(built).get("/healthz")
    assert answer.status_code == 200
    assert answer.get_json()["posts"] == len(SYNTHETIC)


def test_an_index_of_no_posts_is_whole_to_check_snapshot_publish_and_restore(tmp_path):
    """The second review round: a first ingest whose records were all invalid leaves an index of
    no posts, which the server called ok while check, snapshot and publish called it damaged
    (AttributeError: 'EmptyReader' object has no attribute '_perdoc')."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": "", "body": "x"}\n', encoding="utf-8")
    index = tmp_path / "index"
    assert run("ingest", "--index", index, bad).exit_code == 1
    checked = run("check", "--index", index)
    assert checked.exit_code == 0 and checked.stdout.startswith(f"OK: {index} (generation g000001): ")
    assert run("snapshot", "--index", index, tmp_path / "snap").exit_code == 0
    assert run("publish", "--index", index, tmp_path / "replica").exit_code == 0
    assert run("restore", "--index", tmp_path / "restored", tmp_path / "snap").exit_code == 0
    assert run("export", "--index", tmp_path / "replica").stdout == ""
