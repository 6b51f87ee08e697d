"""Reading every stored post back as records: the export that any rebuild can start from."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO

from searchsvc.index.columns import live_columns
from searchsvc.index.schema import record_from_stored
from searchsvc.index.seam import UnsafePickle
from searchsvc.index.store import IndexStore
from searchsvc.records import Record


def iter_records(store: IndexStore) -> Iterator[Record]:
    """Every post, oldest first, undated last, ties by id: a stable order for diffs.

    The order comes from the sortable columns, so only one stored document is in
    memory at a time, however large the index.
    """
    # An old schema's posts can still be exported: that is how one migrates.
    ix = store.open(check_version=False, full_check=True)  # never export bytes that changed after their commit
    with ix.reader() as reader:
        order = sorted(live_columns(reader, "date", "id"), key=lambda row: (row[1], row[2]))
        for docnum, _, _ in order:
            try:
                stored = reader.stored_fields(docnum)
            except UnsafePickle as e:  # a forged stored document, refused
                raise store.damaged(e.problem) from None
            yield record_from_stored(stored)


def write_jsonl(records: Iterator[Record], out: IO[str]) -> int:
    """Write records as JSON Lines (UTF-8, not ASCII-escaped); return how many."""
    count = 0
    for record in records:
        out.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
        count += 1
    return count
