"""Whoosh's table of contents, read safely, and an index pinned to the one a manifest names.

Whoosh's own `FileIndex` unpickles the newest `_MAIN_<n>.toc` it finds, as soon as it is
constructed: a forged table of contents in a directory ran code in every command. Here a table
of contents is read only after its checksum matched the manifest (store.py), without its pickled
schema (ours is used), and its segment list through an unpickler that admits only the classes
Whoosh writes into one (seam.py, which every PinnedIndex installs). The index reads the table of
contents the manifest names, not the newest file, so a commit is visible only once its
manifest is written (commit.py).

Its checksums prove nothing against someone who recomputes them, so each segment's fields are
checked against what its files can hold: a count of posts edited to 50,000,000 made every search
allocate arrays of that size (11-16 s and 3 GB each, then a traceback) while /healthz said "ok".
A segment holds at most one post per byte of its files (the stored posts' column alone has a
length byte or more for each; seam.check_doc_counts then matches that column exactly).
"""

from __future__ import annotations

import fcntl
import os
import pickle
import re
from pathlib import Path
from typing import Any

from whoosh.codec.whoosh3 import W3Segment
from whoosh.fields import Schema, ensure_schema
from whoosh.filedb.filestore import FileStorage
from whoosh.index import _CURRENT_TOC_VERSION, _FLOAT_SIZE, _INT_SIZE, _LONG_SIZE, TOC, FileIndex

from searchsvc.index import files as own
from searchsvc.index import seam

INDEX_NAME = "MAIN"
TOC_FILE = re.compile(r"^_MAIN_(\d+)\.toc$")
_SEGMENT_ID = re.compile(r"[0-9a-z]{1,32}")


class BadTableOfContents(Exception):
    """The table of contents is not one Whoosh wrote for our schema."""


def toc_name(generation: int) -> str:
    return f"_{INDEX_NAME}_{generation}.toc"


def toc_generations(folder: Path) -> list[int]:
    """The table-of-contents generations present in a folder, ascending."""
    found = (TOC_FILE.match(p.name) for p in folder.iterdir())
    return sorted(int(m[1]) for m in found if m)


def read_toc(storage: FileStorage, schema: Schema, generation: int) -> TOC:
    """The table of contents `_MAIN_<generation>.toc`, with our schema (the stored one is never
    unpickled) and its segment list unpickled with only Whoosh's own classes allowed.

    Raises BadTableOfContents, seam.UnsafePickle (a class no table of contents holds), or
    OSError / EOFError / struct.error on a cut file.
    """
    stream = storage.open_file(toc_name(generation))
    try:
        for size in (_INT_SIZE, _LONG_SIZE, _FLOAT_SIZE):
            if stream.read_varint() != size:
                raise BadTableOfContents("it was written on another architecture")
        if stream.read_int() != -12345 or stream.read_int() != _CURRENT_TOC_VERSION:
            raise BadTableOfContents("it is not in Whoosh 2.7's format")
        release = (stream.read_varint(), stream.read_varint(), stream.read_varint())
        stream.skip_string()  # the pickled schema: ours is used instead
        if stream.read_int() != generation:
            raise BadTableOfContents("it names another generation")
        stream.read_int()  # unused
        segments = seam.load_segments(stream.file)
    except seam.UnsafePickle:
        raise
    except pickle.UnpicklingError as e:
        raise BadTableOfContents(f"its segment list cannot be read ({e})") from None
    finally:
        stream.close()
    if not isinstance(segments, list) or not all(isinstance(s, W3Segment) for s in segments):
        raise BadTableOfContents("its segment list is not a list of segments")
    for segment in segments:
        # A segment names its files: they must be in this folder, named as Whoosh names them.
        if getattr(segment, "indexname", None) != INDEX_NAME or not _SEGMENT_ID.fullmatch(str(segment.segid)):
            raise BadTableOfContents("it names segment files outside its generation")
    sizes = _segment_sizes(storage)
    for segment in segments:
        if problem := _segment_problem(segment, sizes.get(segment.segid, 0)):
            raise BadTableOfContents(f"segment {segment.segid} {problem}")
    return TOC(schema, segments, generation, version=_CURRENT_TOC_VERSION, release=release)


def _segment_sizes(storage: FileStorage) -> dict[str, int]:
    """Bytes of each segment's files (`MAIN_<segid>.<ext>`) in the folder, by segment id."""
    sizes: dict[str, int] = {}
    for name in storage.list():
        head, dot, _ = name.partition(".")
        if dot and head.startswith(f"{INDEX_NAME}_"):
            segid = head.removeprefix(f"{INDEX_NAME}_")
            sizes[segid] = sizes.get(segid, 0) + storage.file_length(name)
    return sizes


def _segment_problem(segment: W3Segment, size: int) -> str | None:
    """What in a segment's fields its files cannot hold (None: nothing)."""
    fields = vars(segment)
    count = fields.get("_doccount")
    if type(count) is not int or count < 0:
        return f"has a post count of {count!r}"
    if count > size:
        return f"says it holds {count:,} posts, more than its {size:,} bytes of files can hold"
    deleted = fields.get("_deleted")
    if deleted is not None and (not isinstance(deleted, (set, frozenset)) or len(deleted) > count
                                or not all(type(n) is int and 0 <= n < count for n in deleted)):
        return "has deleted posts it does not hold"
    lengths = fields.get("_fieldlengths", {})
    if not isinstance(lengths, dict) or not all(isinstance(k, str) and type(v) is int and v >= 0
                                                for k, v in lengths.items()):
        return "has field lengths that are not counts"
    if type(fields.get("compound")) is not bool:
        return "does not say whether it is one file"
    return None


class _Lock:
    """Whoosh's write lock of a generation (`MAIN_WRITELOCK`), opened without following a link
    (Whoosh's own opens whatever a planted link points to, creating it)."""

    def __init__(self, path: str):
        self.path = path
        self.fd: int | None = None

    def acquire(self, blocking: bool = False) -> bool:
        try:
            fd = own.open_lock(Path(self.path))
        except own.NotOurFile as e:
            raise own.not_ours(Path(self.path), Path(self.path).parent, e) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the flock
            self.fd = None


class PinnedIndex(FileIndex):
    """A Whoosh index whose current table of contents is generation `toc`, read with read_toc.

    `root` and `name` say where it lives (the index directory and the generation folder), for
    the commit that writes the next manifest; `manifest` is the one it was opened with (None for
    an index built before manifests, read only to export it).
    """

    def __init__(self, storage: FileStorage, schema: Schema, toc: int, *, root: Path, name: str,
                 manifest: Any = None):
        # Not FileIndex.__init__: it reads (and unpickles) the newest table of contents.
        seam.install()  # every Whoosh read of this index's files goes through our unpicklers
        self.storage = storage
        self._schema = ensure_schema(schema)
        self.indexname = INDEX_NAME
        self.toc_generation = toc
        self.root = root
        self.name = name
        self.manifest = manifest

    def latest_generation(self) -> int:
        return self.toc_generation

    def lock(self, name: str) -> _Lock:
        return _Lock(os.path.join(self.storage.folder, f"{INDEX_NAME}_{name}"))

    def _read_toc(self) -> TOC:
        return read_toc(self.storage, self._schema, self.toc_generation)
