"""Whoosh's table of contents, read safely, and an index pinned to the one a manifest names.

Whoosh's own `FileIndex` unpickles the newest `_MAIN_<n>.toc` it finds, as soon as it is
constructed: a forged table of contents in a directory ran code in every command. Here a table
of contents is read only after its checksum matched the manifest (store.py), without its pickled
schema (ours is used), and its segment list through an unpickler that admits only the classes
Whoosh writes into one (seam.py, which every PinnedIndex installs). The index reads the table of
contents the manifest names, not the newest file, so a commit is visible only once its
manifest is written (commit.py).
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

from whoosh.codec.whoosh3 import W3Segment
from whoosh.fields import Schema, ensure_schema
from whoosh.filedb.filestore import FileStorage
from whoosh.index import _CURRENT_TOC_VERSION, _FLOAT_SIZE, _INT_SIZE, _LONG_SIZE, TOC, FileIndex

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
    return TOC(schema, segments, generation, version=_CURRENT_TOC_VERSION, release=release)


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

    def _read_toc(self) -> TOC:
        return read_toc(self.storage, self._schema, self.toc_generation)
