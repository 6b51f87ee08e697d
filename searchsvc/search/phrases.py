"""Exact phrases, checked with set arithmetic instead of Whoosh's span machinery.

Whoosh checks a phrase in every post holding all its words by building Span objects for
every position and comparing them pairwise: "executive order" over 104,000 posts took
2.9 s, 47% of it in that check. Here a phrase of n words starts at p when word i is at
p + i for every i: one set intersection per word over the decoded positions. The
candidates, the scores and the results are Whoosh's own (tested against its Phrase).
"""

from __future__ import annotations

import copy
from typing import Any

from whoosh import matching
from whoosh import query as wq
from whoosh.query.spans import Span, SpanNear2


class ExactPhrase(wq.Phrase):
    """A Phrase (slop 1) with a faster position check; other slops are Whoosh's."""

    # A request's Deadline (deadline.py), set on the copy a search runs (`timed`): Whoosh
    # checks candidates while it builds the matcher, before any document reaches a collector,
    # and 60 phrases of common words ran 23 s past a 5 s limit.
    deadline: Any = None

    def timed(self, deadline: Any) -> ExactPhrase:
        """A copy whose position checks look at `deadline`."""
        phrase = copy.copy(self)
        phrase.deadline = deadline
        return phrase

    def matcher(self, searcher: Any, context: Any = None) -> Any:
        # Whoosh's Phrase.matcher, building our span matcher instead of SpanNear2's: that one
        # looks for its first match with Span objects as it is built (31 s of a 32 s profile
        # for 60 phrases), and building it only to replace it cost that search twice.
        if self.slop != 1 or self.fieldname not in searcher.schema:
            return super().matcher(searcher, context)
        field = searcher.schema[self.fieldname]
        reader = searcher.reader()
        ms = []
        for word in self.words:
            try:
                btext = field.to_bytes(word)
            except ValueError:
                return matching.NullMatcher()
            if (self.fieldname, btext) not in reader:
                return matching.NullMatcher()  # a word no post holds: no match
            ms.append(wq.Term(self.fieldname, btext).matcher(searcher, context))
        fast = _ExactPhraseMatcher(ms, self.deadline)
        return matching.WrappingMatcher(fast, boost=self.boost) if self.boost != 1.0 else fast


class _ExactPhraseMatcher(SpanNear2.SpanNear2Matcher):
    def __init__(self, ms: list[Any], deadline: Any):
        self.deadline = deadline  # before Whoosh's constructor, which looks for the first match
        super().__init__(ms)

    def copy(self) -> _ExactPhraseMatcher:
        return _ExactPhraseMatcher([m.copy() for m in self.ms], self.deadline)

    def _get_spans(self) -> list[Span]:
        if self.deadline is not None:
            self.deadline.tick()
        ms = self.ms
        starts = set(ms[0].value_as("positions"))
        for offset, m in enumerate(ms[1:], 1):
            if not starts:
                return []
            starts.intersection_update(p - offset for p in m.value_as("positions"))
        last = len(ms) - 1
        return [Span(start, start + last) for start in sorted(starts)]
