"""Sortable columns read per document number: the dates, authors, ids and fingerprints that
filters, facets, orders, `info`, `export` and ingest's change detection use without loading
stored bodies."""

from __future__ import annotations

import bisect
from typing import Any

UNDATED = 2**64 - 1  # the raw date column value of a post without a date: sorts last


class Column:
    """One sortable column's value per document number, across all segments.

    Whoosh's multi-segment column reader is wrong when a segment has no value at all for
    the field (a segment of undated or authorless posts): it shifts other segments' values
    onto its documents, or raises IndexError. We read each segment's own column and give
    `default` for a segment that has none.
    """

    def __init__(self, reader: Any, name: str, *, translate: bool = True, default: Any = None):
        self.default = default
        self.parts: list[tuple[int, Any]] = []
        for leaf, offset in reader.leaf_readers():
            column = leaf.column_reader(name, translate=translate) if leaf.has_column(name) else None
            self.parts.append((offset, column))
        self.starts = [offset for offset, _ in self.parts]

    def __getitem__(self, docnum: int) -> Any:
        offset, column = self.parts[bisect.bisect_right(self.starts, docnum) - 1]
        if column is None:
            return self.default
        return column[docnum - offset]


COLUMN_DEFAULTS = {"date": UNDATED, "author_key": "", "id": "", "fingerprint": b""}


def column(reader: Any, name: str) -> Column:
    """The column `name`; dates raw (a sortable number, UNDATED when absent), since Whoosh
    cannot translate the column value of a missing date."""
    return Column(reader, name, translate=(name != "date"), default=COLUMN_DEFAULTS.get(name))


def live_columns(reader: Any, *names: str) -> list[tuple[int, ...]]:
    """(docnum, value, ...) for every live document, from sortable columns."""
    if reader.doc_count() == 0:
        return []
    readers = [column(reader, n) for n in names]
    return [(n, *(c[n] for c in readers)) for n in reader.all_doc_ids()]
