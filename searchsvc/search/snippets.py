"""Highlighting: matched words wrapped in <mark>, everything else HTML-escaped.

Our own instead of Whoosh's highlighter: Whoosh only looks at the first 32K characters
of a text and returns fragments we would have to re-escape. Here the text is analysed
with the same analyser as the index, so "running" is marked for a search on "run", and
the snippet window is chosen over the whole body, however long.
"""

from __future__ import annotations

from collections.abc import Iterable

from markupsafe import Markup, escape
from whoosh.analysis import Analyzer

from searchsvc.index.analysis import TermFunction, term_spans

SNIPPET_CHARS = 200
ELLIPSIS = "…"


def match_spans(text: str, terms: Iterable[str], analyzer: Analyzer) -> list[tuple[int, int, str]]:
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


def _merge_adjacent(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Overlapping CJK bigrams become one marked run."""
    merged: list[tuple[int, int, str]] = []
    for start, end, term in spans:
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]), merged[-1][2])
        else:
            merged.append((start, end, term))
    return merged


def mark(text: str, spans: list[tuple[int, int, str]], start: int = 0, end: int | None = None) -> Markup:
    """text[start:end], escaped, with the spans inside it wrapped in <mark>."""
    end = len(text) if end is None else end
    out: list[str] = []
    position = start
    for s, e, _ in spans:
        if e <= start or s >= end:
            continue
        s, e = max(s, start), min(e, end)
        out.append(str(escape(text[position:s])))
        out.append(f"<mark>{escape(text[s:e])}</mark>")
        position = e
    out.append(str(escape(text[position:end])))
    return Markup("".join(out))


def highlight(text: str, terms: Iterable[str], analyzer: Analyzer) -> Markup:
    """The whole text with every match marked (titles, whole posts)."""
    return mark(text, match_spans(text, terms, analyzer))


def snippet(text: str, terms: Iterable[str], analyzer: Analyzer, size: int = SNIPPET_CHARS) -> Markup:
    """About `size` characters around the densest cluster of matches, or the opening
    of the text when nothing in it matched (a post that matched only in its title)."""
    return snippet_from_spans(text, match_spans(text, terms, analyzer), size)


def snippet_from_spans(text: str, spans: list[tuple[int, int, str]], size: int = SNIPPET_CHARS) -> Markup:
    """`snippet` for spans already found."""
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


def _window(text: str, spans: list[tuple[int, int, str]], start: int, end: int) -> Markup:
    """text[start:end] cut back to word boundaries, with ellipses where it was cut."""
    if start > 0:
        space = text.find(" ", start, start + 30)
        if space != -1 and not any(s < space + 1 <= e for s, e, _ in spans):
            start = space + 1
    if end < len(text):
        space = text.rfind(" ", max(start, end - 30), end)
        if space > start and not any(s < space <= e for s, e, _ in spans):
            end = space
    body = mark(text, spans, start, end)
    body = Markup(" ".join(str(body).split()))  # newlines and runs of spaces read as one space
    prefix = ELLIPSIS if start > 0 else ""
    suffix = ELLIPSIS if end < len(text) else ""
    return Markup(prefix) + body + Markup(suffix)
