"""The index schema, and the mapping between a Record and the document stored for it.

SCHEMA_VERSION changes whenever the fields or their analysis change; an index built
with another version must be rebuilt (`searchsvc ingest --rebuild`).
"""

from __future__ import annotations

import json
from typing import Any

from whoosh import columns, fields

from .analysis import text_analyzer
from .dates import parse_date
from .records import Record

SCHEMA_VERSION = 1


def build_schema() -> fields.Schema:
    """The fields of every document; `fingerprint` tells whether a post changed."""
    analyzer = text_analyzer()
    return fields.Schema(
        id=fields.ID(stored=True, unique=True, sortable=True),
        title=fields.TEXT(stored=True, analyzer=analyzer, field_boost=2.0),
        body=fields.TEXT(stored=True, analyzer=analyzer),
        author=fields.ID(stored=True, sortable=True),
        date=fields.DATETIME(stored=True, sortable=True),
        date_text=fields.STORED(),
        url=fields.STORED(),
        extra=fields.STORED(),
        fingerprint=fields.COLUMN(columns.VarBytesColumn()),
    )


UNDATED = 2**64 - 1  # the raw date column value of a post without a date: sorts last


def live_columns(reader: Any, *names: str) -> list[tuple[int, ...]]:
    """(docnum, value, ...) for every live document, from sortable columns.

    Dates come raw (a sortable number, UNDATED when absent): Whoosh cannot translate
    the column value of a missing date. An empty index has no columns at all.
    """
    if reader.doc_count() == 0:
        return []
    readers = [reader.column_reader(n, translate=(n != "date")) for n in names]
    return [(n, *(c[n] for c in readers)) for n in reader.all_doc_ids()]


def document_from_record(record: Record) -> dict[str, Any]:
    """The Whoosh document for a record; absent optional values are left out."""
    doc: dict[str, Any] = {
        "id": record.id,
        "title": record.title,
        "body": record.body,
        "fingerprint": record.fingerprint,
    }
    if record.author is not None:
        doc["author"] = record.author
    if record.date is not None:
        doc["date"] = record.date.value
        doc["date_text"] = record.date.isoformat()
    if record.url is not None:
        doc["url"] = record.url
    if record.extra:
        doc["extra"] = json.dumps(record.extra, ensure_ascii=False)
    return doc


def record_from_stored(stored: dict[str, Any]) -> Record:
    """The Record a stored document was made from (its exact export form)."""
    date_text = stored.get("date_text")
    return Record(
        id=stored["id"],
        title=stored["title"],
        body=stored["body"],
        date=parse_date(date_text) if date_text else None,
        author=stored.get("author"),
        url=stored.get("url"),
        extra=json.loads(stored["extra"]) if stored.get("extra") else {},
    )
