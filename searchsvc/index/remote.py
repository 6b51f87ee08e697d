"""Publishing to another host (`host:path`): rsync over ssh, then a local publish there.

1. A snapshot of the current commit is taken into a temporary folder beside the index
   (snapshot.py: hard links on the index's disk, every byte checked against the manifest).
2. rsync sends it to a staging index inside the replica's folder (`path/.publish-staging`),
   on the replica's own disk. rsync's quick check (size and time; a snapshot keeps each file's
   time) skips the files the staging copy already has, so a commit that added one segment sends
   one segment. A transfer killed half-way leaves only the staging copy unfinished.
3. `searchsvc publish --index path/.publish-staging path` runs on the host over ssh: the local
   publish (publish.py) checks every byte, hard-links the files into a new generation and swaps
   the marker. Its output is ours.

Nothing runs on the replica but rsync and searchsvc, and nothing but files crosses the wire.
"""

from __future__ import annotations

import shlex
import subprocess
import tempfile
from pathlib import Path

from searchsvc.index.publish import PublishError
from searchsvc.index.snapshot import snapshot
from searchsvc.index.store import IndexStore

STAGING = ".publish-staging"


def is_remote(dest: str) -> bool:
    """rsync's rule: `host:path` has a colon before any slash. A local path with a colon
    can be given as ./name:with:colons."""
    head, colon, _ = dest.partition(":")
    return bool(colon) and bool(head) and "/" not in head


def publish_remote(store: IndexStore, dest: str, *, wait: float, ssh: str = "ssh",
                   remote_searchsvc: str = "searchsvc") -> str:
    """Publish the current commit of `store` to `host:path`; returns the remote publish's line.
    Raises PublishError when rsync or the remote command fails (with what they said)."""
    host, _, path = dest.partition(":")
    if host.startswith("-"):
        raise PublishError("a host name cannot start with '-' (ssh and rsync would read it as an option)")
    path = path or "."
    staging = f"{path.rstrip('/')}/{STAGING}"
    with _beside(store.root) as tmp:
        snap = Path(tmp) / "snapshot"
        snapshot(store, snap)
        _run(["rsync", "--archive", "--delete", "--mkpath", "--rsh", ssh, f"{snap}/", f"{host}:{staging}/"],
             f"rsync to {dest}")
    remote = (f"{remote_searchsvc} publish --wait {wait:g} --index {shlex.quote(staging)} "
              f"{shlex.quote(path)}")
    return _run([*shlex.split(ssh), host, remote], f"publish on {host}").strip()


def _beside(root: Path) -> tempfile.TemporaryDirectory:
    """A temporary folder on the index's own disk, where the snapshot is hard links, not a copy
    of every file; the system's temporary folder if the index's parent is not writable."""
    try:
        return tempfile.TemporaryDirectory(prefix=".searchsvc-publish-", dir=root.resolve().parent)
    except OSError:
        return tempfile.TemporaryDirectory(prefix="searchsvc-publish-")


def _run(command: list[str], what: str) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    except FileNotFoundError as e:
        raise PublishError(f"{what} failed: {e.filename} is not installed") from None
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip()).splitlines()
        reason = said[-1] if said else f"exit status {done.returncode}"
        raise PublishError(f"{what} failed: {reason.removeprefix('Error: ')}")
    return done.stdout
