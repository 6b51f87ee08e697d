"""A search request: parsed and checked once from URL parameters or CLI options.

Every problem is a BadRequest naming the parameter, so the API can answer 400 with
`param` set and the web page can show the message next to the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from searchsvc.dates import LATEST_YEAR, ParsedDate, parse_date
from searchsvc.errors import BadRequest, InvalidDate

SORTS = ("relevance", "newest", "oldest")
DEFAULT_PER_PAGE = 10
MAX_PER_PAGE = 100
MAX_PAGE = 1000


@dataclass(frozen=True)
class SearchRequest:
    """What to search for, how to filter and order it, and which page to return."""

    q: str = ""
    date_from: ParsedDate | None = None
    date_to: ParsedDate | None = None
    authors: tuple[str, ...] = ()
    sort: str | None = None
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE
    # "or" ranks documents matching any word (long natural-language queries, benchmarks).
    operator: str = "and"
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def effective_sort(self) -> str:
        """relevance when there is a query, else newest first."""
        if self.sort:
            return self.sort
        return "relevance" if self.q.strip() else "newest"

    def to_json(self) -> dict[str, Any]:
        return {
            "q": self.q,
            "from": self.date_from.isoformat() if self.date_from else None,
            "to": self.date_to.isoformat() if self.date_to else None,
            "author": list(self.authors),
            "sort": self.effective_sort,
            "page": self.page,
            "per_page": self.per_page,
        }

    def to_params(self, **changes: Any) -> dict[str, Any]:
        """URL parameters that reproduce this request (with `changes` applied)."""
        params: dict[str, Any] = {
            "q": self.q or None,
            "from": self.raw.get("from") or (self.date_from.isoformat() if self.date_from else None),
            "to": self.raw.get("to") or (self.date_to.isoformat() if self.date_to else None),
            "author": list(self.authors) or None,
            "sort": self.sort,
            "page": self.page if self.page != 1 else None,
            "per_page": self.per_page if self.per_page != DEFAULT_PER_PAGE else None,
        }
        params.update(changes)
        return {k: v for k, v in params.items() if v not in (None, [], "")}


def request_from_params(params: Mapping[str, Sequence[str] | str]) -> SearchRequest:
    """Build a request from `q, from, to, author (repeatable), sort, page, per_page`."""

    def one(name: str) -> str:
        value = params.get(name)
        if value is None:
            return ""
        if isinstance(value, str):
            return value.strip()
        return value[-1].strip() if value else ""

    def many(name: str) -> tuple[str, ...]:
        value = params.get(name)
        if value is None:
            return ()
        values = [value] if isinstance(value, str) else list(value)
        return tuple(dict.fromkeys(v.strip() for v in values if v.strip()))

    date_from = _date(one("from"), "from")
    date_to = _date(one("to"), "to")
    if date_from and date_to and date_from.value > date_to.value:
        raise BadRequest(
            f"'from' ({date_from.isoformat()}) is after 'to' ({date_to.isoformat()})",
            code="bad_date_range", param="from",
        )
    sort = one("sort") or None
    if sort is not None and sort not in SORTS:
        raise BadRequest(f"'sort' must be one of {', '.join(SORTS)}, got {sort!r}",
                         code="bad_sort", param="sort")
    return SearchRequest(
        q=one("q"),
        date_from=date_from,
        date_to=date_to,
        authors=many("author"),
        sort=sort,
        page=_integer(one("page"), "page", 1, 1, MAX_PAGE),
        per_page=_integer(one("per_page"), "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE),
        raw={"from": one("from"), "to": one("to")},
    )


def _date(text: str, param: str) -> ParsedDate | None:
    if not text:
        return None
    try:
        date = parse_date(text)
    except InvalidDate as e:
        raise BadRequest(f"'{param}': {e}", code="bad_date", param=param) from None
    if date.value.year > LATEST_YEAR:
        raise BadRequest(f"'{param}': invalid date {text!r}: the latest year allowed is {LATEST_YEAR}",
                         code="bad_date", param=param)
    return date


def _integer(text: str, param: str, default: int, low: int, high: int) -> int:
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"'{param}' must be a whole number, got {text!r}",
                         code="bad_page", param=param) from None
    if not low <= value <= high:
        raise BadRequest(f"'{param}' must be between {low} and {high}, got {value}",
                         code="bad_page", param=param)
    return value
