"""Text analysis: how titles and bodies become index terms, and queries the same terms.

The pipeline, the same at index and at query time:

1. `ScriptTokenizer`: words of any script; runs of Chinese/Japanese characters, which have
   no spaces, become overlapping bigrams so a word inside a sentence can be found.
2. `FoldFilter`: case and accent folding ("Ürümqi" is "urumqi", Turkish "İ/ı" are "i").
3. `AsciiStemFilter`: English Snowball stems ("running", "runs" -> "run"), chosen over Porter
   by measured ranking quality (benchmarks/quality.py); Porter turns "running" into "runn".
   The stemmer is Snowball's own C code through PyStemmer: four times faster than Whoosh's
   pure-Python port, and of a newer Snowball that keeps apart words the port conflated
   ("international"/"internal"/"internment", "university"/"universal", "organization"/"organ").
4. `VariantFilter`: spelling variants common in this field map to one form
   (Uighur, Uigur, Uygur -> uyghur), from `data/variants.txt` plus the user's own file.

Turkish posts (`lang: tr`) have their own analysis, `text_analyzer("tr")`, indexed into their
own fields (schema.py): `TurkishFilter` lowercases the Turkish way ("I" is "ı", "İ" is "i"),
stems with Snowball's Turkish stemmer (`turkish_stem`: see there for the rule and its
measurements), then folds as above, so "borsa" finds "borsada" and "borsanın", and a query
typed without Turkish letters ("sirket") finds "şirket".

Kept apart from the schema so the analysis can change (with a new schema version)
without touching ingestion.
"""

from __future__ import annotations

import os
import re
import threading
import unicodedata
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path

import Stemmer
from whoosh.analysis import Analyzer, Filter, StemFilter, Token, Tokenizer

from searchsvc.index.wordcache import WordCache

VARIANTS_ENV = "SEARCHSVC_VARIANTS"
# Each of the three word caches (folds, English stems, Turkish stems) holds at most this much
# per process: 24 MB in all, some 100,000 words of ordinary length.
WORD_CACHE_BYTES = 8 * 1024 * 1024

CJK_RANGES = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# A run of CJK characters, or a run of word characters that are not CJK.
TOKEN = re.compile(rf"[{CJK_RANGES}]+|[^\W{CJK_RANGES}]+")
CJK = re.compile(f"[{CJK_RANGES}]")
_COMBINING_LATIN = re.compile("[\u0300-\u036f]")


class _EqualByType:
    """Analysis parts without settings: two are equal when they are of one type (Whoosh compares
    analysers to tell whether a schema changed)."""

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


class ScriptTokenizer(_EqualByType, Tokenizer):
    """Words of every script; CJK runs as overlapping character bigrams."""

    def __call__(self, value: str, positions: bool = False, chars: bool = False,
                 keeporiginal: bool = False, removestops: bool = True, start_pos: int = 0,
                 start_char: int = 0, tokenize: bool = True, mode: str = "",
                 **kwargs) -> Iterator[Token]:
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        if not tokenize:  # Whoosh's parser asks so for a `prefix*` (and other text it must not split)
            token.original = token.text = value
            token.boost, token.stopped = 1.0, False
            token.whole = True
            if positions:
                token.pos = start_pos
            if chars:
                token.startchar, token.endchar = start_char, start_char + len(value)
            yield token
            return
        pos = start_pos
        for match in TOKEN.finditer(value):
            text, start = match.group(), match.start()
            pieces = bigrams(text, start) if "\u3040" <= text[0] and is_cjk(text[0]) else [(start, text)]
            for offset, piece in pieces:
                token.text = piece
                token.boost, token.stopped, token.whole = 1.0, False, False
                if keeporiginal:
                    token.original = piece
                if positions:
                    token.pos = pos
                if chars:
                    token.startchar = start_char + offset
                    token.endchar = start_char + offset + len(piece)
                pos += 1
                yield token


def is_cjk(char: str) -> bool:
    return CJK.match(char) is not None


def bigrams(run: str, start: int) -> list[tuple[int, str]]:
    """(offset, piece) of the overlapping character pairs of a CJK run found at `start`: these
    scripts have no spaces, so a word inside a sentence is found by its pairs."""
    return [(start + i, run[i:i + 2]) for i in range(max(1, len(run) - 1))]


class FoldFilter(_EqualByType, Filter):
    """Lowercase and remove Latin accents; other scripts keep their marks (Uyghur needs them)."""

    def __call__(self, tokens: Iterator[Token]) -> Iterator[Token]:
        for token in tokens:
            token.text = fold(token.text)
            yield token


def _fold(text: str) -> str:
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFKD", text.casefold().replace("ı", "i"))
    return unicodedata.normalize("NFC", _COMBINING_LATIN.sub("", text))


fold = WordCache(_fold, WORD_CACHE_BYTES)
fold.__doc__ = """Case and accent folding of one word ("İstanbul" -> "istanbul", "Ürümqi" -> "urumqi")."""


class SnowballStemmer:
    """A Snowball stemmer of PyStemmer, one instance per thread: its instances keep state between
    calls and are not safe to share (gunicorn's threaded workers analyse queries side by side)."""

    def __init__(self, language: str):
        self.language = language
        self._local = threading.local()

    def __call__(self, word: str) -> str:
        try:
            stem = self._local.stem
        except AttributeError:
            # Without PyStemmer's own cache (10,000 words per thread and language): the word
            # caches in front of it are bounded in bytes, and it was not.
            stem = self._local.stem = Stemmer.Stemmer(self.language, 0).stemWord
        return stem(word)


# Snowball's Turkish stemmer, one per thread (module-level: a schema's filters are pickled).
_TURKISH = SnowballStemmer("turkish")
# The shortest stem `turkish_stem` makes: shorter ones merged unrelated words.
TURKISH_MIN_STEM = 3
_VOWELS = frozenset("aeıioöuü")
_HIGH_VOWELS = frozenset("ıiuü")


def turkish_lower(word: str) -> str:
    """Lowercase by Turkish rules: "I" is "ı", "İ" is "i" (Python's lower() makes "i" and "i̇")."""
    return word.replace("I", "ı").replace("İ", "i").lower()


def _turkish_stem(word: str) -> str:
    """The stem of a lowercased Turkish word: Snowball's Turkish stemmer applied until the word
    stops changing, never shorter than TURKISH_MIN_STEM letters, and the possessive's buffer
    "s" taken off ("bankası" -> "banka", where Snowball leaves "bankas").

    Why not the stemmer once: it strips one layer of suffixes, so a lemma that looks like a
    suffixed word and its inflected forms part ways ("borsa" -> "bor", "borsada" -> "borsa").
    Repeating it joins them ("borsada" -> "borsa" -> "bor"), but unbounded it reached two
    letters and merged unrelated words ("dolar" -> "do" with "dönem", "işlem" -> "is" with "iş",
    "yatırım" -> "ya" with "ya"). benchmarks/turkish.py measures each rule on 50 lemmas of
    financial news: recall 0.61 (today's folding), 0.89 (once), 0.96 (unbounded), 0.96
    (at least 3 letters), 0.97 (this); precision 0.97, 0.99, 0.95, 0.99, 0.99.
    """
    original = word
    seen = {word}
    while True:
        stem = _TURKISH(word)
        if len(stem) < TURKISH_MIN_STEM:
            return word
        if (len(stem) > TURKISH_MIN_STEM and stem[-1] == "s" and stem[-2] in _VOWELS
                and original.startswith(stem) and original[len(stem):len(stem) + 1] in _HIGH_VOWELS):
            stem = stem[:-1]  # the 3rd person possessive after a vowel, -sI: Snowball takes only the I
        if stem in seen:  # unchanged (or back to an earlier form: Snowball also adds letters)
            return stem
        seen.add(stem)
        word = stem


turkish_stem = WordCache(_turkish_stem, WORD_CACHE_BYTES)
turkish_stem.__doc__ = _turkish_stem.__doc__


class TurkishFilter(_EqualByType, Filter):
    """Turkish lowercasing, stems (`turkish_stem`), then the same folding as every word. A
    `prefix*` is lowercased and folded, not stemmed: a stem need not begin the words it
    stands for ("yatırım" -> "yatir"), so a stemmed prefix found words not beginning with it
    ("yatırım*" found "yatırılan")."""

    def __call__(self, tokens: Iterator[Token]) -> Iterator[Token]:
        for token in tokens:
            token.text = fold(turkish_lower(token.text)) if getattr(token, "whole", False) else turkish_term(token.text)
            yield token


def turkish_term(word: str) -> str:
    """A raw word of a Turkish post as TurkishFilter indexes it."""
    return fold(turkish_stem(turkish_lower(word)))


class AsciiStemFilter(StemFilter):
    """English stems for Latin-script words only; other scripts pass through unchanged.

    Pickled in the schema with Whoosh's own state (`lang`, `ignore`, `cachesize`); the stemmer is
    set up again by `clear()` when the schema is read, never pickled. Every filter with a
    `cachesize` shares one cache per language, bounded in bytes (the number is not read).
    """

    LANGUAGES = {"en": "english"}

    def clear(self) -> None:
        self._stem = _cached_stemmer(self.lang) if self.cachesize else SnowballStemmer(self.LANGUAGES[self.lang])

    def __call__(self, tokens: Iterator[Token]) -> Iterator[Token]:
        stemfn = self._stem
        ignore = self.ignore
        for token in tokens:
            text = token.text
            if not token.stopped and text.isascii() and text not in ignore:
                token.text = stemfn(text)
            yield token


_STEMMERS: dict[str, WordCache] = {}


def _cached_stemmer(lang: str) -> WordCache:
    """The one stem cache of `lang`, shared by every AsciiStemFilter (one per field and schema read)."""
    if lang not in _STEMMERS:
        _STEMMERS.setdefault(lang, WordCache(SnowballStemmer(AsciiStemFilter.LANGUAGES[lang]), WORD_CACHE_BYTES))
    return _STEMMERS[lang]


class VariantFilter(Filter):
    """Maps each stemmed spelling variant to its group's first form."""

    is_morph = True

    def __init__(self, mapping: dict[str, str]):
        self.mapping = mapping

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.mapping == other.mapping  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(type(self))

    def __call__(self, tokens: Iterator[Token]) -> Iterator[Token]:
        mapping = self.mapping
        for token in tokens:
            token.text = mapping.get(token.text, token.text)
            yield token


def variant_groups() -> list[list[str]]:
    """The shipped groups, then those of the file named by SEARCHSVC_VARIANTS, if any."""
    text = resources.files("searchsvc").joinpath("data/variants.txt").read_text(encoding="utf-8")
    extra = os.environ.get(VARIANTS_ENV)
    if extra:
        text += "\n" + Path(extra).read_text(encoding="utf-8")
    groups = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        words = [w for w in re.split(r"[\s,]+", line) if w]
        if len(words) > 1:
            groups.append(words)
    return groups


def _stem_only(language: str = "en") -> Analyzer:
    if language == "tr":
        return ScriptTokenizer() | TurkishFilter()
    return ScriptTokenizer() | FoldFilter() | AsciiStemFilter(lang="en", cachesize=100_000)


def variant_mapping(language: str = "en") -> dict[str, str]:
    """stem of each variant -> stem of its group's first spelling, in `language`'s analysis."""
    stem = _stem_only(language)
    mapping: dict[str, str] = {}
    for group in variant_groups():
        forms = [[t.text for t in stem(word)] for word in group]
        if any(len(f) != 1 for f in forms):
            continue  # multi-word variants are not supported: each must be one word
        canonical = forms[0][0]
        for form in forms[1:]:
            mapping.setdefault(form[0], canonical)
    return mapping


# The languages with an analysis of their own; posts in any other are analysed as English.
LANGUAGES = ("en", "tr")


def text_analyzer(language: str = "en") -> Analyzer:
    """The analysis of titles and bodies in `language` (and of queries against them)."""
    return _stem_only(language) | VariantFilter(variant_mapping(language))


def word_analyzer() -> Analyzer:
    """Whole words, folded, not stemmed: author names ("author:obama" finds "Barack Obama") and
    the words "did you mean" may suggest."""
    return ScriptTokenizer() | FoldFilter()


class TermFunction:
    """The analyser's term for one raw word, memoised: highlighting a 300,000-character body
    with the full token pipeline cost 15 ms a hit; most words repeat, so a cache of
    word -> term and one C-level regex pass do the same work much faster.

    Built from an analyser made by `text_analyzer()`, so it uses the same stemmer and the
    same variant mapping; tests check it gives exactly the analyser's terms.
    """

    def __init__(self, analyzer: Analyzer):
        self.stem = None
        self.english = False  # the stem is English Snowball (what `word_prefixes` knows)
        self.fold = fold
        self.prefixes_known = True  # False: a stem need not be a prefix of its word
        self.mapping: dict[str, str] = {}
        for item in getattr(analyzer, "items", [analyzer]):
            if isinstance(item, AsciiStemFilter):
                self.stem = item._stem
                self.english = item.lang == "en"
            elif isinstance(item, TurkishFilter):
                self.fold = turkish_term  # lowercases, stems and folds
                self.prefixes_known = False  # "kitabı" -> "kitap"
            elif isinstance(item, VariantFilter):
                self.mapping = item.mapping
        self.variants_of: dict[str, list[str]] = {}
        for variant, canonical in self.mapping.items():
            self.variants_of.setdefault(canonical, []).append(variant)
        self.cache: dict[str, str] = {}

    def __call__(self, word: str) -> str:
        term = self.cache.get(word)
        if term is None:
            term = self.fold(word)
            if self.stem is not None and term.isascii():
                term = self.stem(term)
            term = self.mapping.get(term, term)
            if len(self.cache) < 500_000:
                self.cache[word] = term
        return term

    def word_prefixes(self, terms: Iterable[str]) -> set[str] | None:
        """Lowercase prefixes such that every all-ASCII word whose term is one of `terms` begins,
        lowercased, with one of them: where to look for such words without analysing every word.

        Says nothing of words with a non-ASCII letter ("Ürümqi" is "urumqi"): a caller looks at
        those itself. None when no prefix can be promised (a stemmer other than English Snowball,
        such as the Turkish one, or a stem as short as its possible ending).
        """
        if (self.stem is not None and not self.english) or not self.prefixes_known:
            return None
        prefixes = set()
        for term in terms:
            stems = self.variants_of.get(term, [])
            if self.mapping.get(term, term) == term:
                stems = [term, *stems]
            for stem in stems:
                if not stem.isascii():
                    continue  # an ASCII word's stem is ASCII: only other words give this one
                prefix = english_stem_prefix(stem) if self.stem is not None else stem
                if not prefix:
                    return None
                prefixes.add(prefix)
        return prefixes


def english_stem_prefix(stem: str) -> str:
    """What every lowercase ASCII word that the English Snowball stemmer makes `stem` begins with.

    The stemmer only cuts and replaces endings, so a stem is a prefix of its word followed by the
    letters a step put in, if any: "e" (hoping -> hope, making -> make), "i" (happy -> happi,
    clarify -> clarifi), "le" (-bility -> -ble), which a later step cuts to "l" (possibility ->
    possibl), and the special words' "y" (skies -> sky) and "ie" (dying -> die). Its "Y" for a
    consonant y is turned back into "y", and our words have no apostrophes. So cutting those
    endings off a stem that has them leaves a prefix of every word it came from (tests check it on
    the words of the corpora and on made-up words with every ending the stemmer knows).
    """
    if stem.endswith(("le", "ie")):
        return stem[:-2]
    if stem.endswith(("e", "i", "l", "y")):
        return stem[:-1]
    return stem


def term_spans(text: str, term_of: TermFunction) -> Iterator[tuple[int, int, str]]:
    """(start, end, term) of every token of `text`, as the analyser would index it."""
    for match in TOKEN.finditer(text):
        word, start = match.group(), match.start()
        if "\u3040" <= word[0] and is_cjk(word[0]):
            for offset, piece in bigrams(word, start):
                yield offset, offset + len(piece), term_of(piece)
        else:
            yield start, match.end(), term_of(word)
