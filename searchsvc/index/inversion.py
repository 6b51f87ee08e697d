"""Inverting a segment's documents into postings arrays with numpy, instead of a Python tuple
per posting sorted through Whoosh's pool.

Each document's words become term numbers in passes that run in C (the regex, then a memo of
term -> number), appended to one array per field. When the segment is written, one stable sort
of that array by the terms' byte order gives every posting at once: where the term or the
document changes a posting starts, its frequency is the run's length, and its positions are
the run's word positions, already ascending. Postings of older segments merged into this one
(Whoosh's `add_reader`, through its pool) come first: their documents have lower numbers.
"""

from __future__ import annotations

from array import array
from typing import Any

import numpy as np

from searchsvc.index.analysis import TermFunction
from searchsvc.index.fasttext import terms


class _Field:
    def __init__(self) -> None:
        self.tokens = array("i")  # term numbers of new documents, document after document
        self.docs = array("i")  # the new documents with words in this field ...
        self.counts = array("i")  # ... and how many words each has
        # Merged postings, as chunks of arrays: term number, document, position per word.
        self.old_tokens: list[np.ndarray] = []
        self.old_docs: list[np.ndarray] = []
        self.old_positions: list[np.ndarray] = []


class Inverter:
    """The words of one segment's positional fields, as term numbers."""

    def __init__(self, term_functions: dict[str, TermFunction]):
        self._term_of = term_functions
        self._numbers: dict[str, int] = {}  # term -> number, shared by the fields
        self._terms: list[str] = []  # number -> term
        self.fields: dict[str, _Field] = {name: _Field() for name in term_functions}

    def _numbered(self, found: list[str]) -> list[int]:
        get = self._numbers.get
        numbers = list(map(get, found))
        if None in numbers:
            for term in set(found).difference(self._numbers):  # looks up each new word (not the whole dict)
                self._numbers[term] = len(self._terms)
                self._terms.append(term)
            numbers = list(map(self._numbers.__getitem__, found))
        return numbers

    def add(self, fieldname: str, docnum: int, text: str) -> int:
        """Add a document's field; its length (the number of words)."""
        numbers = self._numbered(terms(text, self._term_of[fieldname]))
        if numbers:
            field = self.fields[fieldname]
            field.tokens.extend(numbers)
            field.docs.append(docnum)
            field.counts.append(len(numbers))
        return len(numbers)

    def add_merged(self, fieldname: str, btext: bytes, docnum: int, value: bytes) -> None:
        """A posting of a merged segment without arrays (its value: ArrayPositions' raw
        little-endian uint32 positions)."""
        field = self.fields[fieldname]
        positions = np.frombuffer(value, dtype="<u4").astype(np.uint32)
        (number,) = self._numbered([btext.decode("utf-8")])
        field.old_tokens.append(np.full(len(positions), number, dtype=np.int32))
        field.old_docs.append(np.full(len(positions), docnum, dtype=np.int32))
        field.old_positions.append(positions)

    def add_merged_arrays(self, fieldname: str, arrays: Any, new_numbers: np.ndarray) -> None:
        """A merged segment's postings of the field, from its arrays (postings.FieldPostings);
        `new_numbers` gives each of its documents' number here, -1 for a deleted one."""
        field = self.fields[fieldname]
        if not len(arrays.docs):
            return
        names = [term.decode("utf-8") for term in arrays.term_list()]
        post_ends = arrays.post_ends.astype(np.int64)
        per_term = np.diff(post_ends, prepend=0)
        posting_terms = np.repeat(np.asarray(self._numbered(names), dtype=np.int32), per_term)
        pos_ends = arrays.pos_ends.astype(np.int64)
        counts = np.diff(pos_ends, prepend=0)
        docs = new_numbers[arrays.docs]
        live = docs >= 0
        field.old_tokens.append(np.repeat(posting_terms[live], counts[live]))
        field.old_docs.append(np.repeat(docs[live].astype(np.int32), counts[live]))
        positions = arrays.positions.astype(np.uint32)
        field.old_positions.append(positions if live.all() else positions[np.repeat(live, counts)])

    def postings(self, fieldname: str) -> dict[str, Any] | None:
        """The field's postings as the arrays of postings.py (None: no words at all)."""
        field = self.fields[fieldname]
        counts = np.frombuffer(field.counts, dtype=np.int32)
        total = int(counts.sum())
        if not total and not sum(len(chunk) for chunk in field.old_tokens):
            return None  # no words (merged posts may all have been deleted)
        starts = np.cumsum(counts) - counts
        tokens = np.concatenate([*field.old_tokens, np.frombuffer(field.tokens, dtype=np.int32)])
        docs = np.concatenate([*field.old_docs, np.repeat(np.frombuffer(field.docs, dtype=np.int32), counts)])
        positions = np.concatenate([*field.old_positions,
                                    (np.arange(total, dtype=np.int64) - np.repeat(starts, counts)).astype(np.uint32)])
        # Terms in Whoosh's order: by their UTF-8 bytes.
        present = np.unique(tokens)
        encoded = [self._terms[n].encode("utf-8") for n in present.tolist()]
        by_bytes = sorted(range(len(encoded)), key=encoded.__getitem__)
        rank = np.zeros(len(self._terms), dtype=np.int32)
        rank[present[by_bytes]] = np.arange(len(by_bytes), dtype=np.int32)
        ranks = rank[tokens]
        order = np.argsort(ranks, kind="stable")  # stable: documents and positions stay ascending
        ranks, docs, positions = ranks[order], docs[order], positions[order]
        del order, tokens
        n = len(ranks)
        starts_here = np.ones(n, dtype=bool)
        starts_here[1:] = (ranks[1:] != ranks[:-1]) | (docs[1:] != docs[:-1])
        post_starts = np.flatnonzero(starts_here)
        post_ranks = ranks[post_starts]
        pos_ends = np.append(post_starts[1:], n).astype(np.int64)
        term_change = np.ones(len(post_starts), dtype=bool)
        term_change[1:] = post_ranks[1:] != post_ranks[:-1]
        post_ends = np.append(np.flatnonzero(term_change)[1:], len(post_starts)).astype(np.int64)
        ordered = [encoded[i] for i in by_bytes]
        return {
            "terms": b"".join(ordered),
            "term_ends": np.cumsum([len(t) for t in ordered], dtype=np.uint64),
            "post_ends": post_ends,
            "docs": docs[post_starts].astype(np.int32),
            "freqs": (pos_ends - post_starts).astype(np.float32),
            "pos_ends": pos_ends,
            "positions": positions,
        }
