"""Highlighting: where the query's words are in a text, and the window of a body shown as a snippet.

Our own instead of Whoosh's highlighter: Whoosh only looks at the first 32K characters
of a text and returns HTML fragments we would have to re-escape. Here the text is analysed
with the same analyser as the index, so "running" is found for a search on "run", and the
snippet window is chosen over the whole body, however long.

The result is a `Highlighted`: plain text and the spans that matched. Each edge renders it
its own way (escaped HTML with <mark> for the web and the JSON, bold in a terminal), so
nothing ever parses our own HTML back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from markupsafe import Markup, escape
from whoosh.analysis import Analyzer

from searchsvc.index.analysis import TermFunction, term_spans

SNIPPET_CHARS = 200
ELLIPSIS = "…"
_SPACES = re.compile(r"\s+")

Span = tuple[int, int, str]  # start, end, and the index term found there


@dataclass(frozen=True)
class Highlighted:
    """`text` with the (start, end) character spans that matched the query, in order."""

    text: str
    spans: tuple[tuple[int, int], ...] = ()

    def render(self, marked: Callable[[str], str], plain: Callable[[str], str] = str) -> str:
        """The text with each matched part passed through `marked`, the rest through `plain`."""
        out: list[str] = []
        position = 0
        for start, end in self.spans:
            out.append(plain(self.text[position:start]))
            out.append(marked(self.text[start:end]))
            position = end
        out.append(plain(self.text[position:]))
        return "".join(out)

    def html(self) -> Markup:
        """Escaped HTML in which only our own <mark> tags are markup."""
        return Markup(self.render(lambda part: f"<mark>{escape(part)}</mark>", lambda part: str(escape(part))))


def match_spans(text: str, terms: Iterable[str], analyzer: Analyzer) -> list[Span]:
    """(start, end, term) of every word in `text` whose analysed form is one of `terms`."""
    wanted = set(terms)
    if not wanted:
        return []
    term_of = _term_functions.get(id(analyzer))
    if term_of is None:
        term_of = _term_functions[id(analyzer)] = TermFunction(analyzer)
    spans = [span for span in term_spans(text, term_of) if span[2] in wanted]
    return _merge_adjacent(spans)


_term_functions: dict[int, TermFunction] = {}


def _merge_adjacent(spans: list[Span]) -> list[Span]:
    """Overlapping CJK bigrams become one marked run."""
    merged: list[Span] = []
    for start, end, term in spans:
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]), merged[-1][2])
        else:
            merged.append((start, end, term))
    return merged


def highlight(text: str, spans: list[Span]) -> Highlighted:
    """The whole text with every match marked (titles, whole posts)."""
    return Highlighted(text, tuple((start, end) for start, end, _ in spans))


def snippet(text: str, spans: list[Span], size: int = SNIPPET_CHARS) -> Highlighted:
    """About `size` characters around the densest cluster of matches, or the opening
    of the text when nothing in it matched (a post that matched only in its title)."""
    if not spans:
        return _window(text, [], 0, min(len(text), size))
    best_key: tuple[int, int, int] | None = None
    first = 0
    j = 0
    for i in range(len(spans)):
        j = max(j, i)
        while j + 1 < len(spans) and spans[j + 1][1] - spans[i][0] <= size:
            j += 1
        window = spans[i:j + 1]
        # Most distinct terms, then most matches, then the earliest window.
        key = (len({t for _, _, t in window}), len(window), -i)
        if best_key is None or key > best_key:
            best_key, first = key, i
    last = first
    while last + 1 < len(spans) and spans[last + 1][1] - spans[first][0] <= size:
        last += 1
    covered_start, covered_end = spans[first][0], spans[last][1]
    slack = max(0, size - (covered_end - covered_start))
    start = max(0, covered_start - slack // 2)
    end = min(len(text), start + max(size, covered_end - covered_start))
    start = max(0, min(start, end - size))
    return _window(text, spans, start, end)


def _window(text: str, spans: list[Span], start: int, end: int) -> Highlighted:
    """text[start:end] cut back to word boundaries, each run of white space read as one space,
    with ellipses where it was cut."""
    if start > 0:
        space = text.find(" ", start, start + 30)
        if space != -1 and not any(s < space + 1 <= e for s, e, _ in spans):
            start = space + 1
    if end < len(text):
        space = text.rfind(" ", max(start, end - 30), end)
        if space > start and not any(s < space <= e for s, e, _ in spans):
            end = space
    prefix = ELLIPSIS if start > 0 else ""
    suffix = ELLIPSIS if end < len(text) else ""
    # Matches are words, never white space: their bounds move with the text around them.
    inside = [(max(s, start), min(e, end)) for s, e, _ in spans if e > start and s < end]
    pieces: list[str] = []
    out_spans: list[tuple[int, int]] = []
    length = len(prefix)
    position = start
    for s, e in inside:
        between = _collapse(text[position:s], first=not pieces, last=False)
        pieces.append(between)
        length += len(between)
        out_spans.append((length, length + e - s))
        pieces.append(text[s:e])
        length += e - s
        position = e
    pieces.append(_collapse(text[position:end], first=not pieces, last=True))
    return Highlighted(prefix + "".join(pieces) + suffix, tuple(out_spans))


def _collapse(part: str, *, first: bool, last: bool) -> str:
    """White space runs as one space, none at the start or end of the whole window."""
    part = _SPACES.sub(" ", part)
    if first:
        part = part.lstrip(" ")
    if last:
        part = part.rstrip(" ")
    return part
