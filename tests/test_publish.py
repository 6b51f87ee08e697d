"""`searchsvc publish`: the writer's commit shipped to read replicas, locally and over rsync/ssh."""

from __future__ import annotations

import gzip
import itertools
import json
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PRESIDENTIAL, SAMPLE_POSTS, run_cli

from searchsvc.index import manifest as manifests
from searchsvc.index.store import IndexStore

PUBLISHED = re.compile(r"Published commit ([0-9a-f]{16}) to (.+) as generation (g\d{6}): (\d+) files "
                       r"\((\d+) hard-linked, (\d+) copied, [^)]*\) in [0-9.]+ s")


def _export(index: Path) -> list[str]:
    done = run_cli("export", "--index", str(index))
    assert done.returncode == 0, done.stderr
    return sorted(done.stdout.splitlines())


def _post(tmp_path: Path, post_id: str) -> Path:
    path = tmp_path / f"{post_id}.jsonl"
    path.write_text(json.dumps({"id": post_id, "title": f"Synthetic post {post_id}", "author": "Ada Fictional",
                                "body": "Plainly synthetic text written for a publish test."}) + "\n",
                    encoding="utf-8")
    return path


def _flip_a_byte(path: Path) -> None:
    """Damage a file without changing its size."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _commit(index: Path) -> str | None:
    return IndexStore(index).commit_key()[1]


@pytest.fixture
def writer(tmp_path) -> Path:
    index = tmp_path / "writer"
    assert run_cli("ingest", "--index", str(index), str(SAMPLE_POSTS / "posts")).returncode == 0
    return index


def test_a_replica_serves_the_writers_posts_under_the_same_commit(writer, tmp_path, client_for):
    replica = tmp_path / "replica"
    done = run_cli("publish", "--index", str(writer), str(replica))
    assert done.returncode == 0, done.stderr
    commit, dest, generation, files, linked, copied = PUBLISHED.fullmatch(done.stdout.strip()).groups()
    count = len(manifests.read(writer, "g000001").files)  # a table of contents and its segments
    assert (dest, generation, int(files), int(linked), int(copied)) == (str(replica), "g000001", count, count, 0)
    assert _export(replica) == _export(writer)
    here, there = client_for(writer).get("/healthz").get_json(), client_for(replica).get("/healthz").get_json()
    assert there == {**here, "generation": "g000001"} and there["commit"] == commit == _commit(writer)
    assert client_for(replica).get("/api/search?q=uyghur").get_json()["commit"] == commit

    again = run_cli("publish", "--index", str(writer), str(replica))
    assert (again.returncode, again.stdout) == (0, f"{replica} already serves commit {commit} (generation g000001)\n")


def test_a_new_commit_sends_only_its_new_files_and_keeps_the_old_generation(writer, tmp_path, client_for):
    replica = tmp_path / "replica"
    assert run_cli("publish", "--copy", "--index", str(writer), str(replica)).returncode == 0
    client = client_for(replica)
    before = client.get("/healthz").get_json()
    old_files = {p.name: p.stat().st_ino for p in (replica / "g000001").iterdir()}

    assert run_cli("ingest", "--index", str(writer), str(_post(tmp_path, "new-1"))).returncode == 0
    done = run_cli("publish", "--copy", "--index", str(writer), str(replica))
    assert done.returncode == 0, done.stderr
    commit, _, generation, files, linked, copied = PUBLISHED.fullmatch(done.stdout.strip()).groups()
    # The new commit's table of contents and segment are copied; the rest is linked from the
    # generation the replica already served.
    new_files = {p.name: p.stat().st_ino for p in (replica / generation).iterdir()}
    kept = {name for name in new_files if old_files.get(name) == new_files[name]}
    assert (generation, int(copied), int(linked)) == ("g000002", int(files) - len(kept), len(kept))
    assert int(copied) == 2 and len(kept) == int(files) - 2

    after = client.get("/healthz").get_json()
    assert (after["posts"], after["commit"]) == (before["posts"] + 1, commit)
    assert _export(replica) == _export(writer)
    marker = IndexStore(replica).marker()
    assert (marker.generation, marker.previous) == ("g000002", "g000001")  # kept for requests in flight


def test_a_damaged_source_is_never_published(writer, tmp_path, client_for):
    replica = tmp_path / "replica"
    assert run_cli("publish", "--index", str(writer), str(replica)).returncode == 0
    served = _commit(replica)
    assert run_cli("ingest", "--index", str(writer), str(_post(tmp_path, "new-2"))).returncode == 0
    segment = max((writer / "g000001").glob("*.seg"), key=lambda p: p.stat().st_mtime_ns)
    _flip_a_byte(segment)
    done = run_cli("publish", "--copy", "--index", str(writer), str(replica))
    assert done.returncode == 1
    assert done.stderr == (f"Error: {replica}: the index at {writer} is damaged: {segment} does not match its checksum "
                           "(its bytes changed after its commit); rebuild it from your files with "
                           "`searchsvc ingest --rebuild PATH...`\n")
    assert _commit(replica) == served and client_for(replica).get("/healthz").status_code == 200
    assert not list(replica.glob(".*partial"))


def test_a_file_damaged_on_the_replica_is_taken_from_the_writer(writer, tmp_path):
    replica = tmp_path / "replica"
    assert run_cli("publish", "--copy", "--index", str(writer), str(replica)).returncode == 0
    [segment] = (replica / "g000001").glob("*.seg")
    _flip_a_byte(segment)
    assert run_cli("ingest", "--index", str(writer), str(_post(tmp_path, "new-5"))).returncode == 0
    done = run_cli("publish", "--copy", "--index", str(writer), str(replica))
    assert done.returncode == 0, done.stderr
    _, _, generation, files, linked, copied = PUBLISHED.fullmatch(done.stdout.strip()).groups()
    # The new commit's two files, and the damaged segment again.
    assert (generation, int(copied), int(linked)) == ("g000002", 3, int(files) - 3)
    assert _export(replica) == _export(writer)
    assert run_cli("check", "--index", str(replica)).returncode == 0


def test_force_repairs_a_replica_damaged_while_it_serves_the_commit(writer, tmp_path):
    replica = tmp_path / "replica"
    assert run_cli("publish", "--copy", "--index", str(writer), str(replica)).returncode == 0
    [segment] = (replica / "g000001").glob("*.seg")
    _flip_a_byte(segment)  # the same size: only a full check sees it
    assert run_cli("check", "--index", str(replica)).returncode == 1
    commit = _commit(writer)
    again = run_cli("publish", "--copy", "--index", str(writer), str(replica))
    assert again.stdout == f"{replica} already serves commit {commit} (generation g000001)\n"
    forced = run_cli("publish", "--copy", "--force", "--index", str(writer), str(replica))
    assert forced.returncode == 0, forced.stderr
    _, _, generation, files, linked, copied = PUBLISHED.fullmatch(forced.stdout.strip()).groups()
    assert (generation, int(copied), int(linked)) == ("g000002", 1, int(files) - 1)
    assert run_cli("check", "--index", str(replica)).returncode == 0
    assert _commit(replica) == commit and _export(replica) == _export(writer)


def test_one_bad_destination_does_not_stop_the_others(writer, tmp_path):
    not_an_index = tmp_path / "notes"
    not_an_index.mkdir()
    (not_an_index / "diary.txt").write_text("mine", encoding="utf-8")
    good = tmp_path / "replica"
    under_a_file = not_an_index / "diary.txt" / "index"
    done = run_cli("publish", "--index", str(writer), str(not_an_index), str(writer), str(under_a_file), str(good))
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[0].startswith(f"Error: {not_an_index}: ") and "not a searchsvc index" in lines[0]
    assert lines[1] == f"Error: {writer}: {writer} is the index being published: give a replica's index folder"
    assert lines[2] == (f"Error: {under_a_file}: cannot write there: Not a directory ({under_a_file}); it serves "
                        "what it served before")
    assert PUBLISHED.fullmatch(done.stdout.strip())
    assert (not_an_index / "diary.txt").read_text(encoding="utf-8") == "mine"
    assert _export(good) == _export(writer)


def _fake_ssh(tmp_path: Path) -> Path:
    """An `ssh` that runs the remote command here (the host is dropped), as rsync and publish call it."""
    script = tmp_path / "fake-ssh"
    script.write_text('#!/bin/sh\nshift\nexec sh -c "$*"\n', encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_publish_to_another_host_over_rsync_and_ssh(writer, tmp_path, client_for):
    replica = tmp_path / "far" / "replica"
    ssh = _fake_ssh(tmp_path)
    remote = f"{sys.executable} -m searchsvc"
    args = ["publish", "--ssh", str(ssh), "--remote-searchsvc", remote, "--index", str(writer),
            f"replica-host:{replica}"]
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    assert PUBLISHED.fullmatch(done.stdout.strip()).group(1) == _commit(writer) == _commit(replica)
    assert _export(replica) == _export(writer)
    staged = {p.name: p.stat().st_ino for p in (replica / ".publish-staging" / "g000001").iterdir()}

    assert run_cli("ingest", "--index", str(writer), str(_post(tmp_path, "new-3"))).returncode == 0
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    assert _commit(replica) == _commit(writer) and _export(replica) == _export(writer)
    after = {p.name: p.stat().st_ino for p in (replica / ".publish-staging" / "g000001").iterdir()}
    # rsync sent the new commit's files and left the old segments where they were.
    unchanged = {name for name in staged if name.endswith(".seg") and after.get(name) == staged[name]}
    assert unchanged == {name for name in staged if name.endswith(".seg")} and unchanged
    assert client_for(replica).get("/healthz").get_json()["commit"] == _commit(writer)
    assert list(writer.parent.glob(".searchsvc-publish-*")) == []  # the snapshot it sent is gone


def test_publish_to_an_unreachable_host_says_why(writer, tmp_path):
    ssh = tmp_path / "no-ssh"
    ssh.write_text("#!/bin/sh\necho 'ssh: connect to host nowhere port 22: Connection refused' >&2\nexit 255\n",
                   encoding="utf-8")
    ssh.chmod(0o755)
    done = run_cli("publish", "--ssh", str(ssh), "--index", str(writer), "nowhere:/srv/index")
    assert done.returncode == 1
    assert done.stderr.startswith("Error: nowhere:/srv/index: rsync to nowhere:/srv/index failed: ")


def test_a_host_that_looks_like_an_option_is_refused(writer, tmp_path):
    marker = tmp_path / "ran"
    dest = "-oProxyCommand=touch ran:/srv/index"  # run in tmp_path: "ran" is `marker`
    done = run_cli("publish", "--index", str(writer), "--", dest, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr == (f"Error: {dest}: a host name cannot start with '-' (ssh and rsync would read it as an "
                           "option)\n")
    assert not marker.exists()


def test_a_remote_path_must_be_absolute(writer):
    done = run_cli("publish", "--index", str(writer), "replica-host:srv/index")
    assert (done.returncode, done.stderr) == (1, "Error: replica-host:srv/index: give the replica's index folder as "
                                                 "an absolute path, such as replica-host:/srv/searchsvc/index\n")


def test_watch_publishes_each_new_commit(writer, tmp_path):
    replica = tmp_path / "replica"
    watcher = subprocess.Popen([sys.executable, "-m", "searchsvc", "publish", "--watch", "--interval", "0.2",
                                "--index", str(writer), str(replica)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for n in range(2):
            if n:
                assert run_cli("ingest", "--index", str(writer), str(_post(tmp_path, f"watched-{n}"))).returncode == 0
            deadline = time.monotonic() + 20
            while (not (replica / "searchsvc-index.json").exists() or _commit(replica) != _commit(writer)) \
                    and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _commit(replica) == _commit(writer)
        # A replica wiped by mistake is published to again, without waiting for a commit.
        shutil.rmtree(replica)
        deadline = time.monotonic() + 20
        while not (replica / "searchsvc-index.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)  # the marker is written last: when it is there, the publish is done
        assert _commit(replica) == _commit(writer) and _export(replica) == _export(writer)
    finally:
        watcher.send_signal(signal.SIGTERM)
        out, err = watcher.communicate(timeout=20)
    assert watcher.returncode == 0, err
    assert [PUBLISHED.fullmatch(line).group(3) for line in out.splitlines()] == ["g000001", "g000002", "g000001"]
    assert _export(replica) == _export(writer)


@pytest.mark.slow  # 16 publishes of a 1,500-post index, killed
def test_a_publish_killed_at_any_moment_leaves_the_old_commit(tmp_path):
    writer = tmp_path / "writer"
    with gzip.open(PRESIDENTIAL, "rt", encoding="utf-8") as f:
        lines = list(itertools.islice(f, 1600))
    first, more = tmp_path / "first.jsonl", tmp_path / "more.jsonl"
    first.write_text("".join(lines[:1500]), encoding="utf-8")
    more.write_text("".join(lines[1500:]), encoding="utf-8")
    assert run_cli("ingest", "--index", str(writer), str(first)).returncode == 0
    old_posts = _export(writer)
    base = tmp_path / "base-replica"
    assert run_cli("publish", "--index", str(writer), str(base)).returncode == 0
    old_commit = _commit(base)
    assert run_cli("ingest", "--rebuild", "--index", str(writer), str(first), str(more)).returncode == 0
    new_posts, new_commit = _export(writer), _commit(writer)
    started = time.monotonic()
    assert run_cli("publish", "--copy", "--index", str(writer), str(tmp_path / "timing")).returncode == 0
    seconds = time.monotonic() - started

    rng = random.Random(20261201)
    outcomes = []
    for n in range(16):
        replica = tmp_path / f"replica{n}"
        shutil.copytree(base, replica)
        process = subprocess.Popen([sys.executable, "-m", "searchsvc", "publish", "--copy", "--index", str(writer),
                                    str(replica)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.random() * seconds * 1.1)
        process.send_signal(signal.SIGKILL)
        process.wait()
        commit = _commit(replica)
        assert (commit, _export(replica)) in ((old_commit, old_posts), (new_commit, new_posts)), n
        outcomes.append("old" if commit == old_commit else "new")
        # The next publish cleans up and lands.
        done = run_cli("publish", "--copy", "--wait", "0", "--index", str(writer), str(replica))
        assert done.returncode == 0, done.stderr
        assert _commit(replica) == new_commit
        assert not [p for p in replica.iterdir() if p.name.endswith(".partial")]
        assert sorted(p.name for p in replica.iterdir() if p.is_dir()) in (["g000001", "g000002"], ["g000002"],
                                                                           ["g000002", "g000003"], ["g000003"])
        shutil.rmtree(replica)
    assert "old" in outcomes, outcomes



def test_a_replica_reads_only_the_new_files_of_a_publish(writer, tmp_path, monkeypatch):
    """Each server process checks every byte of a commit's files before it answers from them; the
    files a publish hard-linked from the generation it already served are not read again."""
    from searchsvc.search.engine import Engine
    from searchsvc.search.request import SearchRequest
    from searchsvc.search.run import search

    replica = tmp_path / "replica"
    assert run_cli("publish", "--index", str(writer), str(replica)).returncode == 0
    read = []
    summed = manifests.file_sum

    def counted(path):
        # Only this replica's files: other tests' servers in this process check their own indexes
        # in the background (every SEARCHSVC_VERIFY_EVERY seconds).
        if Path(path).resolve().is_relative_to(replica.resolve()):
            read.append(Path(path).name)
        return summed(path)

    monkeypatch.setattr(manifests, "file_sum", counted)
    engine = Engine(IndexStore(replica), verify_every=0)
    try:
        assert search(engine, SearchRequest(q="uyghur")).total > 0
        # All of it (the table of contents twice: it is checked each time it is unpickled).
        assert set(read) == set(manifests.read(replica, "g000001").files)
        read.clear()
        assert run_cli("ingest", "--index", str(writer), str(_post(tmp_path, "new-4"))).returncode == 0
        assert run_cli("publish", "--copy", "--index", str(writer), str(replica)).returncode == 0
        assert search(engine, SearchRequest(q="synthetic")).total == 1
        new = set(manifests.read(replica, "g000002").files) - set(manifests.read(replica, "g000001").files)
        assert set(read) == new and len(new) == 2  # its table of contents and its new segment
    finally:
        engine.close()
