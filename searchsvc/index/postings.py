"""Each segment's postings as flat arrays that numpy reads in place, in the segment's postings
file (`.pst`, inside its compound file): what the vectorised search (search/vectors.py) scores,
and what Whoosh's own matchers read through our codec (codec.py).

Why arrays and not Whoosh's posting blocks: Whoosh decodes a block of postings per Python call
(36% of a 46 ms request at 100k posts was posting-block decoding), and its matchers walk them one
posting at a time. Arrays scored by numpy need no matcher at all, and an ingest writes them
with numpy instead of a zlib-compressed pickled block per 128 postings.

The file, all numbers little-endian, every array at a multiple of 8 bytes:

    b"SSVEC1\\n\\0", a JSON header's length (uint64), the JSON header, then the arrays.

For each indexed field, its terms sorted by their bytes as Whoosh sorts them:

    terms      uint8   the term bytes, one after another
    term_ends  uint64  where each term's bytes end in `terms`
    post_ends  int64   where each term's postings end
    docs       int32   segment document numbers, ascending within a term
    freqs      float32 the term's weight in the document (its frequency: field boost 1)
    pos_ends   int64   where each posting's positions end in `positions` (positional fields)
    positions  uint32  word positions, ascending within a posting
    lengths    uint8   every document's field length as Whoosh's one-byte code
"""

from __future__ import annotations

import json
import struct
from array import array
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
from whoosh.util.numeric import byte_to_length, length_to_byte

from searchsvc.index.seam import ForgedData

MAGIC = b"SSVEC1\n\0"
# The fields the vectorised search scores (with positions: phrases too).
ARRAY_FIELDS = ("author", "text", "title", "text_tr", "title_tr")
_ARRAYS = (("terms", "u1"), ("term_ends", "<u8"), ("post_ends", "<i8"), ("docs", "<i4"), ("freqs", "<f4"),
           ("pos_ends", "<i8"), ("positions", "<u4"), ("lengths", "u1"))
# Whoosh's one-byte field length code -> the length its scorer uses.
LENGTH_OF_BYTE = np.array([byte_to_length(b) for b in range(256)], dtype=np.float64)


def set_length_code(codes: bytearray, docnum: int, length: int) -> None:
    """Document `docnum`'s field length as Whoosh's one-byte code, the column grown as needed."""
    if len(codes) <= docnum:
        codes.extend(bytes(docnum + 1 - len(codes)))
    codes[docnum] = length_to_byte(length)


def _empty_field() -> dict[str, Any]:
    return {"terms": bytearray(), "term_ends": array("Q"), "post_ends": array("q"), "docs": array("i"),
            "freqs": array("f"), "pos_ends": array("q"), "positions": bytearray()}


class PostingsBuilder:
    """Collects one segment's postings in Whoosh's order (field, term, document), then writes
    them. Positions arrive as the posting values ArrayPositions encodes: raw uint32."""

    def __init__(self) -> None:
        self.fields: dict[str, dict[str, Any]] = {}
        self._current: dict[str, Any] = {}
        self._positional = False

    def start_field(self, fieldname: str, positional: bool) -> None:
        self._current = self.fields[fieldname] = _empty_field()
        self._positional = positional

    def add_term(self, btext: bytes, docs: list[int], freqs: list[float], values: list[bytes]) -> None:
        field = self._current
        field["terms"] += btext
        field["term_ends"].append(len(field["terms"]))
        field["docs"].extend(docs)
        field["freqs"].extend(freqs)
        field["post_ends"].append(len(field["docs"]))
        if self._positional:
            ends = field["pos_ends"]
            end = ends[-1] if ends else 0
            for value in values:
                end += len(value) >> 2
                ends.append(end)
            field["positions"] += b"".join(values)

    def set_field(self, fieldname: str, arrays: dict[str, Any]) -> None:
        """A whole field's postings at once (inversion.Inverter.postings)."""
        self.fields[fieldname] = arrays

    def write(self, out: BinaryIO, doc_count: int, lengths: dict[str, bytes]) -> None:
        """The file for a segment of `doc_count` documents; `lengths` are each field's
        one-byte length codes (missing: 0, an empty field)."""
        arrays: list[bytes] = []
        header: dict[str, Any] = {"docs": doc_count, "fields": {}}
        offset = 0
        for name, field in self.fields.items():
            field = dict(field, lengths=lengths.get(name, bytes(doc_count)))
            entries = {}
            for key, dtype in _ARRAYS:
                raw = _little_endian(field[key], key, dtype)
                entries[key] = [offset, len(raw)]
                arrays.append(raw)
                offset += len(raw) + (-len(raw) % 8)
            header["fields"][name] = entries
        text = json.dumps(header).encode("utf-8")
        text += b" " * (-(len(MAGIC) + 8 + len(text)) % 8)
        out.write(MAGIC + struct.pack("<Q", len(text)) + text)
        for raw in arrays:
            out.write(raw)
            out.write(bytes(-len(raw) % 8))


def _little_endian(data: Any, key: str, dtype: str) -> bytes:
    """An array's bytes as the file stores them. `positions` given as bytes are the posting
    values, little-endian already; array.array and numpy arrays are in this machine's order."""
    if isinstance(data, (bytes, bytearray, memoryview)) and (key in ("terms", "positions", "lengths")):
        return bytes(data)
    native = np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("=")) if isinstance(data, array) else data
    return np.asarray(native).astype(dtype, copy=False).tobytes()


def _prefix_keys(terms: Any, term_ends: np.ndarray) -> np.ndarray:
    """Each term's first 8 bytes (zero-padded) as a big-endian uint64: sorted as the terms are."""
    ends = term_ends.astype(np.int64)
    starts = np.concatenate(([0], ends[:-1])) if len(ends) else ends
    blob = np.frombuffer(terms, dtype=np.uint8)
    keys = np.zeros(len(ends), dtype=np.uint64)
    for i in range(8):
        at = starts + i
        inside = at < ends
        byte = np.zeros(len(ends), dtype=np.uint64)
        byte[inside] = blob[at[inside]]
        keys |= byte << np.uint64(8 * (7 - i))
    return keys


class BadPostings(ForgedData):
    """A postings file that is not one we wrote: its checksums may be right (whoever forged it
    recomputed them), so its header and every array are checked when it is opened."""

    def __init__(self, detail: str):
        super().__init__(f"a segment's postings are not what searchsvc writes ({detail})")


def _ascending(values: np.ndarray, *, strictly: bool, starts: np.ndarray | None = None) -> bool:
    """Whether `values` ascend (within each run beginning at `starts`, when given)."""
    if len(values) < 2:
        return True
    ok = values[1:] > values[:-1] if strictly else values[1:] >= values[:-1]
    if starts is not None:
        inner = starts[(starts > 0) & (starts < len(values))] - 1
        ok[inner] = True  # a new run may start lower
    return bool(ok.all())


def _check_field(name: str, f: FieldPostings, doc_count: int) -> None:
    """The invariants every array of a field written by PostingsBuilder keeps: a document number,
    an end, a frequency out of them made a search fail (an IndexError, a 500) or answer wrongly
    (0 posts for a phrase, a ranking turned over) while `check` said OK."""
    terms, postings, positions = len(f.terms), len(f.docs), len(f.positions)
    if len(f.post_ends) != len(f.term_ends) or len(f.freqs) != postings:
        raise BadPostings(f"{name}: arrays of different lengths")
    if len(f.term_ends) and (int(f.term_ends[-1]) != terms or int(f.post_ends[-1]) != postings):
        raise BadPostings(f"{name}: the last term or posting does not end its array")
    if not (_ascending(f.term_ends, strictly=True) and _ascending(f.post_ends, strictly=False)):
        raise BadPostings(f"{name}: term or posting ends that go back")
    if len(f.post_ends) and int(f.post_ends[0]) < 0 or len(f.term_ends) and int(f.term_ends[0]) <= 0:
        raise BadPostings(f"{name}: a negative end")
    if postings and (int(f.docs.min()) < 0 or int(f.docs.max()) >= doc_count):
        raise BadPostings(f"{name}: document numbers outside 0..{doc_count - 1}")
    starts = np.concatenate(([0], f.post_ends[:-1])).astype(np.int64) if len(f.post_ends) else None
    if not _ascending(f.docs, strictly=True, starts=starts):
        raise BadPostings(f"{name}: a term's documents out of order")
    if postings and not (np.isfinite(f.freqs).all() and (f.freqs > 0).all()):
        raise BadPostings(f"{name}: a frequency that is not a positive number")
    if postings and f.lengths.any() and not (f.lengths[f.docs] > 0).all():  # (fields of no lengths: all 0)
        raise BadPostings(f"{name}: a document with words in the field and no length")
    if not _ascending(_prefix_keys(f.terms, f.term_ends), strictly=False):  # a term's lookup bisects them
        raise BadPostings(f"{name}: terms out of order")
    if len(f.pos_ends):
        if len(f.pos_ends) != postings or int(f.pos_ends[-1]) != positions or int(f.pos_ends[0]) < 0:
            raise BadPostings(f"{name}: positions that do not match the postings")
        if not _ascending(f.pos_ends, strictly=False):
            raise BadPostings(f"{name}: position ends that go back")
        starts = np.concatenate(([0], f.pos_ends[:-1])).astype(np.int64)
        if not _ascending(f.positions, strictly=True, starts=starts):
            raise BadPostings(f"{name}: a posting's positions out of order")
    elif positions:
        raise BadPostings(f"{name}: positions without their ends")


@dataclass
class FieldPostings:
    terms: bytes | memoryview
    term_ends: np.ndarray
    post_ends: np.ndarray
    docs: np.ndarray
    freqs: np.ndarray
    pos_ends: np.ndarray
    positions: np.ndarray
    lengths: np.ndarray

    _keys: np.ndarray | None = None

    def term_number(self, btext: bytes) -> int | None:
        """The term's number in this field (None: not in it)."""
        return self.term_numbers([btext])[0]

    def term_numbers(self, btexts: list[bytes]) -> list[int | None]:
        """The numbers of many terms: their first 8 bytes as sortable numbers searched in two
        numpy calls, then a bisection of the bytes among the terms sharing them."""
        if self._keys is None:
            self._keys = _prefix_keys(self.terms, self.term_ends)
        keys = np.array([int.from_bytes(b[:8].ljust(8, b"\0"), "big") for b in btexts], dtype=np.uint64)
        lows = np.searchsorted(self._keys, keys, side="left").tolist()
        highs = np.searchsorted(self._keys, keys, side="right").tolist()
        return [self._bisect(btext, low, high) for btext, low, high in zip(btexts, lows, highs, strict=True)]

    def _bisect(self, btext: bytes, low: int, high: int) -> int | None:
        ends = self.term_ends
        terms = self.terms
        while low < high:
            middle = (low + high) // 2
            start = int(ends[middle - 1]) if middle else 0
            found = bytes(terms[start:int(ends[middle])])
            if found < btext:
                low = middle + 1
            elif found > btext:
                high = middle
            else:
                return middle
        return None

    def term_list(self) -> list[bytes]:
        """Every term's bytes, in order."""
        ends = self.term_ends.tolist()
        raw = bytes(self.terms)
        return [raw[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]

    def postings(self, number: int) -> tuple[np.ndarray, np.ndarray, int, int]:
        """(document numbers, frequencies, first posting, end) of term `number`."""
        start = int(self.post_ends[number - 1]) if number else 0
        end = int(self.post_ends[number])
        return self.docs[start:end], self.freqs[start:end], start, end

    def positions_of(self, posting: int) -> np.ndarray:
        start = int(self.pos_ends[posting - 1]) if posting else 0
        return self.positions[start:int(self.pos_ends[posting])]


class SegmentPostings:
    """The arrays of one segment, read in place from the segment file's memory map."""

    def __init__(self, buffer: Any, doc_count: int | None):
        try:
            self._open(buffer, doc_count)
        except (KeyError, TypeError, ValueError, IndexError, struct.error) as e:  # a header of other shapes
            raise BadPostings(f"{type(e).__name__}: {str(e)[:200]}") from None

    def _open(self, buffer: Any, doc_count: int | None) -> None:
        view = memoryview(buffer)
        if bytes(view[:len(MAGIC)]) != MAGIC:
            raise BadPostings("not a postings file")
        (size,) = struct.unpack("<Q", view[len(MAGIC):len(MAGIC) + 8])
        base = len(MAGIC) + 8 + size
        try:
            header = json.loads(bytes(view[len(MAGIC) + 8:base]))
        except ValueError as exc:
            raise BadPostings("unreadable header") from exc
        if doc_count is None:
            doc_count = header.get("docs")
        if header.get("docs") != doc_count:
            raise BadPostings(f"{header.get('docs')} documents, the segment has {doc_count}")
        self.doc_count = doc_count
        self.fields: dict[str, FieldPostings] = {}
        for name, entries in header["fields"].items():
            arrays = {}
            for key, dtype in _ARRAYS:
                offset, length = entries[key]
                itemsize = np.dtype(dtype).itemsize
                if offset < 0 or length < 0 or base + offset + length > len(view) or length % itemsize:
                    raise BadPostings(f"{name}.{key} lies outside the file")
                arrays[key] = np.frombuffer(view, dtype=dtype, count=length // itemsize, offset=base + offset)
            self.fields[name] = FieldPostings(
                terms=view[base + entries["terms"][0]:base + entries["terms"][0] + entries["terms"][1]],
                **{k: v for k, v in arrays.items() if k != "terms"},
            )
            if len(self.fields[name].lengths) != doc_count:
                raise BadPostings(f"{name}: {len(self.fields[name].lengths)} lengths for {doc_count} documents")
            _check_field(name, self.fields[name], doc_count)
