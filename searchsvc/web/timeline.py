"""The timeline: matches per month when the range is two years or less, else per year,
decade or century, whichever keeps it to MAX_BARS bars; each bar narrows the date range to
its period. Empty periods are empty bars."""

from __future__ import annotations

from dataclasses import dataclass

from searchsvc.dates import LATEST_YEAR
from searchsvc.search.results import SearchResult

MONTHLY_UP_TO = 24  # months
MAX_YEARS = 400  # a from=0001 filter with matches is drawn over the matches' years
# Every bar is a link and an SVG shape: from=0001&to=9998 in years was 3.7 MB of page.
MAX_BARS = 120
# Years per bar, finest first; years 1 to 9999 always fit in 100 centuries.
_STEPS = ((1, "year"), (10, "decade"), (100, "century"))


@dataclass(frozen=True)
class Bar:
    """One period: its label, its count, and the from/to values that select it."""

    label: str
    count: int
    date_from: str
    date_to: str


@dataclass(frozen=True)
class Timeline:
    unit: str  # "month", "year", "decade" or "century"
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
    step, unit = next(((step, unit) for step, unit in _STEPS
                       if last_year // step - first_year // step + 1 <= MAX_BARS), _STEPS[-1])
    starts = range(first_year - first_year % step, last_year + 1, step)
    return Timeline(unit, [_bar(start, step, by_year) for start in starts])


def _bar(start: int, step: int, by_year: dict[int, int]) -> Bar:
    """The bar of the `step` years from `start`: 1990 and 10 is 1990–1999, from=1990&to=1999."""
    count = sum(by_year.get(year, 0) for year in range(start, start + step))
    if step == 1:
        return Bar(f"{start:04d}", count, f"{start:04d}", f"{start:04d}")
    # Years 0 and 9999 are not dates a filter takes: the first and last bars stop short.
    low, high = f"{max(start, 1):04d}", f"{min(start + step - 1, LATEST_YEAR):04d}"
    return Bar(f"{low}–{high}", count, low, high)


def _month_index(year: int, month: int) -> int:
    return year * 12 + month - 1


def _key_index(key: str) -> int:
    return _month_index(int(key[:4]), int(key[5:7]))


def _label(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"
