"""Per-document values (author, date, month, the date orders) read from the columns once per
index version: the date and author filters, the date orders and the facets are then plain
list and set work over document numbers, never a Whoosh query or sort."""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from whoosh.searching import Searcher
from whoosh.util.times import datetime_to_long, long_to_datetime

from searchsvc.dates import period_end
from searchsvc.index.columns import UNDATED, column
from searchsvc.search.engine import Engine
from searchsvc.search.request import SearchRequest
from searchsvc.search.results import FacetValue


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


def allowed_docs(values: DocValues, request: SearchRequest) -> set[int] | None:
    """Document numbers the date and author filters allow (None: no filter): a bisection
    over the dates instead of a Whoosh DateRange (150 ms at 10k posts)."""
    if not (request.date_from or request.date_to or request.authors):
        return None
    allowed: set[int] | None = None
    if request.date_from or request.date_to:
        low = datetime_to_long(request.date_from.value) if request.date_from else -1
        high = datetime_to_long(period_end(request.date_to)) if request.date_to else UNDATED - 1
        start = bisect.bisect_left(values.dates, low)
        end = bisect.bisect_right(values.dates, high)
        allowed = set(values.dated_docs[start:end])
    if request.authors:
        by_author = {d for a in request.authors for d in values.docs_by_author.get(a, ())}
        allowed = by_author if allowed is None else allowed & by_author
    return allowed or set()


def in_date_order(values: DocValues, sort: str, matching: set[int], limit: int | None) -> list[int]:
    """The first `limit` matches, newest or oldest first, undated last, ties by id: from the
    per-version orders, instead of a Whoosh sort that reads a column for every match."""
    order = values.newest_first if sort == "newest" else values.oldest_first
    return list(itertools.islice((d for d in order if d in matching), limit))


def facets(values: DocValues, matching: set[int]) -> tuple[dict[str, list[FacetValue]], dict[str, int]]:
    """Counts by author and by year over all matches (posts without one count under null),
    and by month for the timeline."""
    if not matching:
        return {"author": [], "year": []}, {}
    authors: Counter[str | None] = Counter(values.authors[d] for d in matching)
    all_months: Counter[str | None] = Counter(values.months[d] for d in matching)
    undated = all_months.pop(None, 0)
    months: Counter[str] = Counter(all_months)  # type: ignore[arg-type]
    years: Counter[int | None] = Counter()
    for month, n in months.items():
        years[int(month[:4])] += n
    if undated:
        years[None] = undated
    by_author = sorted(authors.items(), key=lambda kv: (-kv[1], kv[0] is None, kv[0] or ""))
    by_year = sorted(years.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))
    counts = {
        "author": [FacetValue(a, n) for a, n in by_author],
        "year": [FacetValue(y, n) for y, n in by_year],
    }
    return counts, dict(sorted(months.items()))
