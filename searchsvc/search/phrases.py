"""Phrases, checked with set arithmetic instead of Whoosh's span machinery.

Whoosh checks a phrase in every post holding all its words by building Span objects for
every position and comparing them pairwise: "executive order" over 104,000 posts took
2.9 s, 47% of it in that check. Here a phrase of n words starts at p when word i is at
p + i for every i: one set intersection per word over the decoded positions. The
candidates, the scores and the results are Whoosh's own (tested against its Phrase).

A phrase with a slop (`"united states"~3`) matches as Whoosh's SpanNear2 does (ordered,
mindist 1): each word stands after the one before, at most `slop` positions further on, so
slop 1 is the exact phrase. Whoosh compares every pair of spans within reach, in Python, with
no deadline; here only the ends a chain can reach so far are kept, and each next position
looks up the nearest reachable end before it.
"""

from __future__ import annotations

import copy
from bisect import bisect_left
from typing import Any

from whoosh import matching
from whoosh import query as wq
from whoosh.query.spans import Span, SpanNear2


class ExactPhrase(wq.Phrase):
    """A Phrase with a faster position check (any slop, as Whoosh's Phrase reads it)."""

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
        if self.fieldname not in searcher.schema:
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
        fast = _ExactPhraseMatcher(ms, self.deadline, self.slop)
        return matching.WrappingMatcher(fast, boost=self.boost) if self.boost != 1.0 else fast


class _ExactPhraseMatcher(SpanNear2.SpanNear2Matcher):
    def __init__(self, ms: list[Any], deadline: Any, slop: int = 1):
        self.deadline = deadline  # before Whoosh's constructor, which looks for the first match
        super().__init__(ms, slop=slop)

    def copy(self) -> _ExactPhraseMatcher:
        return _ExactPhraseMatcher([m.copy() for m in self.ms], self.deadline, self.slop)

    def _get_spans(self) -> list[Span]:
        if self.deadline is not None:
            self.deadline.tick()
        ms = self.ms
        if self.slop != 1:
            return _near_spans([m.value_as("positions") for m in ms], self.slop, self.deadline)
        starts = set(ms[0].value_as("positions"))
        for offset, m in enumerate(ms[1:], 1):
            if not starts:
                return []
            starts.intersection_update(p - offset for p in m.value_as("positions"))
        last = len(ms) - 1
        return [Span(start, start + last) for start in sorted(starts)]


def _near_spans(positions: list[list[int]], slop: int, deadline: Any = None) -> list[Span]:
    """The spans where each word's position follows a reachable end of the words before it by 1
    to `slop` positions (SpanNear2, ordered, mindist 1), one span per end reached by the last
    word: the nearest chain's start. Each step is one pass over a word's positions."""
    reach = {p: p for p in sorted(positions[0])}  # an end reached so far -> its chain's start
    for word in positions[1:]:
        if deadline is not None:
            deadline.check()  # a word of a large post is a pass over millions of positions
        ends = list(reach)
        following: dict[int, int] = {}
        for p in sorted(word):
            at = bisect_left(ends, p) - 1  # the nearest reachable end before p
            if at >= 0 and p - ends[at] <= slop:
                following[p] = reach[ends[at]]
        if not following:
            return []
        reach = following
    return [Span(start, end) for end, start in reach.items()]
