"""Spelling: "did you mean" and fuzzy words (`goverment~`), from the index's own words.

The words are those of the `spell` field (folded, not stemmed; writer.PostWriter posts each
once per segment with its count) and the variant spellings of data/variants.txt. They are
found by their letter pairs ("^g", "go", "ov", ..., "t$" for "government"): one edit (an
insertion, deletion, substitution, or a transposition of neighbours) removes at most 3 of a
word's pairs, so a word within k edits of another has all but 3k of its distinct pairs and a
length within k. Only the words passing that filter are compared letter by letter (Damerau
distance). Whoosh's corrector and FuzzyTerm computed the distance to every word of the field
instead: 0.5-2 s a word on the 10,419 presidential documents, 30 s and more for a 1,000-letter one.

The pair postings are built once per index version (`spelling_index`), in about half a second.
"""

from __future__ import annotations

import re
import struct
import threading
import weakref
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from whoosh.codec.whoosh3 import W3TermsReader

from searchsvc.index.analysis import fold, is_cjk, variant_groups
from searchsvc.index.schema import SPELL_FIELD
from searchsvc.search.deadline import Deadline

# No word longer than this is respelled or expanded: the longest real word of our corpora has
# 31 letters (trifluoromethoxyphenylhydrazone in SciFact; Uyghur 30, presidential 27); longer
# "words" are text run together, or a query made to be expensive.
MAX_WORD_LENGTH = 32
# "Did you mean" leaves shorter words alone (as the first version did).
MIN_WORD_LENGTH = 3
# At most this many candidates of one word (those sharing the most letter pairs) are compared.
MAX_COMPARED = 200
# A word the posts hold at most this often may be a typo of the posts themselves ("goverment"
# is once in the presidential documents): it is respelled to a word one edit away that is at
# least MUCH_MORE_FREQUENT times as frequent, and is a poor suggestion for another word.
RARE = 2
MUCH_MORE_FREQUENT = 100

_LETTERS = re.compile(r"[^\W\d_]+")
_WEIGHT = struct.Struct("!f")  # a term's total weight, at offset 1 of Whoosh's W3TermInfo


class SpellingIndex:
    """The spelling words of one index version with their frequencies, found by letter pairs."""

    def __init__(self, counts: Mapping[str, int], groups: list[list[str]] | None = None):
        # Variant spellings (folded) -> their group's first form, which the index uses too.
        self.canonical: dict[str, str] = {}
        group_count: Counter[str] = Counter()
        for group in groups or []:
            forms = [fold(word) for word in group]
            for form in forms:
                self.canonical.setdefault(form, forms[0])
        for form, first in self.canonical.items():
            group_count[first] += counts.get(form, 0)
        self.words: list[str] = list(counts) + [w for w in self.canonical if w not in counts]
        self.ids = {word: n for n, word in enumerate(self.words)}
        self.counts = [counts.get(word, 0) for word in self.words]
        # A variant is as frequent as its whole group: "uighur" and "uyghur" are one word.
        self.rank_counts = [group_count[self.canonical[w]] if w in self.canonical else c
                            for w, c in zip(self.words, self.counts, strict=True)]
        self.pairs: dict[int, dict[str, list[int]]] = {}  # length -> pair -> word numbers
        self.by_length: dict[int, list[int]] = {}
        for n, word in enumerate(self.words):
            by_pair = self.pairs.setdefault(len(word), {})
            for pair in _pairs(word):
                by_pair.setdefault(pair, []).append(n)
            self.by_length.setdefault(len(word), []).append(n)
        self._within: dict[tuple[str, int, int, int], list[str]] = {}

    def count(self, word: str) -> int:
        """How often the posts hold `word` (folded)."""
        n = self.ids.get(word)
        return 0 if n is None else self.counts[n]

    def near(self, word: str, maxdist: int) -> Iterator[tuple[int, int, int]]:
        """(word number, letter pairs shared with `word`, how many pairs `word` has) of every
        word that may be within `maxdist` edits of `word`: of a length within `maxdist`,
        sharing all but 3 * maxdist of its pairs (at least one). Those sharing most come first."""
        pairs = set(_pairs(word))
        needed = max(1, len(pairs) - 3 * maxdist)
        shared: Counter[int] = Counter()
        for length in range(max(1, len(word) - maxdist), len(word) + maxdist + 1):
            by_pair = self.pairs.get(length)
            if by_pair:
                for pair in pairs:
                    shared.update(by_pair.get(pair, ()))
        found = sorted(((k, n) for n, k in shared.items() if k >= needed), reverse=True)
        return ((n, k, len(pairs)) for k, n in found)

    def within(self, word: str, maxdist: int, prefixlength: int = 0, limit: int = 500) -> list[str]:
        """The words within `maxdist` edits of `word` that begin with its first `prefixlength`
        letters (a fuzzy word's expansion), sorted; at most `limit` + 1, so that a caller can
        tell there are more than `limit`."""
        key = (word, maxdist, prefixlength, limit)
        found = self._within.get(key)
        if found is None:
            start = word[:prefixlength]
            found = []
            words = self.words
            if len(set(_pairs(word))) - 3 * maxdist > 0:
                candidates: Iterable[int] = (n for n, _, _ in self.near(word, maxdist))
            else:  # too short for the pair filter (`cat~2`): every word of a close length
                lengths = range(max(1, len(word) - maxdist), len(word) + maxdist + 1)
                candidates = (n for length in lengths for n in self.by_length.get(length, ()))
            for n in candidates:
                if words[n].startswith(start) and distance(word, words[n], maxdist) <= maxdist:
                    found.append(words[n])
                    if len(found) > limit:
                        break
            found.sort()
            if len(self._within) > 1024:
                self._within.clear()
            self._within[key] = found
        return found

    def respell(self, word: str) -> str | None:
        """The word people most likely meant by `word` (folded), or None when it is a word
        of the posts or nothing is close. Candidates rank by distance, then frequency; a
        variant spelling is respelled to its group's first form (uigur -> uyghur)."""
        if word in self.canonical:
            first = self.canonical[word]
            return first if first != word else None
        count = self.count(word)
        if count > RARE:
            return None
        # Distance first: the words one edit away are looked at first, and those two away
        # only when none will do. Two edits only for words of 5 letters or more (two make
        # another word of most shorter ones: civl -> will) that the posts do not hold.
        last_resort = None
        for maxdist in (1,) if count or len(word) <= 4 else (1, 2):
            best, rare = self._closest(word, maxdist, count)
            if best is not None:
                return self.canonical.get(best, best)
            last_resort = last_resort or rare
        return last_resort

    def _closest(self, word: str, maxdist: int, count: int) -> tuple[str | None, str | None]:
        """The best candidate within `maxdist` edits (the closest, then the most frequent),
        and the best of those the posts hold at most RARE times (their own typos, maybe: only
        a last resort). For a word of the posts, only candidates MUCH_MORE_FREQUENT count."""
        best: tuple[int, int] | None = None  # (distance, -frequency)
        best_word = rare = None
        rare_key = (maxdist + 1, 0)
        for compared, (n, shared, pairs) in enumerate(self.near(word, maxdist)):
            # Sorted by pairs shared: past the best's distance, nothing closer can follow.
            if compared >= MAX_COMPARED or (best is not None and shared < pairs - 3 * best[0]):
                break
            candidate, frequency = self.words[n], self.rank_counts[n]
            if count and frequency < MUCH_MORE_FREQUENT * count:
                continue
            d = distance(word, candidate, maxdist if best is None else best[0])
            if not 0 < d <= maxdist or not _LETTERS.fullmatch(candidate):
                continue
            if frequency <= RARE and candidate not in self.canonical:  # a variant is a real word
                if (d, -frequency) < rare_key:
                    rare_key, rare = (d, -frequency), candidate
            elif best is None or (d, -frequency) < best:
                best, best_word = (d, -frequency), candidate
        return best_word, rare


class Respeller:
    """Respells the words of one query within a deadline (a callable for query.respell_words).

    `skipped` says why the last word left alone was not respelled (a long word, or no time left).
    """

    def __init__(self, index: SpellingIndex, deadline: Deadline):
        self.index = index
        self.deadline = deadline
        self.skipped: str | None = None

    def __call__(self, word: str) -> str | None:
        if self.deadline.expired():
            self.skipped = "the time for suggestions was spent"
            return None
        if len(word) > MAX_WORD_LENGTH:
            self.skipped = f"words longer than {MAX_WORD_LENGTH} letters are not respelled"
            return None
        if len(word) < MIN_WORD_LENGTH or not _LETTERS.fullmatch(word) or is_cjk(word[0]):
            return None  # Chinese has no words to respell: the index holds character pairs
        return self.index.respell(fold(word))


def distance(a: str, b: str, limit: int) -> int:
    """The Damerau-Levenshtein distance of `a` and `b` (optimal string alignment: insertions,
    deletions, substitutions and transpositions of neighbours each count 1); `limit` + 1 for
    any distance above `limit`."""
    if a == b:
        return 0
    # A common beginning and end cost nothing; most candidates share both.
    start, shorter = 0, min(len(a), len(b))
    while start < shorter and a[start] == b[start]:
        start += 1
    end = 0
    while end < shorter - start and a[-1 - end] == b[-1 - end]:
        end += 1
    a, b = a[start:len(a) - end], b[start:len(b) - end]
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    if not a or not b:
        return len(a) or len(b)
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = ca != cb
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if cost and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                value = min(value, previous2[j - 2] + 1)
            current[j] = value
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return min(previous[-1], limit + 1)


def _pairs(word: str) -> list[str]:
    padded = "^" + word + "$"
    return [padded[i:i + 2] for i in range(len(padded) - 1)]


_indexes: weakref.WeakKeyDictionary[Any, SpellingIndex] = weakref.WeakKeyDictionary()
_building = threading.Lock()


def spelling_index(reader: Any) -> SpellingIndex:
    """The spelling index of a Whoosh reader, built once and kept as long as the reader
    (an index version). A multi-segment reader's index also serves its segments' readers:
    Whoosh expands a fuzzy word once per segment, and a word the segment lacks maps to no
    term of it."""
    index = _indexes.get(reader)
    if index is not None:
        return index
    with _building:
        index = _indexes.get(reader)
        if index is None:
            index = SpellingIndex(_spelling_counts(reader), variant_groups())
            _indexes[reader] = index
            for leaf, _ in reader.leaf_readers():
                if leaf is not reader:
                    _indexes.setdefault(leaf, index)
    return index


def _spelling_counts(reader: Any) -> Counter[str]:
    counts: Counter[str] = Counter()
    for leaf, _ in reader.leaf_readers():
        counts.update(dict(_term_weights(leaf, SPELL_FIELD)))
    return counts


def _term_weights(leaf: Any, fieldname: str) -> Iterator[tuple[str, int]]:
    """(term, total weight) of every term of a field in one segment. Whoosh's `iter_field`
    decodes a whole TermInfo per term (1.2 s for the 47,000 words of the presidential
    documents); the weight alone is read here in a fifth of that."""
    terms = getattr(leaf, "_terms", None)
    if isinstance(terms, W3TermsReader) and fieldname in terms.indexed_field_names():
        start = terms._keycoder(fieldname, b"")  # the field's number: every key of it begins so
        weight = _WEIGHT.unpack_from
        for key, value in terms._tindex.items_from(start):
            if not key.startswith(start):
                break
            yield key[len(start):].decode("utf-8"), int(weight(value, 1)[0])
        return
    for term, info in leaf.iter_field(fieldname):
        yield term.decode("utf-8"), int(info.weight())
