"""The timeline: matches per year (per month when the range is two years or less), as
bars that each narrow the date range to their period. Empty periods are empty bars."""

from __future__ import annotations

from dataclasses import dataclass

from ..search import SearchResult

MONTHLY_UP_TO = 24  # months
MAX_YEARS = 400  # a from=0001 filter does not draw two thousand empty bars


@dataclass(frozen=True)
class Bar:
    """One period: its label, its count, and the from/to values that select it."""

    label: str
    count: int
    date_from: str
    date_to: str


@dataclass(frozen=True)
class Timeline:
    unit: str  # "year" or "month"
    bars: list[Bar]

    @property
    def peak(self) -> int:
        return max((bar.count for bar in self.bars), default=0)


def timeline(result: SearchResult) -> Timeline | None:
    """The bars for a result, over the filter's range where given, else the matches' range."""
    months = result.months
    request = result.request
    if not months and not (request.date_from and request.date_to):
        return None
    first = _month_index(request.date_from.value.year, request.date_from.value.month) if request.date_from else None
    last = _month_index(request.date_to.value.year, request.date_to.value.month) if request.date_to else None
    if months:
        keys = [_key_index(k) for k in months]
        first = min(keys) if first is None else first
        last = max(keys) if last is None else last
    assert first is not None and last is not None
    if last - first + 1 <= MONTHLY_UP_TO:
        bars = []
        for index in range(first, last + 1):
            label = _label(index)
            bars.append(Bar(label, months.get(label, 0), label, label))
        return Timeline("month", bars)
    by_year: dict[int, int] = {}
    for key, count in months.items():
        by_year[int(key[:4])] = by_year.get(int(key[:4]), 0) + count
    first_year, last_year = first // 12, last // 12
    if last_year - first_year + 1 > MAX_YEARS and by_year:
        first_year, last_year = min(by_year), max(by_year)
    bars = [Bar(f"{y:04d}", by_year.get(y, 0), f"{y:04d}", f"{y:04d}")
            for y in range(first_year, last_year + 1)]
    return Timeline("year", bars)


def _month_index(year: int, month: int) -> int:
    return year * 12 + month - 1


def _key_index(key: str) -> int:
    return _month_index(int(key[:4]), int(key[5:7]))


def _label(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"
