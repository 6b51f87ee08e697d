"""Facets: how many matches each author and each year has, and each month for the timeline."""

from __future__ import annotations

import numpy as np

from searchsvc.search.docvalues import DocValues
from searchsvc.search.results import FacetValue


def count(values: DocValues, matching: np.ndarray) -> tuple[dict[str, list[FacetValue]], dict[str, int]]:
    """Counts by author and by year over all matches (posts without one count under null),
    and by month for the timeline: a `bincount` per facet over the matches' codes, which are
    numbered in the order the facets list them."""
    if not len(matching):
        return {"author": [], "year": []}, {}
    # Code -1 (none) counts in slot 0, code i in slot i + 1.
    by_author = _counts(values.author_codes[matching], values.author_names)
    by_year = _counts(values.year_codes[matching], values.years)
    months = {name: n for name, n in _counts(values.month_codes[matching], values.month_names) if name is not None}
    by_author.sort(key=lambda kv: (-kv[1], kv[0] is None, kv[0] or ""))
    by_year.sort(key=lambda kv: kv[0] is None)  # ascending already; undated last
    counts = {
        "author": [FacetValue(a, n) for a, n in by_author],
        "year": [FacetValue(y, n) for y, n in by_year],
    }
    return counts, months


def _counts(codes: np.ndarray, names: list) -> list[tuple]:
    """(name, count) of every code present, in code order; None first for code -1."""
    slots = np.bincount(codes + 1, minlength=len(names) + 1)
    present = np.flatnonzero(slots)
    return [(names[i - 1] if i else None, n) for i, n in zip(present.tolist(), slots[present].tolist(), strict=True)]
