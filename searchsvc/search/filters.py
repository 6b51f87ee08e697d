"""The date and author filters: the document numbers a request allows, from the doc values."""

from __future__ import annotations

import bisect

from whoosh.util.times import datetime_to_long

from searchsvc.dates import period_end
from searchsvc.index.columns import UNDATED
from searchsvc.search.docvalues import DocValues
from searchsvc.search.request import SearchRequest


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
