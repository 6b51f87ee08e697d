"""Facets: how many matches each author and each year has, and each month for the timeline."""

from __future__ import annotations

from collections import Counter

from searchsvc.search.docvalues import DocValues
from searchsvc.search.results import FacetValue


def count(values: DocValues, matching: set[int]) -> tuple[dict[str, list[FacetValue]], dict[str, int]]:
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
