"""The date and author filters: which document numbers a request allows, from the doc values."""

from __future__ import annotations

import numpy as np
from whoosh.util.times import datetime_to_long

from searchsvc.dates import period_end
from searchsvc.index.columns import UNDATED
from searchsvc.search.docvalues import DocValues
from searchsvc.search.request import SearchRequest


def allowed_docs(values: DocValues, request: SearchRequest) -> np.ndarray | None:
    """A bool per document number, True where the date and author filters allow it (None: no
    filter): comparisons over the date array instead of a Whoosh DateRange (150 ms at 10k posts)."""
    if not (request.date_from or request.date_to or request.authors):
        return None
    allowed = values.live.copy()
    if request.date_from or request.date_to:
        allowed &= values.dates != np.uint64(UNDATED)
        if request.date_from:
            allowed &= values.dates >= np.uint64(datetime_to_long(request.date_from.value))
        if request.date_to:
            allowed &= values.dates <= np.uint64(datetime_to_long(period_end(request.date_to)))
    if request.authors:
        codes = [i for i, name in enumerate(values.author_names) if name in set(request.authors)]
        allowed &= np.isin(values.author_codes, codes)
    return allowed
