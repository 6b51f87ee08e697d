"""Facets: how many matches each author and each year has, and each month for the timeline."""

from __future__ import annotations

from collections import Counter

import numpy as np

from searchsvc.search.docvalues import DocValues
from searchsvc.search.results import FacetValue


def count(values: DocValues, matching: np.ndarray) -> tuple[dict[str, list[FacetValue]], dict[str, int]]:
    """Counts by author and by year over all matches (posts without one count under null),
    and by month for the timeline: one `bincount` per facet over the matches' codes."""
    if not len(matching):
        return {"author": [], "year": []}, {}
    # Code -1 (none) counts in slot 0, code i in slot i + 1.
    per_author = np.bincount(values.author_codes[matching] + 1, minlength=len(values.author_names) + 1).tolist()
    per_month = np.bincount(values.month_codes[matching] + 1, minlength=len(values.month_names) + 1).tolist()
    authors: dict[str | None, int] = {values.author_names[i]: n for i, n in enumerate(per_author[1:]) if n}
    if per_author[0]:
        authors[None] = per_author[0]
    months = {values.month_names[i]: n for i, n in enumerate(per_month[1:]) if n}
    years: Counter[int | None] = Counter()
    for month, n in months.items():
        years[int(month[:4])] += n
    if per_month[0]:
        years[None] = per_month[0]
    by_author = sorted(authors.items(), key=lambda kv: (-kv[1], kv[0] is None, kv[0] or ""))
    by_year = sorted(years.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))
    counts = {
        "author": [FacetValue(a, n) for a, n in by_author],
        "year": [FacetValue(y, n) for y, n in by_year],
    }
    return counts, dict(sorted(months.items()))
