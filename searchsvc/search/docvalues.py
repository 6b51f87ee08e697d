"""Per-document values (author, date, month, the date orders) read from the columns once per
index version: the filters (filters.py), the date orders (here) and the facets (facets.py) are
then plain list and set work over document numbers, never a Whoosh query or sort."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime

from whoosh.searching import Searcher
from whoosh.util.times import long_to_datetime

from searchsvc.index.columns import UNDATED, column
from searchsvc.search.engine import Engine


@dataclass(frozen=True)
class DocValues:
    """Author and month of every document number, and the orders of the live ones."""

    authors: list[str | None]
    months: list[str | None]  # "YYYY-MM", None when undated
    dates: list[int]  # the raw dates of dated documents, ascending ...
    dated_docs: list[int]  # ... and their document numbers, in the same order
    docs_by_author: dict[str, list[int]]
    newest_first: list[int]  # every document, newest first, undated last, ties by id
    oldest_first: list[int]  # every document, oldest first, undated last, ties by id


def doc_values(engine: Engine, searcher: Searcher) -> DocValues:
    """The values of the engine's current version (`searcher`, inside engine.reading())."""
    values = engine.kept("doc_values")
    if values is None:
        values = _read(searcher)
        engine.keep("doc_values", values)
    return values


def _read(searcher: Searcher) -> DocValues:
    reader = searcher.reader()
    total = reader.doc_count_all()
    if reader.doc_count() == 0:
        return DocValues([None] * total, [None] * total, [], [], {}, [], [])
    authors_column = column(reader, "author_key")
    dates_column = column(reader, "date")
    live = set(reader.all_doc_ids())  # deleted documents are in no order or index
    authors = [authors_column[d] or None for d in range(total)]
    raw_dates = [dates_column[d] if d in live else UNDATED for d in range(total)]
    months = [None if raw == UNDATED else _month(long_to_datetime(raw)) for raw in raw_dates]
    dated = sorted((raw, d) for d, raw in enumerate(raw_dates) if raw != UNDATED)
    by_author: dict[str, list[int]] = {}
    for d, author in enumerate(authors):
        if author and d in live:
            by_author.setdefault(author, []).append(d)
    ids = column(reader, "id")
    id_of = [ids[d] for d in range(total)]
    undated = sorted((d for d in live if raw_dates[d] == UNDATED), key=id_of.__getitem__)
    newest = sorted((d for _, d in dated), key=lambda d: (-raw_dates[d], id_of[d])) + undated
    oldest = sorted((d for _, d in dated), key=lambda d: (raw_dates[d], id_of[d])) + undated
    return DocValues(authors, months, [raw for raw, _ in dated], [d for _, d in dated], by_author, newest, oldest)


def _month(value: datetime) -> str:
    """"0999-06": strftime("%Y") does not pad years before 1000 on Linux ("999-06")."""
    return f"{value.year:04d}-{value.month:02d}"


def in_date_order(values: DocValues, sort: str, matching: set[int], limit: int | None) -> list[int]:
    """The first `limit` matches, newest or oldest first, undated last, ties by id: from the
    per-version orders, instead of a Whoosh sort that reads a column for every match."""
    order = values.newest_first if sort == "newest" else values.oldest_first
    return list(itertools.islice((d for d in order if d in matching), limit))
