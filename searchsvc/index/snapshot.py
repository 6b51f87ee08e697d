"""Snapshots: a consistent, checked copy of the current generation, taken while servers read and
ingests write, and restoring one.

No lock is taken: the manifest names the files of one commit, and Whoosh never rewrites a file,
only deletes it once a newer commit no longer needs it. A snapshot links (or copies) exactly the
files one manifest names, then checks every byte against it; when a commit deleted a file in
the meantime, it starts again from the newer manifest. A snapshot is itself an index directory:
`--index SNAPSHOT` searches it, `searchsvc check --index SNAPSHOT` verifies it.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from searchsvc.errors import IndexDamaged, IndexMissing, NotAnIndex, SearchsvcError
from searchsvc.index import files as own
from searchsvc.index import manifest as manifests
from searchsvc.index.schema import SCHEMA_VERSION
from searchsvc.index.store import MARKER, BadMarker, IndexStore

ATTEMPTS = 5  # commits that may delete a file under a snapshot before it gives up


class SnapshotError(SearchsvcError):
    """A snapshot cannot be taken or restored (the destination exists, or keeps changing)."""


@dataclass(frozen=True)
class SnapshotResult:
    location: str
    generation: str
    files: int
    bytes: int
    linked: int  # files hard-linked rather than copied
    seconds: float


def snapshot(store: IndexStore, dest: Path, *, copy: bool = False) -> SnapshotResult:
    """Snapshot the current generation of `store` into the new directory `dest` (hard links
    where the file system allows, unless `copy`). Raises SnapshotError, IndexDamaged."""
    started = time.perf_counter()
    if dest.exists() and any(dest.iterdir()):
        raise SnapshotError(f"{dest} already exists and is not empty: choose a new directory for the snapshot")
    if dest.resolve().is_relative_to(store.root.resolve()):
        raise SnapshotError(f"{dest} is inside the index at {store.root}, whose next ingest would delete it: "
                            "choose a directory outside it")
    made = not dest.exists()
    try:
        return _snapshot(store, dest, copy=copy, started=started)
    except BaseException:
        for leftover in dest.glob(".*.partial") if dest.is_dir() else ():
            shutil.rmtree(leftover, ignore_errors=True)
        if made and dest.is_dir() and not any(dest.iterdir()):
            dest.rmdir()
        raise


def _snapshot(store: IndexStore, dest: Path, *, copy: bool, started: float) -> SnapshotResult:
    for _ in range(ATTEMPTS):
        marker, found = store.current_commit()
        dest.mkdir(parents=True, exist_ok=True)
        partial = dest / f".{marker.generation}.partial"
        own.remove_leftover(partial, folder=True)
        partial.mkdir()
        source = store.generation_path(marker.generation)
        try:
            linked = _place(source, partial, found, link=not copy)
        except FileNotFoundError:
            shutil.rmtree(partial)
            if manifests.read(store.root, marker.generation) == found and store.marker() == marker:
                bad = store.problems(marker.generation, full=False)  # nothing changed: a file is gone
                raise store.damaged(*bad) from None
            continue  # a commit replaced this one under us: snapshot the newer commit
        _finish(partial, dest, found, source, marker.generation)
        copied = IndexStore(dest)
        copied.make_current(marker.generation)
        try:
            # It opens as an index, and nothing in it is forged: a snapshot restore would refuse is no use.
            copied.read_every_pickle(copied.open())
        except IndexDamaged as e:
            shutil.rmtree(dest / marker.generation, ignore_errors=True)
            for name in (manifests.path_of(dest, marker.generation), dest / MARKER):
                name.unlink(missing_ok=True)
            raise IndexDamaged(str(e).replace(str(dest), str(store.root))) from None
        size = sum(s.size for s in found.files.values())
        return SnapshotResult(str(dest.resolve()), marker.generation, len(found.files), size, linked,
                              round(time.perf_counter() - started, 3))
    raise SnapshotError(f"the index at {store.root} changed {ATTEMPTS} times while the snapshot was taken; try again")


def restore(store: IndexStore, source: Path, *, wait: float) -> str:
    """Make the snapshot at `source` the current generation of `store` (copied, never linked, so
    the index owns its bytes), after checking every byte of it. Servers reading `store` switch to
    it at their next request. Returns the new generation's name."""
    snap = IndexStore(source)
    try:
        marker = snap.marker()
    except BadMarker as e:  # a link (to /dev/zero ...), a FIFO, garbled
        raise IndexDamaged(f"the snapshot at {source} is damaged: {e.problem}") from None
    except (IndexMissing, NotAnIndex):
        raise SnapshotError(f"{source} is not a snapshot (a `searchsvc snapshot` or index directory)") from None
    bad = snap.problems(marker.generation, full=True)
    if not bad:
        try:
            # Its table of contents and segments can be read, and nothing in them was forged
            # (a snapshot may come from anywhere, with its sums recomputed).
            snap.read_every_pickle(snap.open(check_version=False))
        except IndexDamaged as e:
            bad = [str(e)]
    if bad:
        raise IndexDamaged(f"the snapshot at {source} is damaged: {'; '.join(bad)}")
    if store.has_marker():
        store.marker()  # an index whose marker cannot be read is not written into
    if marker.schema_version != SCHEMA_VERSION:
        raise SnapshotError(f"the snapshot at {source} has schema version {marker.schema_version}, "
                            f"this searchsvc uses {SCHEMA_VERSION}")
    found = manifests.read(source, marker.generation)
    assert found is not None
    with store.locked(wait):
        name = store.next_generation_name()
        target = store.generation_path(name)
        partial = store.root / f".{name}.partial"
        own.remove_leftover(partial, folder=True)
        partial.mkdir()
        _place(snap.generation_path(marker.generation), partial, found, link=False)
        _finish(partial, store.root, found.moved_to(name),
                snap.generation_path(marker.generation), name,
                target=target)
        try:
            store._open_generation(name)  # the copy opens before any reader is switched to it
        except (IndexDamaged, OSError):
            store.discard_generation(name)
            raise
        store.make_current(name)
    return name


def _place(source: Path, partial: Path, found: manifests.Manifest, *, link: bool) -> int:
    """Link or copy the files of `found` from `source` into `partial`; how many were linked."""
    linked = 0
    for name in found.files:
        if link:
            try:
                os.link(source / name, partial / name)
                linked += 1
                continue
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                    raise
        shutil.copyfile(source / name, partial / name)
        manifests.sync_file(partial / name)
    return linked


def _finish(partial: Path, root: Path, found: manifests.Manifest, origin: Path, generation: str,
            target: Path | None = None) -> None:
    """Check every byte placed in `partial`, then move it into place with its manifest, synced."""
    bad = [problem.replace(str(partial), str(origin)) for problem in manifests.problems(partial, found, full=True)]
    if bad:
        shutil.rmtree(partial, ignore_errors=True)
        raise IndexDamaged(f"{origin} is damaged: {'; '.join(bad)}")
    manifests.sync_folder(partial)
    os.replace(partial, target or root / generation)
    manifests.write(root, found)
