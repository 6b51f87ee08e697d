"""Where the index lives on disk, and the only way to open it or write to it.

Layout of an index directory:

    searchsvc-index.json   the marker: format, schema version, current generation
    g000001/               a complete Whoosh index (one "generation")
    g000001.manifest.json  its last commit: table of contents, files, sizes, checksums (manifest.py)
    .lock                  flock'ed by the one writer; the kernel frees it if we die
    .fetched.lock          the same for the fetch state (searchsvc-fetched.json, ingest/follow.py)

`--rebuild` writes a new generation beside the current one and switches the marker to it
with an atomic rename, so readers of the old generation keep working and a rebuild that
dies half-way leaves the old index as it was. The generation before the current one is
kept until the next rebuild, for searchers still reading it; older ones are removed.

We open a Whoosh index only where our marker says one is, and read a table of contents
only as its generation's manifest names it, after its checksum matched (toc.py): Whoosh
unpickles it, and a directory we did not create is untrusted. Commits are durable (commit.py).
Our own small files are read within bounds and written without following links (files.py); a
folder holding anything else is not "empty" to create an index in, and a link where we expect
a file or folder of ours is refused, never followed.
"""

from __future__ import annotations

import fcntl
import gc
import json
import os
import re
import shutil
import time
import warnings
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from whoosh.filedb.filestore import FileStorage

from searchsvc.dates import utc_timestamp
from searchsvc.errors import IndexBusy, IndexDamaged, IndexMissing, IndexVersionMismatch, NotAnIndex
from searchsvc.index import files as own
from searchsvc.index import manifest as manifests
from searchsvc.index import seam
from searchsvc.index.codec import check_postings
from searchsvc.index.commit import SEGMENT_FILE, commit
from searchsvc.index.files import NotOurFile
from searchsvc.index.schema import SCHEMA_VERSION, build_schema
from searchsvc.index.toc import INDEX_NAME, TOC_FILE, BadTableOfContents, PinnedIndex, toc_generations, toc_name

MARKER = "searchsvc-index.json"
FORMAT = "searchsvc-index"
LOCK = ".lock"
FETCH_LOCK = ".fetched.lock"
STAGING = ".publish-staging"  # where a publish to another host sends its files (remote.py)
_GENERATION = re.compile(r"g[0-9]{6}")  # used with fullmatch: no trailing newline, ASCII digits
_PARTIAL = re.compile(r"\.g[0-9]{6}\.partial")  # a generation being placed (snapshot.restore, publish)


class _Replaced(Exception):
    """The table of contents a manifest named was deleted by a newer commit while opening."""


@dataclass(frozen=True)
class Marker:
    """What the marker file says about an index directory."""

    schema_version: int
    generation: str
    previous: str | None
    created: str

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "schema_version": self.schema_version,
            "generation": self.generation,
            "previous": self.previous,
            "created": self.created,
        }


class BadMarker(NotAnIndex):
    """A marker that cannot be read; `problem` says so without the advice (a snapshot's, for restore)."""

    def __init__(self, path: Path, why: str):
        self.problem = f"{path} is damaged or not a searchsvc marker{why}"
        super().__init__(f"{self.problem}; if the folder is your index, `searchsvc restore SNAPSHOT --index` a "
                         "new folder, or rebuild into one")


class IndexStore:
    """An index directory: reading its marker, opening its current generation, locking it."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    # Reading

    def marker(self) -> Marker:
        """The marker; IndexMissing if there is no index, NotAnIndex if it is not ours."""
        path = self.root / MARKER
        if not self.has_marker():
            strangers = self.strangers()
            if not strangers:
                raise IndexMissing(
                    f"no index at {self.root}: create one with `searchsvc ingest PATH...`"
                )
            held = "" if strangers == [""] else f"; it holds {', '.join(strangers)}"
            raise NotAnIndex(
                f"{self.root} is not a searchsvc index (it has no {MARKER}{held}); refusing to open "
                "it: choose another --index directory"
            )
        try:
            data = json.loads(own.read_small(path, own.MARKER_BYTES).decode("utf-8"))
            if data.get("format") != FORMAT:
                raise ValueError("wrong format")
            marker = Marker(
                int(data["schema_version"]),
                str(data["generation"]),
                data.get("previous"),
                str(data.get("created", "")),
            )
        except NotOurFile as e:
            raise BadMarker(path, f" ({e.problem})") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
            raise BadMarker(path, "") from None
        for name in (marker.generation, marker.previous):
            if name is not None and not _GENERATION.fullmatch(str(name)):
                raise NotAnIndex(f"{path} names an invalid generation {name!r}")
        return marker

    def has_marker(self) -> bool:
        """Whether anything is at the marker's name (a link too: it is then refused, not missed)."""
        return os.path.lexists(self.root / MARKER)

    def is_empty(self) -> bool:
        """True when the directory is absent or holds nothing but what searchsvc itself leaves in
        a folder before an index is made there (its locks, a killed publish's partial folder)."""
        return not self.strangers()

    def strangers(self) -> list[str]:
        """What the directory holds that searchsvc did not make there, each named with its kind
        (".gitignore (a file)", ".lock (a symbolic link)"); [""] if it is not a directory."""
        if not os.path.lexists(self.root):
            return []
        if not self.root.is_dir():
            return [""]
        found = []
        for path in sorted(self.root.iterdir()):
            what = own.kind(path)
            ours = ((path.name in (LOCK, FETCH_LOCK) and what == "a file")
                    or ((path.name == STAGING or _PARTIAL.fullmatch(path.name)) and what == "a folder"))
            if not ours:
                found.append(f"{path.name} ({what})")
        return found

    def open(self, *, check_version: bool = True, full_check: bool = False) -> PinnedIndex:
        """The current generation, for reading; IndexVersionMismatch if built by another schema,
        IndexDamaged if a file of its commit is missing, of another size, or (table of contents
        always, every file with `full_check`) does not match its checksum.

        With `check_version=False` (export, rebuild) an index of an older schema opens too, and one
        built before manifests: its table of contents is then read unchecked, but still only with
        Whoosh's own classes allowed (toc.py).
        """
        marker = self.marker()
        if check_version and marker.schema_version != SCHEMA_VERSION:
            raise IndexVersionMismatch(
                f"the index at {self.root} was built with schema version {marker.schema_version}, "
                f"this searchsvc uses version {SCHEMA_VERSION}: rebuild it with "
                "`searchsvc ingest --rebuild PATH...` (or `searchsvc export` first to keep its posts)"
            )
        # A commit by another process deletes the table of contents it replaced: read the
        # manifest again when the one it named is gone.
        for attempt in range(3):
            try:
                return self._open_generation(marker.generation, legacy=not check_version, full_check=full_check)
            except OSError as e:  # a folder or file we cannot read (permissions, a symlink loop)
                where = e.filename or self.generation_path(marker.generation)
                raise self.damaged(f"{where} cannot be read ({e.strerror or e})") from None
            except _Replaced:
                if attempt == 2:
                    raise IndexDamaged(f"the index at {self.root} changed three times while it was being opened; "
                                       "try again") from None
        raise AssertionError("unreachable")

    def current_commit(self) -> tuple[Marker, manifests.Manifest]:
        """The marker and the manifest of the current commit, for copying it (snapshot, publish):
        IndexVersionMismatch for another schema version, IndexDamaged without a manifest."""
        marker = self.marker()
        if marker.schema_version != SCHEMA_VERSION:
            raise IndexVersionMismatch(f"the index at {self.root} has schema version {marker.schema_version}; "
                                       f"rebuild it first (this searchsvc uses version {SCHEMA_VERSION})")
        found = manifests.read(self.root, marker.generation)
        if found is None:
            raise self.damaged(f"{manifests.path_of(self.root, marker.generation)} is missing")
        return marker, found

    def commit_key(self) -> tuple[str, str | None]:
        """What names the current commit, cheaply (the marker's generation and its manifest's sum,
        no file checked): changes with every commit, rebuild and publish."""
        marker = self.marker()
        found = manifests.read(self.root, marker.generation)
        return marker.generation, found.commit_id if found is not None else None

    def generation_path(self, name: str) -> Path:
        return self.root / name

    def damaged(self, *problems: str) -> IndexDamaged:
        """The error for this index with `problems`, saying how to repair it (one wording for
        every command, the server and the snapshots)."""
        return IndexDamaged(f"the index at {self.root} is damaged: {'; '.join(problems)}; {seam.REBUILD}")

    def problems(self, name: str, *, full: bool) -> list[str]:
        """What is wrong with generation `name` (empty: nothing): its manifest, and each file of
        its commit by size or (with `full`) by checksum."""
        try:
            found = manifests.read(self.root, name)
        except IndexDamaged as e:
            return [str(e)]
        if found is None:
            return [f"{manifests.path_of(self.root, name)} is missing"]
        return list(manifests.problems(self.generation_path(name), found, full=full))

    def _open_generation(self, name: str, *, legacy: bool = False, full_check: bool = False) -> PinnedIndex:
        folder = self.generation_path(name)
        if not folder.is_dir() or folder.is_symlink():
            what = "is not a folder of its own" if folder.is_symlink() or folder.exists() else "is missing"
            raise self.damaged(f"its current generation {name} {what}")
        found = manifests.read(self.root, name)
        if found is None:
            tocs = toc_generations(folder)
            if not legacy or not tocs:
                raise self.damaged(f"{manifests.path_of(self.root, name)} is missing")
            toc = tocs[-1]  # an index from before manifests: export it, or rebuild over it
            if (what := own.kind(folder / toc_name(toc))) != "a file":  # read unchecked: not a FIFO at least
                raise self.damaged(f"{folder / toc_name(toc)} is {what}, not a table of contents")
        else:
            toc = found.toc
            if toc_name(toc) not in found.files:
                raise self.damaged("its manifest names no table of contents")
            bad = list(manifests.problems(folder, found, full=full_check))
            if not full_check and not bad:  # the table of contents is unpickled: it must be the one committed
                bad += manifests.problems(folder, found, full=True, names=[toc_name(toc)])
            if bad:
                if not (folder / toc_name(toc)).exists() and manifests.read(self.root, name) != found:
                    raise _Replaced()
                raise self.damaged(*bad)
        ix = PinnedIndex(FileStorage(str(folder)), build_schema(), toc, root=self.root, name=name, manifest=found)
        # Open every segment once: a truncated or missing file fails here, not mid-search; and
        # each one's count of posts is what its files hold (a forged count costs every search).
        where = folder / toc_name(toc)
        self._read(ix, lambda reader: seam.check_doc_counts(reader, where=str(where)), toc=where)
        return ix

    def read_every_pickle(self, ix: PinnedIndex, segments: Collection[str] | None = None) -> None:
        """Read everything of `ix` that Whoosh unpickles only when it is used (stored documents,
        inlined terms; of the `segments` named, else all) through our unpicklers, and every
        postings array: IndexDamaged for a forged or unreadable one. For `check`, and what copies an index (seam.py)."""
        def read(reader: Any) -> None:
            seam.read_every_pickle(reader, segments)
            check_postings(reader, segments)  # and every postings array, as a search reads them

        self._read(ix, read)

    def _read(self, ix: PinnedIndex, read: Callable[[Any], object], toc: Path | None = None) -> None:
        """`read` a reader of `ix` (whose table of contents is `toc`); any failure to read our own
        files is IndexDamaged."""
        failure = None
        # Whoosh leaves a damaged segment's file to the garbage collector: it is closed when
        # the failure is dropped, below, without a ResourceWarning for each retry.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            try:
                with ix.reader() as reader:
                    read(reader)
                return
            except seam.ForgedData as e:  # a forged file: refused before it ran anything
                failure = self.damaged(e.problem)
            except BadTableOfContents as e:
                failure = self.damaged(f"{toc or 'its table of contents'}: {e}")
            except Exception as e:  # any failure to read our own files is damage
                failure = IndexDamaged(f"the index at {self.root} is damaged and cannot be read "
                                       f"({type(e).__name__}: {e}); {seam.REBUILD}")
            gc.collect()
        raise failure

    def last_update(self) -> datetime | None:
        """When the current generation was last committed (its newest table of contents)."""
        path = self.generation_path(self.marker().generation)
        tocs = [p.stat().st_mtime for p in path.glob("*.toc")]
        return datetime.fromtimestamp(max(tocs), timezone.utc) if tocs else None

    def disk_size(self) -> int:
        """Bytes on disk of the current generation."""
        path = self.generation_path(self.marker().generation)
        return sum(p.stat().st_size for p in path.iterdir() if p.is_file())

    # Writing (only inside `locked()`)

    @contextmanager
    def locked(self, wait: float) -> Iterator[None]:
        """Hold the index's one write lock, waiting at most `wait` seconds for it."""
        self._check_creatable()
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            fd = own.open_lock(self.root / LOCK)
        except NotOurFile as e:
            raise own.not_ours(self.root / LOCK, self.root, e) from None
        try:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise IndexBusy(
                            f"index busy: another process is writing to {self.root} "
                            f"(waited {wait:g} s; try again later or give a longer --wait)"
                        ) from None
                    time.sleep(0.05)
            self._remove_abandoned()
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def _check_creatable(self) -> None:
        if self.has_marker():
            self.marker()  # a marker that cannot be read (a link, damaged): NotAnIndex
            return
        if not self.is_empty():
            self.marker()  # raises NotAnIndex, saying what is there

    def new_generation(self) -> tuple[str, PinnedIndex]:
        """An empty index in a fresh generation directory, committed but not yet current."""
        name = self.next_generation_name()
        path = self.generation_path(name)
        path.mkdir()
        manifests.sync_folder(self.root)
        schema = build_schema()
        ix = PinnedIndex(FileStorage(str(path)), schema, 0, root=self.root, name=name)
        commit(ix, schema, [], 0)
        return name, ix

    def next_generation_name(self) -> str:
        """The name of a generation not yet made ("g000002" after "g000001")."""
        names = {p.name.removesuffix(manifests.SUFFIX) for p in self.root.iterdir()}
        if self.has_marker():
            marker = self.marker()
            names |= {marker.generation, marker.previous or ""}
        taken = [int(name[1:]) for name in names if _GENERATION.fullmatch(name)]
        number = max(taken, default=0) + 1
        if number > 999_999:
            raise IndexDamaged(f"the index at {self.root} has no generation names left (g999999 is taken): "
                               "move it aside and rebuild it")
        return f"g{number:06d}"

    def is_whole(self, name: str | None) -> bool:
        """Whether generation `name` is a real folder holding every file of its manifest at
        its committed size (what may be kept, or deleted as abandoned, depends on it)."""
        if not name or not _GENERATION.fullmatch(name):
            return False
        folder = self.generation_path(name)
        if not folder.is_dir() or folder.is_symlink():
            return False
        if not manifests.path_of(self.root, name).exists():
            return bool(toc_generations(folder))  # built before manifests (an older schema): kept as it is
        return not self.problems(name, full=False)

    def make_current(self, name: str) -> None:
        """Atomically point the marker at generation `name`, keeping the one it replaces."""
        if self.has_marker():
            old = self.marker()
            # Keep the last whole generation as the fallback, not a missing or damaged one.
            others = sorted((p.name for p in self.root.iterdir() if _GENERATION.fullmatch(p.name)), reverse=True)
            candidates = [old.generation, old.previous, *others]
            previous = next((g for g in candidates if g != name and self.is_whole(g)), None)
            created = old.created
        else:
            previous, created = None, utc_timestamp()
        marker = Marker(SCHEMA_VERSION, name, previous, created)
        own.write_replacing(self.root / MARKER, json.dumps(marker.to_json(), indent=2).encode("utf-8"))
        manifests.sync_folder(self.root)
        self._remove_abandoned()

    def open_for_writing(self, *, any_version: bool = False) -> PinnedIndex:
        """The current generation, creating the index if the directory is empty.

        `any_version` is for a rebuild, which replaces an index of another schema version.
        """
        if not self.has_marker():
            name, ix = self.new_generation()
            self.make_current(name)
            return ix
        # A commit merges old segments into new ones with fresh checksums: every byte it may read
        # is checked first, or damage would be laundered into a segment that passes `check`.
        return self.open(check_version=not any_version, full_check=True)

    def discard_generation(self, name: str) -> None:
        """Remove a generation that was never made current (a failed rebuild)."""
        marker = self.marker() if self.has_marker() else None
        if marker is None or name not in (marker.generation, marker.previous):
            shutil.rmtree(self.generation_path(name), ignore_errors=True)
            manifests.path_of(self.root, name).unlink(missing_ok=True)

    def _remove_abandoned(self) -> None:
        """Delete generations that are neither current nor previous (old or half-built), and the
        files of an unfinished commit in the current one. Only when the current generation is
        whole: with a marker naming a missing or damaged generation, every other generation may be
        what an operator needs to recover, and nothing is deleted."""
        try:
            marker = self.marker()
            current = manifests.read(self.root, marker.generation)
        except (IndexMissing, NotAnIndex, IndexDamaged, OSError):
            return
        if current is None or not self.is_whole(marker.generation):
            return  # a stale, missing or damaged commit: every file may be what recovers it
        keep = {marker.generation, marker.previous}
        for path in self.root.iterdir():
            if _PARTIAL.fullmatch(path.name) and path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)  # a restore or publish that was killed
                continue
            generation = path.name.removesuffix(manifests.SUFFIX)
            if _GENERATION.fullmatch(generation) and generation not in keep:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        self._remove_uncommitted(marker.generation, current)

    def _remove_uncommitted(self, name: str, current: manifests.Manifest) -> None:
        """Files a crashed commit wrote into generation `name` after its last manifest: a newer
        table of contents would otherwise be taken up by the next writer, a commit never made."""
        folder = self.generation_path(name)
        for path in folder.iterdir():
            if path.name in current.files or path.name.startswith(".") or path.name.endswith("WRITELOCK"):
                continue
            if TOC_FILE.match(path.name) or SEGMENT_FILE.match(path.name) or path.name.startswith(f"_{INDEX_NAME}_"):
                path.unlink(missing_ok=True)
