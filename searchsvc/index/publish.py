"""Publishing: the writer's current commit shipped to read replicas as files.

Every commit is immutable (Whoosh never rewrites a file, and the manifest names each file with
its checksum), so a replica is a copy of the files one manifest names, swapped in the way a
rebuild swaps generations: a new generation folder beside the one being served, checked byte
for byte, then the marker renamed over to it (store.IndexStore.make_current). Readers in flight
keep the generation they opened; it stays as the previous one until the next publish.

A publish takes the destination's write lock, so two publishes, or a publish and an ingest,
never write into one replica at once. Killed at any moment, it leaves the destination serving
its old commit, and what it left behind (a `.gNNNNNN.partial` folder, or a generation never made
current) is removed by the next one (store.IndexStore.locked).

Only what the destination lacks is written: a file of the same name and checksum in the
generation it serves is hard-linked from there; on the writer's own file system the rest is
hard-linked from the writer's generation, elsewhere copied. For another host
(`host:path`), the commit goes over rsync into a staging index beside the replica, where rsync
sends only files the staging copy lacks, and `searchsvc publish` run there over ssh does the
local publish above (remote.py).
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from searchsvc.errors import IndexDamaged, SearchsvcError
from searchsvc.index import files as own
from searchsvc.index import manifest as manifests
from searchsvc.index.commit import SEGMENT_FILE
from searchsvc.index.store import IndexStore

ATTEMPTS = 5  # commits that may replace the source's files under a publish before it gives up


class PublishError(SearchsvcError):
    """A commit cannot be published (the destination is the source, or the source keeps changing)."""


@dataclass(frozen=True)
class Published:
    destination: str
    generation: str  # the destination's folder now serving the commit
    commit: str  # manifest.Manifest.commit_id, the same as the source's
    files: int
    linked: int  # files hard-linked (from the destination's previous generation or the source)
    copied: int
    bytes_copied: int
    seconds: float
    unchanged: bool  # the destination already served this commit: nothing was written


def publish(store: IndexStore, dest: Path, *, wait: float, copy: bool = False, force: bool = False) -> Published:
    """Make the current commit of `store` the current generation of the index at `dest`.

    `copy` copies the files the destination lacks even where they could be hard-linked from the
    source (a replica that must not share inodes with the writer). `force` publishes to a
    destination that serves the commit already: every byte checked again, a damaged file
    taken from the source (a repair). Raises PublishError,
    IndexDamaged (the source's files do not match its manifest), IndexBusy, NotAnIndex."""
    started = time.perf_counter()
    if dest.resolve() == store.root.resolve():
        raise PublishError(f"{dest} is the index being published: give a replica's index folder")
    if dest.resolve().is_relative_to(store.root.resolve()):
        raise PublishError(f"{dest} is inside the index at {store.root}, whose next ingest would delete it: "
                           "choose a folder outside it")
    replica = IndexStore(dest)
    for _ in range(ATTEMPTS):
        marker, found = store.current_commit()
        with replica.locked(wait):
            serving = _serving(replica)
            if serving is not None and serving[1].commit_id == found.commit_id and not force:
                return Published(str(dest.resolve()), serving[0], found.commit_id, len(found.files), 0, 0, 0,
                                 round(time.perf_counter() - started, 3), unchanged=True)
            name = replica.next_generation_name()
            partial = replica.root / f".{name}.partial"
            own.remove_leftover(partial, folder=True)
            partial.mkdir()
            source = store.generation_path(marker.generation)
            moved = found.moved_to(name)
            placed = _Placed()
            try:
                _place(source, partial, found, serving, replica, placed, copy=copy)
                bad = _damaged(partial, moved, list(found.files))
                # A file the replica already had may have been damaged since: it is taken from the
                # source instead, and only the source's own damage stops the publish.
                here = [n for n in bad if n in placed.reused]
                if here:
                    placed.linked -= len(here)
                    for n in here:
                        (partial / n).unlink()
                    _place(source, partial, found, None, replica, placed, copy=copy, names=here)
                    bad = [n for n in bad if n not in here] + _damaged(partial, moved, here)
            except FileNotFoundError:
                shutil.rmtree(partial, ignore_errors=True)
                if manifests.read(store.root, marker.generation) == found and store.marker() == marker:
                    raise store.damaged(*store.problems(marker.generation, full=False)) from None
                continue  # a commit replaced this one under us: publish the newer commit
            if bad:
                said = [problem.replace(str(partial), str(source))
                        for problem in manifests.problems(partial, moved, full=True, names=sorted(bad))]
                shutil.rmtree(partial, ignore_errors=True)
                if manifests.read(store.root, marker.generation) != found:
                    continue  # changed under us: a newer commit
                raise store.damaged(*said)
            manifests.sync_folder(partial)
            os.replace(partial, replica.generation_path(name))
            manifests.write(replica.root, moved)
            try:
                # It opens before any reader is switched to it, and its new segments hold nothing forged.
                fresh = {m[1] for n in found.files if n not in placed.reused and (m := SEGMENT_FILE.match(n))}
                replica.read_every_pickle(replica._open_generation(name), fresh)
            except IndexDamaged as e:  # its bytes are the source's, checked: the source is damaged
                replica.discard_generation(name)
                raise IndexDamaged(str(e).replace(str(replica.root), str(store.root))) from None
            except OSError:
                replica.discard_generation(name)
                raise
            replica.make_current(name)
            return Published(str(dest.resolve()), name, found.commit_id, len(found.files), placed.linked,
                             placed.copied, placed.bytes, round(time.perf_counter() - started, 3), unchanged=False)
    raise PublishError(f"the index at {store.root} changed {ATTEMPTS} times while it was being published; "
                       "try again")


def _serving(replica: IndexStore) -> tuple[str, manifests.Manifest] | None:
    """The destination's current generation and its manifest, if it has a whole one."""
    if replica.is_empty():
        return None
    marker = replica.marker()  # NotAnIndex: a folder that is not a searchsvc index is not written into
    if not replica.is_whole(marker.generation):
        return None
    found = manifests.read(replica.root, marker.generation)
    return (marker.generation, found) if found is not None else None


def _damaged(folder: Path, found: manifests.Manifest, names: list[str]) -> list[str]:
    """The files among `names` whose bytes in `folder` do not match `found`."""
    return [name for name in names if any(manifests.problems(folder, found, full=True, names=[name]))]


@dataclass
class _Placed:
    linked: int = 0  # hard-linked, from the replica's own generation or the source
    copied: int = 0
    bytes: int = 0  # copied
    reused: list[str] = field(default_factory=list)  # linked from the replica's own generation


def _place(source: Path, partial: Path, found: manifests.Manifest, serving: tuple[str, manifests.Manifest] | None,
           replica: IndexStore, placed: _Placed, *, copy: bool, names: list[str] | None = None) -> None:
    """Put the files of `found` (or only `names`) into `partial`, counting into `placed`."""
    for name in found.files if names is None else names:
        wanted, target = found.files[name], partial / name
        if serving is not None and serving[1].files.get(name) == wanted:
            os.link(replica.generation_path(serving[0]) / name, target)  # the same folder: always possible
            placed.linked += 1
            placed.reused.append(name)
            continue
        if not copy:
            try:
                os.link(source / name, target)
                placed.linked += 1
                continue
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                    raise
        shutil.copyfile(source / name, target)
        manifests.sync_file(target)
        placed.copied += 1
        placed.bytes += wanted.size
