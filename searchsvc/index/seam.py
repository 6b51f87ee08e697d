"""Every private part of Whoosh we replace, in one place: its pickles read without running code,
and its segment files read from the memory map (mapped_files.py).

Whoosh pickles more than its table of contents: each compound segment file's directory and
options, its term table's extras, a term's inlined postings, and every stored document. `pickle`
runs whatever a pickle names, so a file someone else wrote could run code in every command that
reads it, and the manifest's checksums cannot stop it: they have no key, and whoever forges a
file recomputes them. (A key would not help: a snapshot restored elsewhere, or a replica, must
open with the key it came with, which is then the forger's too.) So every place Whoosh unpickles
reads through `_DataUnpickler`, which admits only the classes our own data holds (a stored date
is a `datetime`, whose state protocol 2 pickles as `_codecs.encode(text, "latin1")`); the table
of contents' segment list has its own list (`load_segments`), and Whoosh's own reader of a
table of contents, which unpickles the schema, is never used (toc.PinnedIndex reads it).

`install()` puts these in Whoosh's module-level names (whoosh-reloaded 2.7.5, which we pin:
`_SITES` says which, and install checks each is still what it replaces). A pickle's classes are
looked up only for its globals: a stored post is read in 14 µs instead of 6, 0.1 ms on a page of
ten hits (a search of such a page took 10-13 ms before and after, on shared cores).
"""

from __future__ import annotations

import io
import pickle
import struct
import zlib
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from whoosh import columns, compat, formats
from whoosh.codec import plaintext, whoosh3
from whoosh.filedb import compound, structfile
from whoosh.index import TOC

from searchsvc.errors import IndexDamaged
from searchsvc.index import mapped_files

REBUILD = "rebuild it from your files with `searchsvc ingest --rebuild PATH...`"


class ForgedData(IndexDamaged):
    """Data in an index that searchsvc never writes (its checksums may be right: whoever forged
    it recomputed them): a forged or foreign file."""

    def __init__(self, problem: str):
        super().__init__(f"the index is damaged: {problem}; {REBUILD}")
        self.problem = problem  # for an error that names the index (store.IndexStore.damaged)


class UnsafePickle(ForgedData, pickle.UnpicklingError):
    """Data in an index names something searchsvc never pickles."""


def _refused(module: str, name: str) -> UnsafePickle:
    return UnsafePickle(f"a file of it holds a pickled {module}.{name}, which searchsvc never writes")


def _latin1_bytes(text: Any, encoding: Any) -> bytes:
    """`_codecs.encode` as protocol 2 uses it for bytes, and for nothing else."""
    if not isinstance(text, str) or encoding != "latin1":
        raise _refused("_codecs", "encode")
    return text.encode("latin1")


# What our stored fields, columns and Whoosh's directories hold besides builtin containers,
# strings and numbers (which pickle makes without looking up a class).
_DATA_CLASSES: dict[tuple[str, str], Any] = {
    ("datetime", "datetime"): datetime,
    ("_codecs", "encode"): _latin1_bytes,
}
# What Whoosh 2.7's segment list holds: its segments, their codec, field lengths, deletions.
_SEGMENT_CLASSES = {
    ("whoosh.codec.whoosh3", "W3Segment"),
    ("whoosh.codec.whoosh3", "W3Codec"),
    ("searchsvc.index.codec", "ArrayCodec"),
    ("collections", "defaultdict"),
    ("builtins", "int"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
}


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        found = _DATA_CLASSES.get((module, name))
        if found is None:
            raise _refused(module, name)
        return found


class _SegmentsUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _SEGMENT_CLASSES:
            raise _refused(module, name)
        return super().find_class(module, name)


def load(file: Any) -> Any:
    """pickle.load for Whoosh's data (raises UnsafePickle for anything but plain data)."""
    return _DataUnpickler(file).load()


def loads(data: Any, *args: Any, **kwargs: Any) -> Any:
    """pickle.loads for Whoosh's data (raises UnsafePickle for anything but plain data)."""
    return _DataUnpickler(io.BytesIO(data)).load()


def load_segments(file: Any) -> Any:
    """A table of contents' segment list (raises UnsafePickle for a class it never holds)."""
    return _SegmentsUnpickler(file).load()


# What reading bytes that are not what Whoosh wrote raises on the way to a stored post: a zlib
# stream that does not inflate, a pickle cut short or not a pickle, offsets out of the file.
_UNREADABLE = (zlib.error, pickle.UnpicklingError, EOFError, ValueError, struct.error, IndexError, KeyError,
               TypeError, AttributeError, OverflowError, UnicodeError)


def _unreadable(error: BaseException) -> UnsafePickle:
    return UnsafePickle(f"a stored post cannot be read ({type(error).__name__}: {str(error)[:200]})")


def _stored_reader(self: Any, *args: Any, **kwargs: Any) -> Any:
    """PickleColumn.reader: the stored fields' column opened (its offsets and lengths read), as
    _stored_item."""
    try:
        return _WHOOSHS[id(columns.PickleColumn), "reader"](self, *args, **kwargs)
    except IndexDamaged:
        raise
    except _UNREADABLE as e:
        raise _unreadable(e) from None


def _stored_item(self: Any, docnum: int) -> Any:
    """PickleColumn.Reader.__getitem__ (stored fields), whose bytes, forged or garbled with their
    sums recomputed, say the index is damaged instead of failing a request with a traceback."""
    try:
        return _WHOOSHS[id(columns.PickleColumn.Reader), "__getitem__"](self, docnum)
    except IndexDamaged:
        raise
    except _UNREADABLE as e:
        raise _unreadable(e) from None


def _stored_items(self: Any) -> Iterator[Any]:
    """PickleColumn.Reader.__iter__, as _stored_item."""
    try:
        yield from _WHOOSHS[id(columns.PickleColumn.Reader), "__iter__"](self)
    except IndexDamaged:
        raise
    except _UNREADABLE as e:
        raise _unreadable(e) from None


def _whoosh_toc_read(*args: Any, **kwargs: Any) -> Any:
    # It unpickles the schema with every class allowed; toc.read_toc reads ours instead.
    raise UnsafePickle("Whoosh's own reading of a table of contents was asked for, which searchsvc never uses")


def _is_whooshs_toc_read(found: Any) -> bool:
    return getattr(getattr(found, "__func__", None), "__qualname__", None) == "TOC.read"


# (module, name, ours, whether a value is Whoosh 2.7.5's own): every name through which Whoosh
# unpickles what it reads from an index. Left alone: whoosh.externalsort (the runs an ingest
# writes and reads back itself), whoosh.multiproc (a writer we do not use), whoosh.codec.whoosh2
# and the old whoosh.filedb readers (they no longer import).
_SITES: list[tuple[Any, str, Any, Callable[[Any], bool]]] = [
    # StructFile.read_pickle: compound directories and options, term tables' extras, column headers
    (structfile, "load_pickle", load, lambda found: found is pickle.load),
    (columns, "loads", loads, lambda found: found is pickle.loads),  # PickleColumn: stored fields
    (whoosh3, "loads", loads, lambda found: found is pickle.loads),  # inlined postings, Whoosh's blocks
    (formats, "loads", loads, lambda found: found is pickle.loads),  # character and boost positions
    (plaintext, "loads", loads, lambda found: found is pickle.loads),
    (compat, "loads", loads, lambda found: found is pickle.loads),  # for a module imported later
    (compat, "load", load, lambda found: found is pickle.load),
    (TOC, "read", classmethod(_whoosh_toc_read), _is_whooshs_toc_read),
    (compound, "BufferFile", mapped_files.ViewFile, lambda found: found is structfile.BufferFile),
    (columns.PickleColumn, "reader", _stored_reader,
     lambda found: getattr(found, "__qualname__", None) == "WrappedColumn.reader"),
    (columns.PickleColumn.Reader, "__getitem__", _stored_item,
     lambda found: getattr(found, "__qualname__", None) == "PickleColumn.Reader.__getitem__"),
    (columns.PickleColumn.Reader, "__iter__", _stored_items,
     lambda found: getattr(found, "__qualname__", None) == "PickleColumn.Reader.__iter__"),
]


_WHOOSHS: dict[tuple[int, str], Any] = {}  # what install() replaced, by (id(where), name)


def install() -> None:
    """Put our readers in Whoosh's place (again is harmless); before any index is opened."""
    for where, name, ours, is_whooshs in _SITES:
        found = where.__dict__[name] if name in where.__dict__ else getattr(where, name)  # or inherited
        if found is ours:
            continue
        if not is_whooshs(found):
            raise RuntimeError(f"{where.__module__ if isinstance(where, type) else where.__name__}.{name} is not "
                               "what whoosh-reloaded 2.7.5 has: check searchsvc/index/seam.py against this version")
        _WHOOSHS[id(where), name] = found
        setattr(where, name, ours)


@contextmanager
def whooshs_own_pickles() -> Iterator[None]:
    """Whoosh's own unpickling for the block, every class allowed: never in searchsvc, only in
    a test that builds an index with Whoosh's own writer and reads back what it wrote."""
    install()
    for where, name, _, _ in _SITES:
        setattr(where, name, _WHOOSHS[id(where), name])
    try:
        yield
    finally:
        for where, name, ours, _ in _SITES:
            setattr(where, name, ours)


def check_doc_counts(reader: Any, *, where: str) -> int:
    """Each segment's count of posts against its stored posts' column, the one column that has
    an entry for every document (a length, then the bytes of all of them: its size is exactly
    their sum plus one length per post, a type code, and offsets for large segments). Raises
    UnsafePickle naming the table of contents `where` for a count edited into it (it passed
    toc.read_toc's bound of one post per byte). Returns the number of documents.

    Reads one length per post: about a millisecond per 100,000, once per commit opened."""
    total = 0
    for leaf, _ in reader.leaf_readers():
        perdoc = getattr(leaf, "_perdoc", None)  # W3PerDocReader; none in an index of no segments
        if perdoc is None:
            continue
        segment, count = leaf.segment(), perdoc.doc_count_all()
        total += count
        if count == 0:
            continue
        wrong = UnsafePickle(f"{where}: segment {segment.segid} says it holds {count:,} posts, which the column "
                             "of its stored posts does not match")
        if not perdoc.has_column("_stored"):
            raise wrong
        _, _, length = perdoc._get_column_file("_stored")
        if length < count + 1:  # before Whoosh reads `count` lengths
            raise wrong
        try:
            column = perdoc._cached_reader("_stored", whoosh3.STORED_COLUMN)._child  # the bytes' column reader
            lengths = column._lengths
            tail = 1 + len(lengths) * lengths.itemsize
            if column.had_stored_offsets:
                tail += 2 + len(column._offsets) * column._offsets.itemsize
            fits = len(lengths) == count and sum(lengths) + tail == length
        except _UNREADABLE:  # its lengths, read from where `count` says they start, are not lengths
            fits = False
        if not fits:
            raise wrong
    return total


def read_every_pickle(reader: Any, segments: Collection[str] | None = None) -> int:
    """Unpickle (through the readers above) everything of an open index that is read only when
    used: every stored document with its blocks' headers, and every inlined term. Raises
    UnsafePickle at the first forged one. `segments` limits it to those segment ids. Returns
    how many documents were read.

    Opening an index reads the rest (table of contents, directories, term tables' extras).
    About 0.65 s for 10,419 posts (their 99 MB of bytes are checked in 0.16 s): for `check`,
    and what copies an index to serve or keep it (snapshot, restore, publish's new segments).
    """
    read = 0
    for leaf, _ in reader.leaf_readers():
        segment = leaf.segment()
        if segment is None:  # an index of no segment (Whoosh's EmptyReader): nothing to read
            continue
        if segments is not None and segment.segment_id() not in segments:
            continue
        perdoc = leaf._perdoc  # W3PerDocReader
        if perdoc.has_column("_stored"):
            for _ in perdoc._cached_reader("_stored", whoosh3.STORED_COLUMN):
                read += 1
        table = leaf._terms._tindex  # the term table (filetables.OrderedHashReader)
        for _, value in table.items():
            if value[:1] != b"\x00":  # postings inlined as a pickle (our codec never does it)
                whoosh3.W3TermInfo.from_bytes(value)
    return read
