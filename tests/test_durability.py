"""A durable, verifiable index (issue 12): commits synced before they are visible, every byte
checked against the manifest, nothing unpickled that we did not write, and repairs that work.
Each test reproduces a fault reported against the index before manifests."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import SAMPLE_POSTS, Searchsvc, run_cli
from whoosh.filedb.filestore import FileStorage
from whoosh.index import _CURRENT_TOC_VERSION, _FLOAT_SIZE, _INT_SIZE, _LONG_SIZE

from searchsvc.index import manifest as manifests
from searchsvc.index.schema import SCHEMA_VERSION
from searchsvc.index.store import MARKER

REPAIR = "rebuild it from your files with `searchsvc ingest --rebuild PATH...`"


def _index(tmp_path: Path, name: str = "index") -> Searchsvc:
    """Sample posts in three commits (two ingests and a delete): several segments and tables of contents."""
    searchsvc = Searchsvc(tmp_path / name)
    assert searchsvc("ingest", SAMPLE_POSTS / "posts").exit_code == 0
    assert searchsvc("ingest", SAMPLE_POSTS / "listing").exit_code in (0, 1)
    first = searchsvc.export()[0]["id"]
    assert searchsvc("delete", first).exit_code == 0
    return searchsvc


def _current(index: Path) -> tuple[Path, manifests.Manifest]:
    generation = json.loads((index / MARKER).read_text())["generation"]
    found = manifests.read(index, generation)
    assert found is not None
    return index / generation, found


def _flip(path: Path, rng: random.Random, count: int) -> None:
    data = bytearray(path.read_bytes())
    for _ in range(count):
        data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
    path.write_bytes(bytes(data))


@pytest.mark.slow  # real processes: kept out of the fast tier, run by CI
def test_every_file_of_a_commit_is_synced_before_the_manifest_commits_it(tmp_path):
    """strace of a first ingest and of an incremental one: each file the manifest names, and the
    generation folder, is fsynced before the manifest's rename; the index folder after it."""
    if shutil.which("strace") is None:
        pytest.fail("strace is not installed (.ci/run installs it)")
    index = tmp_path / "index"
    extra = tmp_path / "extra.jsonl"
    extra.write_text(json.dumps({"id": "syn-1", "title": "A fictional note", "body": "Synthetic text."}) + "\n")
    synced_before: set[str] = set()  # by an earlier commit: a file is never rewritten
    for n, source in enumerate((SAMPLE_POSTS / "posts", extra)):
        trace = tmp_path / f"trace{n}.txt"
        done = subprocess.run(["strace", "-f", "-y", "-qq", "-o", str(trace), "-e",
                               "trace=fsync,fdatasync,rename,renameat,renameat2",
                               sys.executable, "-m", "searchsvc", "ingest", "--quiet", "--index", str(index),
                               str(source)], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        lines = trace.read_text().splitlines()
        folder, found = _current(index)
        commit_at = max(i for i, line in enumerate(lines)  # the last commit: the one the manifest holds
                        if re.search(r"rename\w*\(.*\.g\d{6}\.manifest\.json\.tmp", line))
        synced = [(i, m[1]) for i, line in enumerate(lines) if (m := re.search(r"fsync\(\d+<([^>]+)>\)", line))]
        for name in found.files:
            times = [i for i, path in synced if path == str(folder / name)]
            assert (times and min(times) < commit_at) or str(folder / name) in synced_before, \
                f"commit {n}: {name} not synced before the manifest"
        assert any(str(folder / name) not in synced_before for name in found.files)  # this commit wrote some
        synced_before |= {path for _, path in synced}
        assert any(i < commit_at for i, path in synced if path == str(folder)), "generation folder not synced"
        assert any(i > commit_at for i, path in synced if path == str(index)), "index folder not synced after"


def _forge_toc(folder: Path, generation: int, payload: object) -> None:
    """A table of contents in Whoosh's own format whose segment list is `payload`, pickled."""
    import pickle

    stream = FileStorage(str(folder)).create_file(f"_MAIN_{generation}.toc")
    for size in (_INT_SIZE, _LONG_SIZE, _FLOAT_SIZE):
        stream.write_varint(size)
    stream.write_int(-12345)
    stream.write_int(_CURRENT_TOC_VERSION)
    for n in (2, 7, 5):
        stream.write_varint(n)
    stream.write_string(pickle.dumps(payload, 2))
    stream.write_int(generation)
    stream.write_int(0)
    stream.write(pickle.dumps(payload, 2))
    stream.close()


class _Exploit:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.slow  # several processes, a few seconds
@pytest.mark.parametrize("with_manifest", [False, True])
def test_a_forged_index_never_runs_code(tmp_path, client_for, with_manifest):
    """A hand-written marker and a table of contents holding a malicious pickle (with a manifest
    whose checksums match it, too): no command runs the code."""
    sentinel = tmp_path / "pwned"
    forged = tmp_path / "forged"
    (forged / "g000001").mkdir(parents=True)
    (forged / MARKER).write_text(json.dumps({"format": "searchsvc-index", "schema_version": SCHEMA_VERSION,
                                             "generation": "g000001", "previous": None, "created": ""}))
    _forge_toc(forged / "g000001", 1, [_Exploit(str(sentinel))])
    if with_manifest:
        toc = forged / "g000001" / "_MAIN_1.toc"
        manifests.write(forged, manifests.Manifest("g000001", 1, {toc.name: manifests.file_sum(toc)}))
    commands = [["info"], ["search", "x"], ["export"], ["check"], ["snapshot", str(tmp_path / "snap")],
                ["ingest", str(SAMPLE_POSTS / "posts")]]
    for command in commands:
        done = run_cli(*command, "--index", str(forged))
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert "damaged" in done.stderr and "Traceback" not in done.stderr, (command, done.stderr)
    client = client_for(forged)
    for path in ("/healthz", "/api/search?q=x", "/api/export?q=x"):
        response = client.get(path)
        assert (response.status_code, response.get_json()["error"]["code"]) == (503, "index_damaged"), path
    rebuilt = run_cli("ingest", "--rebuild", "--index", str(forged), str(SAMPLE_POSTS / "posts"))
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert not sentinel.exists()


@pytest.fixture(scope="module")
def base_index(tmp_path_factory) -> Path:
    return _index(tmp_path_factory.mktemp("durability")).index


@pytest.mark.parametrize("kind", ["seg", "toc", "manifest"])
def test_flipped_bytes_are_found_by_check_and_never_served(tmp_path, base_index, client_for, kind):
    """20 trials per file kind (60 in all): random bytes flipped in one file of the current
    generation. `check` exits 1 naming the file; a server opening the index answers 503
    `index_damaged` on /healthz, searches and exports, never a 200."""
    rng = random.Random(f"flip-{kind}")
    folder, found = _current(base_index)
    for trial in range(20):
        index = tmp_path / f"trial{trial}"
        shutil.copytree(base_index, index)
        if kind == "manifest":
            target = manifests.path_of(index, folder.name)
        else:
            names = sorted(n for n in found.files if n.endswith(f".{kind}"))
            target = index / folder.name / rng.choice(names)
        _flip(target, rng, rng.choice([1, 4, 16]))
        checked = Searchsvc(index)("check")
        assert checked.exit_code == 1, (trial, checked.output)
        assert str(target) in checked.stderr, (trial, checked.stderr)
        assert "`searchsvc ingest --rebuild PATH...`" in checked.stderr
        client = client_for(index)
        for path in ("/healthz", "/api/search?q=uyghur", "/api/export?q=uyghur", "/?q=uyghur"):
            response = client.get(path)
            assert response.status_code == 503, (trial, path, response.status_code)
        assert client.get("/healthz").get_json()["error"]["code"] == "index_damaged"
        info = Searchsvc(index)("info")
        assert info.exit_code == 1 and str(target) in info.stderr, (trial, info.output)
        shutil.rmtree(index)


def test_a_running_server_finds_damage_and_recovers_after_a_restore(tmp_path, client_for):
    """Damage under a running app: a cut file within a second (sizes), flipped bytes at the next
    background check (SEARCHSVC_VERIFY_EVERY); 503 from then on, and answers again, without a
    restart, once a snapshot is restored."""
    searchsvc = _index(tmp_path)
    index = searchsvc.index
    snapshot = tmp_path / "snapshot"
    assert searchsvc("snapshot", snapshot, "--copy").exit_code == 0
    client = client_for(index, VERIFY_EVERY="0.2")
    before = client.get("/api/search?q=uyghur").get_json()
    assert before["total"] > 0
    folder, found = _current(index)
    segment = folder / max((n for n in found.files if n.endswith(".seg")), key=lambda n: found.files[n].size)
    _flip(segment, random.Random(1), 16)
    deadline = time.monotonic() + 10
    while client.get("/healthz").status_code == 200:
        assert time.monotonic() < deadline, "flipped bytes not found by the background check"
        time.sleep(0.1)
    response = client.get("/api/search?q=uyghur")
    assert response.status_code == 503
    assert str(segment) in response.get_json()["error"]["message"]
    restored = searchsvc("restore", snapshot)
    assert restored.exit_code == 0, restored.output
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/search?q=uyghur").get_json()["hits"] == before["hits"]
    # A cut file is found by its size within a second, with no background check at all.
    quiet = client_for(index, VERIFY_EVERY="0")
    assert quiet.get("/healthz").status_code == 200
    folder, found = _current(index)
    with (folder / next(n for n in found.files if n.endswith(".seg"))).open("r+b") as f:
        f.truncate(100)
    time.sleep(1.1)
    assert quiet.get("/healthz").status_code == 503


@pytest.mark.slow  # several processes, a few seconds
def test_serve_starts_on_a_damaged_index_and_answers_503(tmp_path):
    """Before: `serve` exited at start on a cut segment. Now it serves 503 with the reason, so a
    load balancer routes around it, and recovers without a restart after a rebuild."""
    searchsvc = _index(tmp_path)
    folder, found = _current(searchsvc.index)
    with (folder / next(n for n in found.files if n.endswith(".seg"))).open("r+b") as f:
        f.truncate(100)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "server.log"
    with open(log, "w") as out:
        server = subprocess.Popen([sys.executable, "-m", "searchsvc", "serve", "--port", str(port), "--workers", "1",
                                   "--index", str(searchsvc.index)], stdout=out, stderr=subprocess.STDOUT)
    try:
        status = None
        deadline = time.monotonic() + 30
        while status is None:
            assert time.monotonic() < deadline and server.poll() is None, "serve did not start"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                    status = r.status
            except urllib.error.HTTPError as e:
                status = e.code
            except OSError:
                time.sleep(0.2)
        assert status == 503
        assert f"warning: the index at {searchsvc.index} is damaged: " in log.read_text()
        assert run_cli("ingest", "--rebuild", "--index", str(searchsvc.index), str(SAMPLE_POSTS)).returncode == 0
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            assert r.status == 200
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_a_rebuild_over_a_damaged_index_never_reads_it(tmp_path):
    """Before: `ingest --rebuild` over a damaged column failed with 'unexpected
    UnicodeDecodeError (a bug)'. The damaged index is never read: every post counts as new."""
    searchsvc = _index(tmp_path)
    folder, found = _current(searchsvc.index)
    for name in found.files:
        if name.endswith(".seg"):
            _flip(folder / name, random.Random(name), 64)
    rebuilt = searchsvc("ingest", "--rebuild", SAMPLE_POSTS)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert rebuilt.stdout.startswith("Rebuilt index from 5 files: 4 new, 0 updated, 0 unchanged, 0 removed")
    assert searchsvc("check").exit_code == 0
    assert len(searchsvc.export()) == 4


def test_a_marker_naming_a_missing_generation_deletes_nothing(tmp_path):
    """Before: a plain ingest failed and first deleted the intact g000001."""
    searchsvc = _index(tmp_path)
    index = searchsvc.index
    marker = json.loads((index / MARKER).read_text())
    before = sorted(p.relative_to(index).as_posix() for p in index.rglob("*"))
    (index / MARKER).write_text(json.dumps({**marker, "generation": "g000002", "previous": None}))
    added = run_cli("ingest", "--index", str(index), str(SAMPLE_POSTS / "posts"))
    assert (added.returncode, added.stderr) == (
        1, f"Error: the index at {index} is damaged: its current generation g000002 is missing; {REPAIR}\n")
    after = sorted(p.relative_to(index).as_posix() for p in index.rglob("*"))
    assert after == sorted({*before, ".lock"})
    assert run_cli("check", "--index", str(index)).returncode == 1


@pytest.mark.slow  # several processes, a few seconds
def test_a_snapshot_taken_while_ingests_commit_is_always_one_whole_commit(tmp_path):
    """Snapshots taken while another process commits again and again: each one passes `check`
    and holds exactly the posts of one commit."""
    searchsvc = _index(tmp_path)
    batches = []
    for n in range(6):
        path = tmp_path / f"batch{n}.jsonl"
        path.write_text("".join(json.dumps({"id": f"syn-{n}-{i}", "title": f"Fictional note {n}.{i}",
                                            "body": "Synthetic text by a fictional author. " * 20}) + "\n"
                                for i in range(30)))
        batches.append(path)
    writer = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys\n"
         "for b in sys.argv[2:]:\n"
         "    subprocess.run([sys.executable, '-m', 'searchsvc', 'ingest', '--quiet', '--index', sys.argv[1], b],"
         " check=True)", str(searchsvc.index), *map(str, batches)])
    sizes = set()
    try:
        for n in range(12):
            snap = Searchsvc(tmp_path / f"snap{n}")
            taken = searchsvc("snapshot", snap.index)
            assert taken.exit_code == 0, taken.output
            assert snap("check").exit_code == 0
            ids = [p["id"] for p in snap.export()]
            synthetic = [i for i in ids if i.startswith("syn-")]
            assert len(synthetic) % 30 == 0, len(synthetic)  # whole batches only
            sizes.add(len(ids))
            if writer.poll() is not None:
                break
            time.sleep(0.05)
    finally:
        assert writer.wait(timeout=300) == 0
    assert len(sizes) >= 1


# Found by a hostile review of the first version of this work.


def test_an_ingest_never_launders_damage_into_fresh_checksums(tmp_path):
    """A flipped bit in a segment, then a plain ingest that merges segments: the ingest refuses
    (it used to merge the damaged posts into a new segment that passed `check`), and so does delete."""
    searchsvc = _index(tmp_path)
    folder, found = _current(searchsvc.index)
    segment = folder / max((n for n in found.files if n.endswith(".seg")), key=lambda n: found.files[n].size)
    _flip(segment, random.Random(7), 1)
    extra = tmp_path / "one.jsonl"
    extra.write_text(json.dumps({"id": "syn-x", "title": "Fictional", "body": "Synthetic."}) + "\n")
    for command in (["ingest", extra], ["delete", "syn-x"]):
        done = searchsvc(*command)
        assert done.exit_code == 1 and f"{segment} does not match its checksum" in done.stderr, done.output
    assert searchsvc("check").exit_code == 1


def test_a_stale_manifest_or_a_symlinked_generation_deletes_nothing(tmp_path):
    """An old manifest copied back over the current one, or the current generation replaced by a
    symlink to the previous one: a failing ingest used to delete committed files of both."""
    searchsvc = _index(tmp_path)
    index = searchsvc.index
    folder, _ = _current(index)
    stale = manifests.path_of(index, folder.name).read_bytes()
    extra = tmp_path / "one.jsonl"
    extra.write_text(json.dumps({"id": "syn-y", "title": "Fictional", "body": "Synthetic."}) + "\n")
    assert searchsvc("ingest", extra).exit_code == 0
    manifests.path_of(index, folder.name).write_bytes(stale)
    before = sorted(p.relative_to(index).as_posix() for p in index.rglob("*"))
    assert searchsvc("ingest", extra).exit_code == 1
    assert sorted(p.relative_to(index).as_posix() for p in index.rglob("*")) == before

    other = _index(tmp_path, "other")
    assert other("ingest", "--rebuild", SAMPLE_POSTS / "posts").exit_code == 0  # g000001 previous, g000002 current
    current, _ = _current(other.index)
    previous = other.index / "g000001"
    kept = sorted(p.name for p in previous.iterdir())
    shutil.rmtree(current)
    current.symlink_to(previous, target_is_directory=True)
    assert other("ingest", extra).exit_code == 1
    assert sorted(p.name for p in previous.iterdir()) == kept


def test_a_repair_keeps_the_last_whole_generation(tmp_path):
    """The marker naming a missing generation while g000001 and g000002 are whole: a rebuild
    used to record the missing one as previous and delete both whole ones."""
    searchsvc = _index(tmp_path)
    index = searchsvc.index
    assert searchsvc("ingest", "--rebuild", SAMPLE_POSTS / "posts").exit_code == 0
    marker = json.loads((index / MARKER).read_text())
    (index / MARKER).write_text(json.dumps({**marker, "generation": "g000007", "previous": None}))
    assert searchsvc("ingest", "--rebuild", SAMPLE_POSTS / "posts").exit_code == 0
    marker = json.loads((index / MARKER).read_text())
    assert (marker["generation"], marker["previous"]) == ("g000008", "g000002")
    assert (index / "g000002").is_dir() and searchsvc("check").exit_code == 0


def test_restore_refuses_a_snapshot_that_cannot_be_opened(tmp_path):
    """A snapshot whose segment was replaced and whose manifest was recomputed to match: restore
    used to switch the live index to it."""
    searchsvc = _index(tmp_path)
    snapshot = tmp_path / "snapshot"
    assert searchsvc("snapshot", snapshot, "--copy").exit_code == 0
    folder, found = _current(snapshot)
    name = next(n for n in found.files if n.endswith(".seg"))
    (folder / name).write_bytes(random.Random(3).randbytes(found.files[name].size))
    files = {**found.files, name: manifests.file_sum(folder / name)}
    manifests.write(snapshot, manifests.Manifest(found.generation, found.toc, files))
    before = (searchsvc.index / MARKER).read_text()
    restored = searchsvc("restore", snapshot)
    assert restored.exit_code == 1 and f"the snapshot at {snapshot} is damaged" in restored.stderr, restored.output
    assert (searchsvc.index / MARKER).read_text() == before and searchsvc("check").exit_code == 0


def test_unreadable_files_are_damage_not_a_500(tmp_path, client_for):
    """A segment that is a symlink loop, a manifest naming a folder: 503 `index_damaged` naming
    the file, and `check` says damaged (they used to give 500 and bare OS errors)."""
    searchsvc = _index(tmp_path)
    folder, found = _current(searchsvc.index)
    segment = folder / next(n for n in found.files if n.endswith(".seg"))
    segment.unlink()
    segment.symlink_to(segment)
    response = client_for(searchsvc.index).get("/api/search?q=uyghur")
    assert (response.status_code, response.get_json()["error"]["code"]) == (503, "index_damaged")
    assert str(segment) in response.get_json()["error"]["message"]
    checked = searchsvc("check")
    assert checked.exit_code == 1 and f"damaged: {segment} is not a file" in checked.stderr


def test_a_forged_segment_may_not_name_files_outside_its_generation(tmp_path, client_for):
    """A real segment object whose index name is an absolute path, with a matching manifest:
    Whoosh would open files outside the generation, which no checksum covers."""
    searchsvc = _index(tmp_path)
    folder, found = _current(searchsvc.index)
    from whoosh.filedb.filestore import FileStorage as Storage

    from searchsvc.index.schema import build_schema
    from searchsvc.index.toc import read_toc

    toc = read_toc(Storage(str(folder)), build_schema(), found.toc)
    for segment in toc.segments:
        segment.indexname = str(tmp_path / "outside" / "MAIN")
    name = f"_MAIN_{found.toc}.toc"
    (folder / name).unlink()
    toc.write(Storage(str(folder)), "MAIN")
    manifests.write(searchsvc.index, manifests.Manifest(found.generation, found.toc,
                                                        {**found.files, name: manifests.file_sum(folder / name)}))
    response = client_for(searchsvc.index).get("/healthz")
    assert (response.status_code, response.get_json()["error"]["code"]) == (503, "index_damaged")
    assert "outside its generation" in response.get_json()["error"]["message"]


def test_a_snapshot_inside_the_index_is_refused(tmp_path):
    searchsvc = _index(tmp_path)
    inside = searchsvc.index / "g000009"
    done = searchsvc("snapshot", inside)
    assert done.exit_code == 1 and "inside the index" in done.stderr and not inside.exists()


def test_a_pipe_among_the_input_files_is_reported_not_waited_on(tmp_path):
    searchsvc = Searchsvc(tmp_path / "index")
    posts = tmp_path / "posts"
    posts.mkdir()
    (posts / "good.jsonl").write_text(json.dumps({"id": "syn-z", "title": "Fictional", "body": "Synthetic."}) + "\n")
    os.mkfifo(posts / "pipe.jsonl")
    done = subprocess.run([sys.executable, "-m", "searchsvc", "ingest", "--index", str(searchsvc.index), str(posts)],
                          capture_output=True, text=True, timeout=60)  # it used to wait on the pipe for ever
    assert done.returncode == 1
    assert f"{posts / 'pipe.jsonl'}: cannot read: not a regular file (a pipe, device or socket)" in done.stderr
    assert [p["id"] for p in searchsvc.export()] == ["syn-z"]
