"""Publishing to another host (`host:path`): rsync over ssh, then a local publish there.

1. rsync sends the files the current commit's manifest names, straight from the writer's
   generation folder, to a staging index inside the replica's folder
   (`path/.publish-staging`, on the replica's own disk). rsync's quick check (size and time,
   which Whoosh never changes for a file) skips the files the staging copy already has, so a
   commit that added one segment sends one segment, and nothing is read here but file names
   and sizes; files no longer in the commit are deleted from the staging copy. A commit that
   deletes a file while it is sent (rsync: "vanished"), or before rsync listed it (rsync says
   nothing: every file is looked for afterwards), is followed by the newer commit.
2. The commit's manifest and a marker naming it are sent after the files.
3. `searchsvc publish --index path/.publish-staging path` runs on the host over ssh: the local
   publish (publish.py) checks every byte, hard-links the files into a new generation and swaps
   the marker. Its output is ours.

Nothing runs on the replica but rsync and searchsvc, nothing but files crosses the wire, and
nothing is left behind here: a publish killed half-way leaves only the staging copy unfinished.
"""

from __future__ import annotations

import shlex
import subprocess
import tempfile
from pathlib import Path

from searchsvc.index import manifest as manifests
from searchsvc.index.publish import ATTEMPTS, PublishError
from searchsvc.index.store import STAGING, IndexStore

STAGED = "g000001"  # the staging index's one generation, whatever the writer's is called
_VANISHED = 24  # rsync's exit status when source files were deleted while it ran


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
    if not path.startswith("/"):
        raise PublishError("give the replica's index folder as an absolute path, such as "
                           f"{host}:/srv/searchsvc/index")
    staging = f"{path.rstrip('/')}/{STAGING}"
    rsync = ["rsync", "--archive", "--mkpath", "--rsh", ssh]
    for _ in range(ATTEMPTS):
        marker, found = store.current_commit()
        with tempfile.TemporaryDirectory(prefix="searchsvc-publish-") as tmp:
            head = Path(tmp)
            wanted = head / "files"
            wanted.write_text("".join(f"/{name}\n" for name in sorted(found.files)), encoding="utf-8")
            sent = _run([*rsync, "--delete", "--delete-excluded", f"--include-from={wanted}", "--exclude=*",
                         f"{store.generation_path(marker.generation)}/", f"{host}:{staging}/{STAGED}/"],
                        f"rsync to {dest}", allowed=(_VANISHED,))
            if sent is None or _gone(store, marker.generation, found):
                continue  # a commit deleted a file of this one while it was sent: send the newer one
            staged = IndexStore(head / "index")
            staged.root.mkdir()
            manifests.write(staged.root, found.moved_to(STAGED))
            staged.make_current(STAGED)
            _run([*rsync, f"{staged.root}/", f"{host}:{staging}/"], f"rsync to {dest}")
        remote = (f"{remote_searchsvc} publish --wait {wait:g} --index {shlex.quote(staging)} "
                  f"{shlex.quote(path)}")
        return (_run([*shlex.split(ssh), host, remote], f"publish on {host}") or "").strip()
    raise PublishError(f"the index at {store.root} changed {ATTEMPTS} times while it was being sent; try again")


def _gone(store: IndexStore, generation: str, found: manifests.Manifest) -> bool:
    """Whether a file of `found` is gone from the source since it was read: rsync skips a file
    deleted before it lists them without a word (an include rule matches nothing), and the
    replica would be told its staging copy is damaged. A file there now was there when rsync
    listed them: Whoosh never makes a file again under a name it deleted. IndexDamaged when no
    newer commit deleted it."""
    folder = store.generation_path(generation)
    missing = [name for name in sorted(found.files) if not (folder / name).is_file()]
    if not missing:
        return False
    if manifests.read(store.root, generation) == found and store.marker().generation == generation:
        raise store.damaged(*(f"{folder / name} is missing" for name in missing))
    return True


def _run(command: list[str], what: str, allowed: tuple[int, ...] = ()) -> str | None:
    """The command's output; None when it ended with one of the `allowed` failures."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    except FileNotFoundError as e:
        raise PublishError(f"{what} failed: {e.filename} is not installed") from None
    if done.returncode in allowed:
        return None
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip()).splitlines()
        reason = said[-1] if said else f"exit status {done.returncode}"
        raise PublishError(f"{what} failed: {reason.removeprefix('Error: ')}")
    return done.stdout
