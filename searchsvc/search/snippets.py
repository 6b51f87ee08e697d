"""Highlighting: where the query's words are in a text, and the window of a body shown as a snippet.

Our own instead of Whoosh's highlighter: Whoosh only looks at the first 32K characters
of a text and returns HTML fragments we would have to re-escape. Here a word is marked when
the analyser of the index gives it one of the query's terms, so "running" is found for a
search on "run", and the snippet window is chosen over the whole body, however long: the
densest cluster of matches wherever it is, so every match of the body is needed (and a hit's
matched terms are every term found in its title and body).

Analysing every word of a body to find them was most of a hit's cost (3.8 ms of a 45 ms
search; 100 ms for a 300,000-character body). Instead the analysis promises, for each term,
a prefix that every ASCII word with that term begins with (`TermFunction.word_prefixes`:
"run" for running, "happ" for happi); those are found by `bytes.find` in the lowercased text,
in C, and only the words there are analysed, with the few words that have a non-ASCII letter,
which fold to anything ("Ürümqi" is "urumqi"). The spans are exactly those of analysing every
word (`scanned_spans`), which is still done where nothing cheaper can be promised: CJK text
(overlapping pairs), text mostly in another script, a term as short as a stem's ending.

The result is a `Highlighted`: plain text and the spans that matched. Each edge renders it
its own way (escaped HTML with <mark> for the web and the JSON, bold in a terminal), so
nothing ever parses our own HTML back.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import lru_cache

from markupsafe import Markup, escape
from whoosh.analysis import Analyzer

from searchsvc.index.analysis import CJK_RANGES, TermFunction, is_cjk, term_spans
from searchsvc.search.deadline import Deadline

_NO_DEADLINE = Deadline(None)

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


def match_spans(text: str, terms: Iterable[str], analyzer: Analyzer, deadline: Deadline = _NO_DEADLINE) -> list[Span]:
    """(start, end, term) of every word in `text` whose analysed form is one of `terms`;
    SearchTimeout past `deadline` (a body of megabytes takes seconds to look through)."""
    wanted = frozenset(terms)
    if not wanted:
        return []
    term_of = _term_functions.get(id(analyzer))
    if term_of is None:
        term_of = _term_functions[id(analyzer)] = TermFunction(analyzer)
    spans = _spans_by_prefix(text, wanted, term_of, deadline)
    return scanned_spans(text, wanted, term_of, deadline) if spans is None else spans


_term_functions: dict[int, TermFunction] = {}


def scanned_spans(text: str, wanted: AbstractSet[str], term_of: TermFunction,
                  deadline: Deadline = _NO_DEADLINE) -> list[Span]:
    """`match_spans` by analysing every word of `text`: what the fast path must equal."""
    tick = deadline.tick
    return _merge_adjacent([span for span in term_spans(text, term_of) if tick() or span[2] in wanted])


# The words `term_spans` reads one at a time (it reads CJK runs as overlapping pairs).
_WORD = re.compile(rf"[^\W{CJK_RANGES}]+")
_WORD_CHAR = re.compile(rf"[^\W{CJK_RANGES}]")
# CJK, or a run of other non-ASCII letters (or digits): a word with one folds to anything.
_NON_ASCII = re.compile(rf"[{CJK_RANGES}]|[^\W\x00-\x7f{CJK_RANGES}]+")
_ASCII_WORD_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789_")
_NOT_ASCII_BYTE = ord("?")  # what a non-ASCII character is encoded as
# Half the presidential bodies with a non-ASCII character have two or fewer: most blocks
# are passed over by `isascii`, in C.
_BLOCK = 1024


def _spans_by_prefix(text: str, wanted: frozenset[str], term_of: TermFunction,
                     deadline: Deadline = _NO_DEADLINE) -> list[Span] | None:
    """`scanned_spans` without analysing every word: only the words that begin with one of the
    prefixes the analysis promises for `wanted` (found by C-level `find` in the lowercased text)
    and the words with a non-ASCII letter, which promise nothing. None when no prefix can be
    promised, for CJK text (its overlapping pairs are merged: left to the scan), or for text
    mostly in another script."""
    prefixes = _prefixes(term_of, wanted)
    if prefixes is None:
        return None
    # One byte a character, "?" for a non-ASCII one: positions are the text's.
    encoded = text.encode("ascii", "replace")
    found: dict[int, Span] = {}
    if not text.isascii():
        if (encoded.count(b"?") - text.count("?")) * 8 > len(text):
            return None  # mostly another script: nearly every word to look at, as the scan does
        if not _add_non_ascii_words(text, wanted, term_of, found, deadline):
            return None
    lowered = encoded.lower()
    for prefix in prefixes:
        position = lowered.find(prefix)
        while position != -1:
            deadline.tick()
            before = lowered[position - 1] if position else None
            inside = before in _ASCII_WORD_BYTES or (before == _NOT_ASCII_BYTE and _WORD_CHAR.match(text, position - 1))
            word = None if inside else _WORD.match(text, position)
            if word is None:  # inside a word, or at no word (the prefix "(1)" of a term folded from "⑴")
                position = lowered.find(prefix, position + 1)
                continue
            term = term_of(word.group())
            if term in wanted:
                found[position] = (position, word.end(), term)
            position = lowered.find(prefix, word.end())
    return [found[start] for start in sorted(found)]


def _add_non_ascii_words(text: str, wanted: frozenset[str], term_of: TermFunction, found: dict[int, Span],
                         deadline: Deadline = _NO_DEADLINE) -> bool:
    """Adds to `found` every word of `text` with a non-ASCII letter whose term is wanted; False
    at the first CJK character. Blocks of ASCII are passed over by `isascii`, in C."""
    done = 0
    for block in range(0, len(text), _BLOCK):
        if text[block:block + _BLOCK].isascii():
            continue
        for match in _NON_ASCII.finditer(text, max(block, done), block + _BLOCK):
            deadline.tick()
            if is_cjk(match.group()[0]):
                return False
            start = match.start()
            while start and _WORD_CHAR.match(text, start - 1):
                start -= 1
            word = _WORD.match(text, start)
            if word is not None:
                done = word.end()
                term = term_of(word.group())
                if term in wanted:
                    found[start] = (start, done, term)
    return True


@lru_cache(maxsize=64)
def _prefixes(term_of: TermFunction, wanted: frozenset[str]) -> tuple[bytes, ...] | None:
    """The analysis's word prefixes for `wanted`, without those that begin with another
    (a prefix search's terms share most of theirs)."""
    prefixes = term_of.word_prefixes(wanted)
    if prefixes is None:
        return None
    kept: list[str] = []
    for prefix in sorted(prefixes):
        if not (kept and prefix.startswith(kept[-1])):
            kept.append(prefix)
    return tuple(prefix.encode("ascii") for prefix in kept)


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


def snippet(text: str, spans: list[Span], size: int = SNIPPET_CHARS, deadline: Deadline = _NO_DEADLINE) -> Highlighted:
    """About `size` characters around the densest cluster of matches, or the opening
    of the text when nothing in it matched (a post that matched only in its title).
    `spans` as `match_spans` gives them: in order, none overlapping."""
    if not spans:
        return _window(text, [], 0, min(len(text), size))
    best_key: tuple[int, int, int] | None = None
    first = 0
    j = -1
    # The terms of the window spans[i:j + 1], counted as it slides: a common word in a long
    # body has thousands of windows.
    counts: dict[str, int] = {}
    for i, (span_start, _, term) in enumerate(spans):
        deadline.tick()
        if j < i:
            j = i
            counts[term] = counts.get(term, 0) + 1
        while j + 1 < len(spans) and spans[j + 1][1] - span_start <= size:
            j += 1
            counts[spans[j][2]] = counts.get(spans[j][2], 0) + 1
        # Most distinct terms, then most matches, then the earliest window.
        key = (len(counts), j + 1 - i, -i)
        if best_key is None or key > best_key:
            best_key, first = key, i
        if counts[term] == 1:
            del counts[term]
        else:
            counts[term] -= 1
    last = first
    while last + 1 < len(spans) and spans[last + 1][1] - spans[first][0] <= size:
        last += 1
    covered_start, covered_end = spans[first][0], spans[last][1]
    slack = max(0, size - (covered_end - covered_start))
    start = max(0, covered_start - slack // 2)
    end = min(len(text), start + max(size, covered_end - covered_start))
    start = max(0, min(start, end - size))
    # `_window` looks only at matches reaching into [start, max(end, start + 30)): being in
    # order and apart, those are one run of the list, found by bisection.
    low = bisect_right(spans, start, key=_end)
    high = bisect_left(spans, max(end, start + 30), low, key=_start)
    return _window(text, spans[low:high], start, end)


def _start(span: Span) -> int:
    return span[0]


def _end(span: Span) -> int:
    return span[1]


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
