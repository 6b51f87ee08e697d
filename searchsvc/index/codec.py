"""Our Whoosh codec: Whoosh's own (whoosh3, W3Codec) for the term table, stored fields, columns
and lengths, with each segment's postings file (`.pst`) holding the postings as arrays
(postings.py) instead of Whoosh's zlib-compressed pickled blocks.

The index stays a Whoosh index: Whoosh's open_dir, readers, searchers and query classes open it
and search it through this codec (the codec's class is named in each segment's table of
contents entry, as W3Codec is). Its term table is Whoosh's, each term's entry giving the term's
number in the postings file instead of a byte offset; `postings_reader` answers Whoosh's
matchers from the arrays (a ListMatcher per term: the generic path, for what the vectorised
search does not cover, and for merges).
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
from whoosh import formats
from whoosh.codec.whoosh3 import W3Codec, W3Segment
from whoosh.filedb import filetables
from whoosh.matching import ListMatcher
from whoosh.system import pack_uint

from searchsvc.index.postings import PostingsBuilder, SegmentPostings, set_length_code

# W3TermInfo.to_bytes for postings not inlined: flags, weight, document frequency, min and max
# length codes, max weight, first and last document, then where the postings are (for us: the
# term's number in its field) and how many.
_TERM_INFO = struct.Struct("!BfIBBfIIqi")
_FIELD_ID = struct.Struct("!H")


class ArrayCodec(W3Codec):
    """W3Codec with array postings."""

    def field_writer(self, storage: Any, segment: Any) -> ArrayFieldWriter:
        return ArrayFieldWriter(storage, segment)

    def postings_reader(self, dbfile: Any, terminfo: Any, format_: Any, term: Any = None,
                        scorer: Any = None) -> Any:
        if term is None:  # W3TermsReader always names the term; nothing else calls this
            raise ValueError("array postings are read by term")
        arrays = _arrays_of(dbfile)
        field = arrays.fields[term[0]]
        number, _ = terminfo.extent()
        docs, freqs, start, end = field.postings(number)
        if isinstance(format_, formats.Positions):
            values = [field.positions_of(i).tobytes() for i in range(start, end)]
        elif isinstance(format_, formats.Frequency):
            values = [pack_uint(int(f)) for f in freqs.tolist()]
        else:
            values = None
        return ListMatcher(docs.tolist(), freqs.tolist(), values, format_, scorer=scorer, term=term,
                           terminfo=terminfo)

    def new_segment(self, storage: Any, indexname: str) -> W3Segment:
        return W3Segment(self, indexname)


def _arrays_of(dbfile: Any) -> SegmentPostings:
    """The postings of a segment's open `.pst` file, read once per open file."""
    arrays = getattr(dbfile, "_searchsvc_arrays", None)
    if arrays is None:
        buffer = getattr(dbfile, "_buf", None)  # a compound file's part (mapped_files.ViewFile)
        if buffer is None:
            dbfile.seek(0)
            buffer = dbfile.read()
        arrays = SegmentPostings(buffer, None)
        dbfile._searchsvc_arrays = arrays
    return arrays


class ArrayFieldWriter:
    """Whoosh's FieldWriter interface (start_field, start_term, add, finish_term, finish_field,
    close; `add_postings` for Whoosh's own writer) writing array postings, plus `add_term`, a
    whole term at once, which our writer uses. The term table is written at `close`, when every
    term's statistics come from the arrays in a few numpy calls."""

    def __init__(self, storage: Any, segment: Any):
        self._storage = storage
        self._segment = segment
        self._postings = PostingsBuilder()
        self._lengths: dict[str, bytearray] = {}
        self._fieldname: str | None = None
        self._term: tuple[bytes, list[int], list[float], list[bytes]] | None = None
        self.is_closed = False

    # Whoosh's interface, a posting at a time.

    def start_field(self, fieldname: str, fieldobj: Any) -> None:
        self._fieldname = fieldname
        self._postings.start_field(fieldname, isinstance(fieldobj.format, formats.Positions))

    def start_term(self, btext: bytes) -> None:
        self._term = (btext, [], [], [])

    def add(self, docnum: int, weight: float, vbytes: bytes, length: int) -> None:
        _, docs, weights, values = self._term
        docs.append(docnum)
        weights.append(weight)
        values.append(vbytes)
        if length:
            set_length_code(self._lengths.setdefault(self._fieldname, bytearray()), docnum, length)

    def finish_term(self) -> None:
        self.add_term(*self._term)
        self._term = None

    def finish_field(self) -> None:
        self._fieldname = None

    def add_postings(self, schema: Any, lengths: Any, items: Any) -> None:
        """Whoosh's FieldWriter.add_postings: sorted (field, term, docnum, weight, value)."""
        lastfn = lasttext = None
        for fieldname, btext, docnum, weight, value in items:
            if fieldname != lastfn:
                if lasttext is not None:
                    self.finish_term()
                self.start_field(fieldname, schema[fieldname])
                lastfn, lasttext = fieldname, None
            if btext != lasttext:
                if lasttext is not None:
                    self.finish_term()
                self.start_term(btext)
                lasttext = btext
            length = lengths.doc_field_length(docnum, fieldname) if lengths else 0
            self.add(docnum, weight, value, length)
        if lasttext is not None:
            self.finish_term()

    # Ours.

    def add_term(self, btext: bytes, docs: list[int], freqs: list[float], values: list[bytes]) -> None:
        self._postings.add_term(btext, docs, freqs, values)

    def add_field_arrays(self, fieldname: str, arrays: dict[str, Any]) -> None:
        """A whole field's postings as arrays (inversion.Inverter.postings)."""
        self._postings.set_field(fieldname, arrays)

    def set_lengths(self, lengths: dict[str, bytes]) -> None:
        """Every document's one-byte length code per field (our writer knows them all)."""
        self._lengths = {name: bytearray(codes) for name, codes in lengths.items()}

    def close(self, doc_count: int | None = None) -> None:
        if doc_count is None:
            doc_count = self._segment.doc_count_all()
        lengths = {name: bytes(codes[:doc_count]) + bytes(max(0, doc_count - len(codes)))
                   for name, codes in self._lengths.items()}
        with self._segment.create_file(self._storage, W3Codec.POSTS_EXT) as out:
            self._postings.write(out, doc_count, lengths)
        table = filetables.OrderedHashWriter(self._segment.create_file(self._storage, W3Codec.TERMS_EXT))
        # Fields numbered in name order, as Whoosh's writer does: its terms are listed in that order.
        fieldids = {name: number for number, name in enumerate(sorted(self._postings.fields))}
        table.extras["fieldmap"] = fieldids
        for fieldname, fieldid in fieldids.items():
            _write_term_infos(table, _FIELD_ID.pack(fieldid), self._postings.fields[fieldname],
                              lengths.get(fieldname, bytes(doc_count)))
        table.close()
        self.is_closed = True


def _write_term_infos(table: Any, prefix: bytes, field: dict[str, Any], length_codes: bytes) -> None:
    """One W3TermInfo per term, its statistics taken from the arrays."""
    ends = np.frombuffer(field["post_ends"], dtype=np.int64)
    if not len(ends):
        return
    starts = np.concatenate(([0], ends[:-1]))
    docs = np.frombuffer(field["docs"], dtype=np.int32)
    freqs = np.frombuffer(field["freqs"], dtype=np.float32).astype(np.float64)
    codes = np.frombuffer(length_codes, dtype=np.uint8)[docs]
    weights = np.add.reduceat(freqs, starts).tolist()
    maxweights = np.maximum.reduceat(freqs, starts).tolist()
    minlengths = np.minimum.reduceat(codes, starts).tolist()
    maxlengths = np.maximum.reduceat(codes, starts).tolist()
    firsts = docs[starts].tolist()
    lasts = docs[ends - 1].tolist()
    counts = (ends - starts).tolist()
    term_ends = np.frombuffer(field["term_ends"], dtype=np.uint64).tolist()
    terms = bytes(field["terms"])
    pack = _TERM_INFO.pack
    add = table.add
    start = 0
    for number, end in enumerate(term_ends):
        add(prefix + terms[start:end], pack(0, weights[number], counts[number], minlengths[number],
                                             maxlengths[number], maxweights[number], firsts[number], lasts[number],
                                             number, counts[number]))
        start = end


def check_postings(reader: Any, segments: Collection[str] | None = None) -> None:
    """Open, and so check (postings.BadPostings), the postings arrays of every segment of
    `reader`, or of those whose ids (`segment_id()`) are in `segments`."""
    for leaf, _ in reader.leaf_readers():
        segment = leaf.segment()
        if segment is not None and (segments is None or segment.segment_id() in segments):
            open_segment_postings(leaf)


def open_segment_postings(segreader: Any) -> SegmentPostings | None:
    """The arrays of a Whoosh segment reader's segment, or None if it has none (a segment
    Whoosh's own codec wrote): the search then uses Whoosh's matchers."""
    segment = segreader.segment()
    if not isinstance(segment.codec(), ArrayCodec):
        return None
    name = segment.make_filename(ArrayCodec.POSTS_EXT)
    doc_count = segment.doc_count_all()
    if segment.is_compound():
        compound = segreader._storage.a  # whoosh.filedb.compound.CompoundStorage
        if not compound.file_exists(name):
            return None
        offset, length = compound.range(name)
        path = Path(segreader._storage.b.folder) / segment.make_filename(segment.COMPOUND_EXT)
    else:
        folder = Path(segreader._storage.folder)
        path = folder / name
        if not path.exists():
            return None
        offset, length = 0, path.stat().st_size
    with open(path, "rb") as f:
        # Our own map, not Whoosh's: Whoosh closes its map when a searcher is replaced, and the
        # arrays may still be in use. The pages are the same page cache for every worker.
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    return SegmentPostings(memoryview(mapped)[offset:offset + length], doc_count)

