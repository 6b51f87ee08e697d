"""One time budget per request, shared by every step of a search.

A search parses, expands prefixes and fuzzy words, scores, counts, facets, cuts snippets
and may look for a respelling: each step looks at the same deadline, so the limit covers
the whole request, not only the scoring loop (a "did you mean" outside the limit kept a
worker busy for 30 s).
"""

from __future__ import annotations

import time

from searchsvc.errors import SearchTimeout


class Deadline:
    """A request's time limit (None: no limit). Past it, `check()` raises SearchTimeout."""

    # Loops over documents look at the clock once every TICKS steps: it costs more than a step.
    TICKS = 256

    def __init__(self, timeout: float | None):
        self.timeout = timeout
        self.at = None if timeout is None else time.monotonic() + timeout
        self._count = 0

    def remaining(self) -> float | None:
        """Seconds left (never below 0), or None without a limit."""
        return None if self.at is None else max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at

    def check(self) -> None:
        """SearchTimeout if the time is up."""
        if self.expired():
            raise SearchTimeout(f"the search took longer than {self.timeout:g} s and was stopped; "
                                "narrow it with more words, a longer prefix or a date range")

    def tick(self) -> None:
        """`check()` once every TICKS calls: for loops over documents."""
        self._count += 1
        if not self._count % self.TICKS:
            self.check()
