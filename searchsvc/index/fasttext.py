"""Field types of our schema.

`FastText` is Whoosh's TEXT with a faster `index`: the token pipeline (a generator and a
Token object per filter per word, twice per post: `text` and `spell`) was 39% of the first
ingest's time. It makes one C-level regex pass and uses a memoised word -> term function
taken from the field's own analyser (`analysis.TermFunction`); tests check that the terms,
positions and encoded postings are exactly the analyser's.
"""

from __future__ import annotations

import sys
from array import array
from collections import defaultdict
from typing import Any

from whoosh import fields, formats
from whoosh.system import pack_uint

from searchsvc.index.analysis import CJK, TOKEN, TermFunction, term_spans


class ArrayPositions(formats.Positions):
    """Whoosh's Positions format, each posting's positions stored as raw little-endian uint32
    instead of a pickled list of deltas: the vectorised search (index/postings.py) joins a
    term's values into one array without decoding each, and Whoosh's matchers decode them here."""

    def encode(self, poslist: list[int]) -> bytes:
        return _encode_positions(poslist)

    def decode_positions(self, valuestring: bytes) -> list[int]:
        found = array("I", valuestring)
        if not _LITTLE:
            found.byteswap()
        return found.tolist()

    def decode_frequency(self, valuestring: bytes) -> int:
        return len(valuestring) >> 2

    def decode_weight(self, valuestring: bytes) -> float:
        return (len(valuestring) >> 2) * self.field_boost

    def combine(self, vs: list[bytes]) -> bytes:
        found: set[int] = set()
        for v in vs:
            found.update(self.decode_positions(v))
        return self.encode(sorted(found))


class FastText(fields.TEXT):
    """A TEXT field whose `index` skips the token pipeline (same terms as the analyser), with
    its positions stored as ArrayPositions."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if isinstance(self.format, formats.Positions):
            self.format = ArrayPositions(field_boost=self.format.field_boost)

    def __getstate__(self) -> dict[str, Any]:
        # Whoosh pickles the schema into its table of contents; the cache stays out.
        state = dict(self.__dict__)
        state.pop("_term_of", None)
        return state

    def term_function(self) -> TermFunction:
        term_of = self.__dict__.get("_term_of")
        if term_of is None:
            term_of = self._term_of = TermFunction(self.analyzer)
        return term_of

    def index(self, value: str, **kwargs: Any):
        term_of = self.term_function()
        positions: dict[str, list[int]] = defaultdict(list)
        for pos, term in enumerate(terms(value, term_of)):
            positions[term].append(pos)
        fmt = self.format
        boost = fmt.field_boost
        # Positions for phrase fields (ArrayPositions), a frequency for the others (`spell`).
        encode = _encode_positions if isinstance(fmt, formats.Positions) else _encode_frequency
        # Every token has boost 1.0, so a term's weight is its frequency times the field's.
        return [
            (term.encode("utf-8"), len(found), len(found) * boost, encode(found))
            for term, found in positions.items()
        ]


_LITTLE = sys.byteorder == "little"


def _encode_positions(found: list[int]) -> bytes:
    positions = array("I", found)
    if not _LITTLE:
        positions.byteswap()
    return positions.tobytes()


def _encode_frequency(found: list[int]) -> bytes:
    return pack_uint(len(found))


_last_words: tuple[str, list[str]] = ("", [])


def words(text: str) -> list[str]:
    """The raw words of `text`; the last answer is kept, since `text` and `spell` index
    the same string one after the other."""
    global _last_words
    if _last_words[0] is text:
        return _last_words[1]
    found = TOKEN.findall(text)
    _last_words = (text, found)
    return found


def terms(text: str, term_of: TermFunction) -> list[str]:
    """The terms the analyser gives for `text`, in order (CJK runs as bigrams)."""
    found = words(text)
    if CJK.search(text) is None:
        # Most words were seen before: one C-level pass over the cache; the new words are
        # analysed once each, then a second pass (not a Python step per word of the text).
        cache = term_of.cache
        out = list(map(cache.get, found))
        if None in out:
            for word in set(found).difference(cache):
                term_of(word)
            out = list(map(cache.get, found))
            if None in out:  # the cache is full
                out = [term_of(word) if term is None else term for term, word in zip(out, found, strict=True)]
        return out
    return [term for _, _, term in term_spans(text, term_of)]
