"""Index files forged to run code when Whoosh unpickles them: no command ever runs it.

Each forgery puts a pickle whose loading would create a sentinel file into one kind of pickled
data Whoosh reads (the table of contents, a compound segment's directory and options, the term
table's extras, an inlined term, every stored document), then recomputes
the manifest's sums with searchsvc's own code, so the forged index passes every byte check.
Every command that opens an index is run on it: none creates the sentinel; each says the index
is damaged, or works without reading the forged part (never by running it).
"""

from __future__ import annotations

import io
import json
import pickle
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SAMPLE_POSTS
from whoosh import columns
from whoosh.codec.whoosh3 import W3TermInfo
from whoosh.filedb.filetables import OrderedHashReader, OrderedHashWriter
from whoosh.filedb.structfile import StructFile

from searchsvc.cli import cli
from searchsvc.index import manifest as manifests
from searchsvc.index.store import IndexStore
from searchsvc.index.toc import toc_name


class _RunsCode:
    """Pickles as a call of exec() that creates `sentinel`."""

    def __init__(self, sentinel: Path):
        self.sentinel = sentinel

    def __reduce__(self):
        return exec, (f"open({str(self.sentinel)!r}, 'w').close()",)


class _Kept(io.BytesIO):
    def close(self) -> None:  # Whoosh's writers close their file; its bytes are still wanted
        pass


# Forging: a compound segment file taken apart and put together again as Whoosh lays it out
# (a long and an int pointing at the directory, the files, then the pickled directory and options).

def _segment(index: Path) -> Path:
    [seg] = (index / "g000001").glob("*.seg")
    return seg


def _parts(seg: Path) -> dict[str, bytes]:
    data = seg.read_bytes()
    dirpos, _ = struct.unpack("!qi", data[:12])
    directory = pickle.loads(data[dirpos:])  # the test's own file, written by the ingest above
    return {name: data[e["offset"]:e["offset"] + e["length"]]
            for name, e in sorted(directory.items(), key=lambda item: item[1]["offset"])}


def _assemble(seg: Path, parts: dict[str, bytes], *, directory: bytes | None = None,
              options: bytes | None = None) -> None:
    out = bytearray(12)
    entries = {}
    for name, data in parts.items():
        entries[name] = {"offset": len(out), "length": len(data), "modified": 0.0}
        out += data
    dirpos = len(out)
    out += directory if directory is not None else pickle.dumps(entries, -1)
    out += options if options is not None else pickle.dumps({}, -1)
    out[:12] = struct.pack("!qi", dirpos, len(out) - dirpos)
    seg.write_bytes(bytes(out))


def _part(parts: dict[str, bytes], suffix: str) -> str:
    [name] = [n for n in parts if n.endswith(suffix)]
    return name


def _rewrite_terms(data: bytes, change: Callable[[bytes, bytes, dict], bytes], extras: dict | None = None) -> bytes:
    reader = OrderedHashReader(StructFile(io.BytesIO(data)), len(data))
    out = _Kept()
    writer = OrderedHashWriter(StructFile(out))
    writer.extras.update(extras if extras is not None else reader.extras)
    for key, value in reader.items():
        writer.add(key, change(key, value, reader.extras["fieldmap"]))
    writer.close()
    return out.getvalue()


def forge_toc(index: Path, payload: bytes) -> None:
    """The table of contents' segment list."""
    path = index / "g000001" / toc_name(1)
    stream = StructFile(io.BytesIO(path.read_bytes()))
    for _ in range(3):
        stream.read_varint()
    stream.read_int(), stream.read_int()
    stream.read_varint(), stream.read_varint(), stream.read_varint()
    stream.skip_string()
    stream.read_int(), stream.read_int()
    at = stream.tell()
    path.write_bytes(path.read_bytes()[:at] + payload)


def forge_compound_directory(index: Path, payload: bytes) -> None:
    seg = _segment(index)
    _assemble(seg, _parts(seg), directory=payload)


def forge_compound_options(index: Path, payload: bytes) -> None:
    seg = _segment(index)
    _assemble(seg, _parts(seg), options=payload)


def forge_term_table_extras(index: Path, payload: bytes) -> None:
    seg = _segment(index)
    parts = _parts(seg)
    name = _part(parts, ".trm")
    data = parts[name]
    extras = OrderedHashReader(StructFile(io.BytesIO(data)), len(data)).extras
    forged = _rewrite_terms(data, lambda key, value, fieldmap: value, {**extras, "forged": _Pickled(payload)})
    _assemble(seg, {**parts, name: forged})


def forge_inlined_term(index: Path, payload: bytes) -> None:
    """The term `china` of the `text` field, its postings "inlined" as a pickle."""
    seg = _segment(index)
    parts = _parts(seg)
    name = _part(parts, ".trm")

    def change(key: bytes, value: bytes, fieldmap: dict) -> bytes:
        if key == struct.pack("!H", fieldmap["text"]) + b"china":
            return b"\x01" + value[1:W3TermInfo._struct.size] + payload
        return value

    _assemble(seg, {**parts, name: _rewrite_terms(parts[name], change)})


def forge_stored_records(index: Path, payload: bytes) -> None:
    """Every post's stored fields."""
    seg = _segment(index)
    parts = _parts(seg)
    out = _Kept()
    writer = columns.CompressedBytesColumn().writer(StructFile(out))
    count = IndexStore(index).open().doc_count_all()
    for docnum in range(count):
        writer.add(docnum, payload)
    writer.finish(count)
    _assemble(seg, {**parts, _part(parts, "_stored.col"): out.getvalue()})


class _Pickled:
    """Pickles as the given pickle's object (the payload nested inside Whoosh's own data)."""

    def __init__(self, data: bytes):
        self.data = data

    def __reduce__(self):
        return pickle.loads, (self.data,)


def resum(index: Path) -> None:
    """A manifest that vouches for the forged bytes: every sum recomputed by searchsvc's own code."""
    found = manifests.read(index, "g000001")
    files = {name: manifests.file_sum(index / "g000001" / name) for name in found.files}
    manifests.write(index, manifests.Manifest("g000001", found.toc, files, found.committed))


# What each forgery touches: read when an index is opened, or only by what reads that part.
FORGERIES = {
    "table of contents": forge_toc,
    "compound directory": forge_compound_directory,
    "compound options": forge_compound_options,
    "term table extras": forge_term_table_extras,
    "inlined term": forge_inlined_term,
    "stored records": forge_stored_records,
}
READ_AT_OPEN = {"table of contents", "compound directory", "compound options", "term table extras"}
# Commands that read every pickled part of a commit (check, and what copies an index to serve or
# keep it): they refuse a forgery wherever it is. The others meet it when they read it.
READ_WHOLE = {"check", "snapshot", "restore", "publish"}
READS_STORED = {"search", "export", "web"}  # a page of hits, every post


def _says_damaged(kind: str, command: str) -> bool:
    if kind in READ_AT_OPEN or command in READ_WHOLE:
        return True
    # A term's postings are searched from our arrays: Whoosh's term entry is unpickled only by its
    # own matchers (test_every_site_refuses_a_forged_pickle), which these searches do not use.
    return kind.startswith("stored") and command in READS_STORED


COMMANDS = ["check", "info", "search", "export", "snapshot", "restore", "publish", "ingest", "web"]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    index = tmp_path_factory.mktemp("pristine") / "index"
    result = CliRunner().invoke(cli, ["ingest", str(SAMPLE_POSTS / "posts"), "--index", str(index)])
    assert result.exit_code == 0, result.output
    assert len(list((index / "g000001").glob("*.seg"))) == 1
    return index


def _forged(pristine: Path, tmp_path: Path, kind: str, *, sums: bool = True) -> tuple[Path, Path]:
    index, sentinel = tmp_path / "forged", tmp_path / "SENTINEL"
    shutil.copytree(pristine, index)
    FORGERIES[kind](index, pickle.dumps(_RunsCode(sentinel), 2))
    if sums:
        resum(index)
        assert IndexStore(index).problems("g000001", full=True) == []  # the forgery passes every byte check
    return index, sentinel


def _run(command: str, index: Path, tmp_path: Path) -> tuple[int, str]:
    """Run `command` on the forged index: (exit status, what it said); the web's status as 0 / 1."""
    if command == "web":
        from searchsvc.web import create_app

        app = create_app({"INDEX": str(index), "TESTING": True})
        try:
            response = app.test_client().get("/api/search?q=china")
        finally:
            app.extensions["searchsvc.engine"].close()
        body = response.get_json()
        if response.status_code == 200:
            return 0, json.dumps(body)
        assert response.status_code == 503 and body["error"]["code"] == "index_damaged", body
        return 1, body["error"]["message"]
    post = tmp_path / "new.jsonl"
    post.write_text(json.dumps({"id": "forge-new", "title": "Synthetic post", "author": "Dana Placeholder",
                                "body": "Plainly synthetic text for a forged-index test."}) + "\n", encoding="utf-8")
    args = {
        "check": ["check", "--index", index],
        "info": ["info", "--index", index],
        "search": ["search", "china", "--index", index],
        "export": ["export", "--index", index],
        "snapshot": ["snapshot", tmp_path / "snap", "--index", index],
        "restore": ["restore", index, "--index", tmp_path / "restored"],
        "publish": ["publish", tmp_path / "replica", "--index", index],
        "ingest": ["ingest", post, "--index", index],
    }[command]
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.output


@pytest.mark.parametrize("kind", FORGERIES)
def test_a_forged_index_never_runs_code(pristine, tmp_path, kind):
    index, sentinel = _forged(pristine, tmp_path, kind)
    outcomes = {}
    for command in COMMANDS:
        status, said = _run(command, index, tmp_path)
        assert not sentinel.exists(), f"{command} ran the forged pickle in the {kind}"
        outcomes[command] = (status, said)
    for command, (status, said) in outcomes.items():
        if _says_damaged(kind, command):
            assert status == 1 and f"the index at {index} is damaged: " in said, (command, said)
            assert "exec, which searchsvc never writes" in said or "loads, which searchsvc never writes" in said, said
        else:
            assert status == 0, (command, said)
    # Nothing was made from the forged index: no snapshot, no restored index, no replica.
    assert not (tmp_path / "snap").exists()
    assert not (tmp_path / "restored" / "searchsvc-index.json").exists()
    assert not (tmp_path / "replica" / "searchsvc-index.json").exists()


@pytest.mark.parametrize("kind", FORGERIES)
def test_a_forged_file_with_its_old_sums_is_damage(pristine, tmp_path, kind):
    """Without the sums recomputed, the manifest finds the forgery before anything is unpickled."""
    index, sentinel = _forged(pristine, tmp_path, kind, sums=False)
    for command in ("check", "search", "export", "web"):
        status, said = _run(command, index, tmp_path)
        assert not sentinel.exists()
        assert status == 1 and "damaged" in said, (command, said)


def test_check_names_the_forged_part(pristine, tmp_path):
    index, _ = _forged(pristine, tmp_path, "stored records")
    status, said = _run("check", index, tmp_path)
    assert status == 1
    assert said.splitlines()[0] == (
        f"damaged: the index at {index} is damaged: a file of it holds a pickled __builtin__.exec, which "
        "searchsvc never writes; rebuild it from your files with `searchsvc ingest --rebuild PATH...`")
    assert said.splitlines()[1].startswith(f"Error: the index at {index} is damaged; repair it: ")


def test_every_site_refuses_a_forged_pickle(tmp_path):
    """Each name through which Whoosh unpickles what it reads is ours, and refuses code."""
    import whoosh.codec.whoosh3
    from whoosh import columns, formats
    from whoosh.codec import plaintext
    from whoosh.filedb import structfile
    from whoosh.index import TOC

    from searchsvc.index import seam

    seam.install()
    sentinel = tmp_path / "SENTINEL"
    payload = pickle.dumps(_RunsCode(sentinel))
    for load in (columns.loads, whoosh.codec.whoosh3.loads, formats.loads, plaintext.loads):
        with pytest.raises(seam.UnsafePickle, match="a pickled builtins.exec, which searchsvc never writes"):
            load(payload)
    with pytest.raises(seam.UnsafePickle):
        StructFile(io.BytesIO(payload)).read_pickle()
    assert structfile.load_pickle is seam.load
    with pytest.raises(seam.UnsafePickle):
        W3TermInfo.from_bytes(b"\x01" + bytes(W3TermInfo._struct.size - 1) + payload)
    with pytest.raises(seam.UnsafePickle, match="Whoosh's own reading of a table of contents"):
        TOC.read(None, "MAIN")
    assert not sentinel.exists()
    # What our own data holds still reads: a stored post with a date, bytes at protocol 2.
    from datetime import datetime

    post = {"id": "x", "date": datetime(2020, 9, 29, 12, 30), "fingerprint": b"\x00\xff", "n": [1, 2.5, None]}
    assert columns.loads(pickle.dumps(post, 2)) == post


def _serve(index: Path, log: Path, path: str) -> tuple[int, dict]:
    """`searchsvc serve` on a free port: the status and JSON of its first answer to `path`."""
    import socket
    import time
    import urllib.error
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open(log, "w") as out:
        server = subprocess.Popen([sys.executable, "-m", "searchsvc", "serve", "--port", str(port), "--workers", "1",
                                   "--index", str(index)], stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
                        return response.status, json.loads(response.read())
                except urllib.error.HTTPError as e:
                    return e.code, json.loads(e.read())
                except OSError:
                    assert time.monotonic() < deadline and server.poll() is None, log.read_text()
                    time.sleep(0.2)
        finally:
            server.terminate()
            server.wait(timeout=20)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["compound directory", "stored records"])
def test_a_server_answers_damaged_for_a_forged_index(pristine, tmp_path, kind):
    index, sentinel = _forged(pristine, tmp_path, kind)
    status, body = _serve(index, tmp_path / "server.log", "/api/search?q=china")
    assert not sentinel.exists()
    assert status == 503 and body["error"]["code"] == "index_damaged"
    assert body["error"]["message"].startswith(f"the index at {index} is damaged: a file of it holds a pickled ")


# Publishing while an ingest commits: a file of the commit being sent vanishes under rsync.

def _ssh_committing_once(tmp_path: Path, writer: Path, post: Path) -> Path:
    """An `ssh` that runs the remote command here (the host is dropped), after committing one ingest
    to `writer` the first time it is called: the commit deletes the table of contents that the
    publish is sending, before rsync lists the files (it lists them once the remote answers)."""
    done = tmp_path / "committed"
    script = tmp_path / "ssh-committing"
    ingest = f"{sys.executable} -m searchsvc ingest --index {writer} {post}"
    script.write_text(f'#!/bin/sh\nif [ ! -e {done} ]; then {ingest} >/dev/null 2>&1; touch {done}; fi\n'
                      'shift\nexec sh -c "$*"\n', encoding="utf-8")
    script.chmod(0o755)
    return script


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("rsync") is None, reason="rsync is not installed (.ci/run installs it)")
def test_a_remote_publish_follows_a_commit_made_while_it_sends(pristine, tmp_path):
    writer, replica = tmp_path / "writer", tmp_path / "far" / "replica"
    shutil.copytree(pristine, writer)
    post = tmp_path / "new.jsonl"
    post.write_text(json.dumps({"id": "forge-new", "title": "Synthetic post", "author": "Dana Placeholder",
                                "body": "Plainly synthetic text sent while it is committed."}) + "\n",
                    encoding="utf-8")
    before = IndexStore(writer).commit_key()[1]
    ssh = _ssh_committing_once(tmp_path, writer, post)
    done = subprocess.run([sys.executable, "-m", "searchsvc", "publish", "--ssh", str(ssh), "--remote-searchsvc",
                           f"{sys.executable} -m searchsvc", "--index", str(writer), f"replica-host:{replica}"],
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert (tmp_path / "committed").exists()
    after = IndexStore(writer).commit_key()[1]
    assert after != before
    assert "rebuild" not in done.stderr
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Published commit {after} to {replica} as generation g000001: ")
    assert IndexStore(replica).commit_key()[1] == after
    exported = CliRunner().invoke(cli, ["export", "--index", str(replica)])
    assert '"id": "forge-new"' in exported.output


def _garble_stored(index: Path, how: str) -> None:
    """The stored posts' column replaced by bytes that are not a pickle (`not a pickle`), or
    by the right number of bytes of nothing Whoosh wrote (`noise`), sums recomputed."""
    seg = _segment(index)
    parts = _parts(seg)
    name = _part(parts, "_stored.col")
    if how == "not a pickle":
        out = _Kept()
        writer = columns.CompressedBytesColumn().writer(StructFile(out))
        count = IndexStore(index).open().doc_count_all()
        for docnum in range(count):
            writer.add(docnum, b"\x80\x02not a pickle at all")
        writer.finish(count)
        data = out.getvalue()
    else:
        data = bytes((i * 131 + 7) % 256 for i in range(len(parts[name])))
    _assemble(seg, {**parts, name: data})
    resum(index)


@pytest.mark.parametrize("how", ["not a pickle", "noise"])
def test_garbled_stored_posts_are_damage_not_a_traceback(pristine, tmp_path, how):
    """Bytes that are not what Whoosh wrote, with the sums recomputed: a search, an export and
    the API say the index is damaged (a 500 with a zlib error before)."""
    index = tmp_path / "forged"
    shutil.copytree(pristine, index)
    _garble_stored(index, how)
    for command in ("check", "search", "export", "web"):
        status, said = _run(command, index, tmp_path)
        assert status == 1, (command, said)
        assert f"the index at {index} is damaged" in said, (command, said)
        if how == "not a pickle" and command != "check":
            assert "a stored post cannot be read (UnpicklingError: " in said, (command, said)


HOSTILE_HTML = ('<p>Synthetic post.</p><form action="http://attacker.test/collect" method="get">'
                '<p>Session expired: re-enter your password</p><input name="password" type="password">'
                '<button>Log in</button></form><a href="javascript:alert(document.domain)">click</a>'
                '<meta http-equiv="refresh" content="5;url=http://attacker.test/"><img src=x onerror=alert(1)>')


def test_stored_html_from_an_index_someone_else_wrote_is_cleaned_again_when_shown(tmp_path, monkeypatch,
                                                                                   client_for):
    """The first review: an index written with the cleaner swapped out (every checksum genuine)
    showed its form, meta refresh, javascript: link and onerror on the post page and in the API."""
    import searchsvc.records as records

    monkeypatch.setattr(records, "render_markdown", lambda source: HOSTILE_HTML)
    posts = tmp_path / "forged.jsonl"
    posts.write_text(json.dumps({"id": "forged1", "title": "Forged post", "author": "Dana Placeholder",
                                 "date": "2021-02-02", "body": "Synthetic post.", "body_format": "markdown"}) + "\n",
                     encoding="utf-8")
    result = CliRunner().invoke(cli, ["ingest", "--index", str(tmp_path / "index"), str(posts)])
    assert result.exit_code == 0, result.output
    monkeypatch.undo()
    client = client_for(tmp_path / "index")
    for path in ("/posts/forged1", "/posts/forged1?q=synthetic"):
        page = client.get(path).get_data(as_text=True)
        assert "Synthetic" in page and "Session expired" in page  # the text is kept, as text
        for markup in ("<form", "<input", "javascript:", "onerror", "http-equiv", "attacker.test"):
            assert markup not in page, (path, markup)
    shown = client.get("/api/posts/forged1").get_json()["body_html"]
    assert shown.startswith("<p>Synthetic post.</p>")
    for markup in ("<form", "<input", "javascript:", "onerror", "http-equiv", "attacker.test"):
        assert markup not in shown, markup


def _edit_postings(index: Path, field: str, key: str, change: Callable) -> None:
    """One array of the segment's postings file changed by `change` (same byte length), sums
    recomputed: the third review round's forgery."""
    import numpy as np

    from searchsvc.index import postings

    seg = _segment(index)
    parts = _parts(seg)
    name = _part(parts, ".pst")
    data = parts[name]
    (size,) = struct.unpack("<Q", data[8:16])
    base = 16 + size
    offset, length = json.loads(data[16:base])["fields"][field][key]
    dtype = dict(postings._ARRAYS)[key]
    array = np.frombuffer(data, dtype=dtype, count=length // np.dtype(dtype).itemsize, offset=base + offset).copy()
    raw = np.asarray(change(array)).astype(dtype).tobytes()
    assert len(raw) == length
    _assemble(seg, {**parts, name: data[:base + offset] + raw + data[base + offset + length:]})
    resum(index)


POSTINGS_FORGERIES = {
    "docs negative": ("text", "docs", lambda a: a * 0 - 5),
    "a doc past the end": ("text", "docs", lambda a: a + 2_000_000_000 * (a == a.max())),
    "post ends huge": ("text", "post_ends", lambda a: a * 0 + (1 << 40)),
    "post ends reversed": ("text", "post_ends", lambda a: a[::-1].copy()),
    "term ends reversed": ("text", "term_ends", lambda a: a[::-1].copy()),
    "pos ends huge": ("text", "pos_ends", lambda a: a * 0 + (1 << 40)),
    "positions reversed": ("text", "positions", lambda a: a[::-1].copy()),
    "freqs NaN": ("text", "freqs", lambda a: a * float("nan")),
    "freqs negative": ("text", "freqs", lambda a: -a),
    "author docs past the end": ("author", "docs", lambda a: a * 0 + 3_000_000),
}


@pytest.mark.parametrize("kind", POSTINGS_FORGERIES)
def test_forged_postings_arrays_are_damage_to_check_search_and_the_server(pristine, tmp_path, kind):
    """The third review round: postings arrays forged with the sums recomputed passed check,
    snapshot and restore; every search then failed with an unexpected IndexError (a 500) while
    /healthz said ok, or answered wrongly (0 posts for a phrase, a ranking turned over)."""
    index = tmp_path / "forged"
    shutil.copytree(pristine, index)
    _edit_postings(index, *POSTINGS_FORGERIES[kind])
    for command in ("check", "search", "snapshot", "web"):
        status, said = _run(command, index, tmp_path)
        assert status == 1, (command, said)
        assert f"the index at {index} is damaged: a segment's postings are not what searchsvc writes (" in said, (
            command, said)
    assert not (tmp_path / "snap").exists()
    from searchsvc.web import create_app

    app = create_app({"INDEX": str(index), "TESTING": True})
    try:
        health = app.test_client().get("/healthz")  # a fresh process: before any search
    finally:
        app.extensions["searchsvc.engine"].close()
    assert health.status_code == 503 and health.get_json()["error"]["code"] == "index_damaged"
