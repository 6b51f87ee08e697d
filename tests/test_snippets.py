"""Highlighting finds the query's words without analysing every word of a body: its spans, its
snippets and a hit's matched terms must be exactly those of analysing every word, as it was done
before. Compared on real text (presidential documents, the sample posts, the multilingual corpora)
for a few hundred sets of query terms."""

from __future__ import annotations

import gzip
import itertools
import json
import random
import re
from functools import cache

import pytest
from conftest import CORPORA, PRESIDENTIAL, SAMPLE_POSTS

from searchsvc.index.analysis import TOKEN, TermFunction, english_stem_prefix, term_spans, text_analyzer
from searchsvc.search import snippets
from searchsvc.search.hits import ANALYZER, make_hit
from searchsvc.search.results import Hit
from searchsvc.search.snippets import SNIPPET_CHARS, Span, highlight, match_spans

TERM_OF = TermFunction(ANALYZER)

EDGE_TEXTS = [
    "",
    "run",
    "Running. RUN, ran; runs run_ run1 _run (run) brunt",
    "Ürümqi İSTANBUL Işık Uighurs RUNNING condemned Turkistan Urumchi ＡＢＣ x China’s café ½ ⑴ (1) ﬁre",
    "Kelvin: 5 \u212a, naïve coöperation, São Paulo, Straße, Œuvre, ǅemal, Ⅻ",
    "新闻联播 run 中 x 中国 the ・ end",
    "a " * 300 + "skies dying possibility hoping happy ugly",
    "x" * 5000 + " needle " + "y" * 5000,
    "the " + "filler words here " * 3000 + "uniquelateword at the very end",
]


@cache
def texts() -> list[tuple[str, str]]:
    """(title, body) of the first 2,000 presidential documents, the sample posts, some
    multilingual posts and a few made-up edge cases."""
    read = []
    with gzip.open(PRESIDENTIAL, "rt", encoding="utf-8") as f:
        for line in itertools.islice(f, 2000):
            record = json.loads(line)
            read.append((record["title"], record["body"]))
    for path in sorted((SAMPLE_POSTS / "posts").iterdir()) + sorted((SAMPLE_POSTS / "listing").iterdir()):
        read.append((path.name, path.read_text(encoding="utf-8")))
    for name in sorted((CORPORA / "multilingual").glob("*.jsonl")):
        with open(name, encoding="utf-8") as f:
            for line in itertools.islice(f, 20):
                record = json.loads(line)
                read.append((record["title"], record["body"]))
    return read + [("Edge case", text) for text in EDGE_TEXTS]


_all_spans: dict[str, list[Span]] = {}


def all_spans(text: str) -> list[Span]:
    """Every word of `text` analysed, once per text."""
    spans = _all_spans.get(text)
    if spans is None:
        spans = _all_spans[text] = list(term_spans(text, TERM_OF))
    return spans


def old_match_spans(text: str, wanted: set[str]) -> list[Span]:
    """match_spans as it was: every word analysed, the wanted ones kept, CJK pairs merged."""
    merged: list[Span] = []
    for start, end, term in (span for span in all_spans(text) if span[2] in wanted):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]), merged[-1][2])
        else:
            merged.append((start, end, term))
    return merged


def old_snippet(text: str, spans: list[Span], size: int = SNIPPET_CHARS):
    """snippet as it was: each window's terms counted afresh, every span passed to the cutting."""
    if not spans:
        return snippets._window(text, [], 0, min(len(text), size))
    best_key = None
    first = 0
    j = 0
    for i in range(len(spans)):
        j = max(j, i)
        while j + 1 < len(spans) and spans[j + 1][1] - spans[i][0] <= size:
            j += 1
        window = spans[i:j + 1]
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
    return snippets._window(text, spans, start, end)


def old_hit(stored: dict, terms: set[str], body_spans: list[Span]) -> Hit:
    title_spans = old_match_spans(stored["title"], terms)
    return Hit(id=stored["id"], title=stored["title"], date=None, author=None, url=None, score=1.0,
               title_highlighted=highlight(stored["title"], title_spans),
               snippet=old_snippet(stored["body"], body_spans),
               matched_terms=tuple(sorted({term for _, _, term in title_spans + body_spans})))


class Searcher:
    """Just what make_hit asks of a Whoosh searcher."""

    def __init__(self, stored: dict):
        self.stored = stored

    def stored_fields(self, docnum: int) -> dict:
        return self.stored


def _term_sets(rng: random.Random) -> list[tuple[str, set[str], list[int]]]:
    """(what, terms, the texts to compare on): mostly texts that hold one of the terms."""
    every = texts()
    holders: dict[str, set[int]] = {}
    for n, (title, body) in enumerate(every):
        for term in {TERM_OF(word) for word in set(TOKEN.findall(title + " " + body))}:
            holders.setdefault(term, set()).add(n)
    vocabulary = sorted(holders)
    longest = sorted(range(2000), key=lambda n: -len(every[n][1]))[:3]  # presidential, 40,000 to 65,000 characters
    with_words = [n for n, (_, body) in enumerate(every) if TOKEN.search(body)]

    def words(n: int) -> list[str]:
        return [term for _, _, term in all_spans(every[n][1])]

    cases: list[tuple[str, set[str]]] = []
    for _ in range(100):
        cases.append(("one word", {rng.choice(words(rng.choice(with_words)))}))
    for _ in range(40):
        body_words = words(rng.choice(with_words))
        at = rng.randrange(len(body_words))
        cases.append(("a phrase's words", set(body_words[at:at + rng.randint(2, 4)])))
    for _ in range(25):
        prefix = rng.choice(vocabulary)[:rng.randint(1, 5)]
        cases.append((f"{prefix}*", {term for term in vocabulary if term.startswith(prefix)}))
    for _ in range(30):
        body_words = words(rng.choice(with_words))
        cases.append(("first and last word", {body_words[0], body_words[-1]}))
    for n in longest:
        spans = all_spans(every[n][1])
        early = {term for start, _, term in spans if start < len(every[n][1]) * 0.9}
        late = sorted({term for _, _, term in spans} - early)
        cases += [("only in the last tenth of a long body", {term}) for term in rng.sample(late, min(10, len(late)))]
    for word in ["run", "running", "ran", "state", "states", "the", "a", "us", "i", "skies", "dying",
                 "possibility", "hoping", "happy", "ugly", "Ürümqi", "İstanbul", "Uighur", "Urumchi",
                 "Kashgar", "Turkistan", "½", "⑴", "café", "fire", "新闻", "联播", "中国"]:
        cases.append(("word", {TERM_OF(word)}))
    cases += [("united states", {"unit", "state"}), ("no match", {"zzqxj"}), ("no match", {"qqqq", "xyzzyx"})]
    out = []
    for number, (what, terms) in enumerate(cases):
        holding = sorted({n for term in terms for n in holders.get(term, ())})
        chosen = rng.sample(holding, min(10, len(holding))) + rng.sample(range(len(every)), 2)
        if number % 4 == 0 or what.startswith("only in the last"):
            chosen += longest
        out.append((what, terms, sorted(set(chosen))))
    return out


@pytest.mark.slow  # 2,900 comparisons over long posts (8 s): CI runs it, the edge cases below stay fast
def test_hits_are_exactly_those_of_analysing_every_word():
    compared = fast = 0
    for what, terms, chosen in _term_sets(random.Random(13)):
        for n in chosen:
            title, body = texts()[n]
            body_spans = old_match_spans(body, terms)
            assert match_spans(body, terms, ANALYZER) == body_spans, (what, terms, n)
            stored = {"id": str(n), "title": title, "body": body}
            hit = make_hit(Searcher(stored), n, 1.0, {"en": terms})
            assert hit == old_hit(stored, terms, body_spans), (what, terms, n)
            compared += 1
            fast += snippets._spans_by_prefix(body, frozenset(terms), TERM_OF) is not None
    assert compared > 2500
    assert fast > 0.9 * compared  # the scan is only the fallback


@pytest.mark.parametrize("text", EDGE_TEXTS)
def test_edge_cases_match_every_word_of_theirs(text):
    for word in set(TOKEN.findall(text)):
        assert match_spans(text, {TERM_OF(word)}, ANALYZER) == old_match_spans(text, {TERM_OF(word)})


@pytest.mark.slow  # every word of 2,000 posts through the stemmer: CI runs it
def test_every_word_begins_with_the_prefix_promised_for_its_stem():
    stem = TermFunction(text_analyzer()).stem
    words = {word.lower() for title, body in texts() for word in re.findall(r"[A-Za-z0-9_]+", title + " " + body)}
    # And real words cut short, with the endings the stemmer cuts or replaces.
    endings = ["ization", "ational", "ation", "ator", "iviti", "ivity", "biliti", "bility", "bly", "ably", "enci",
               "ency", "anci", "ancy", "abli", "izer", "alism", "aliti", "ality", "ousli", "ously", "fulli", "fully",
               "lessli", "lessly", "entli", "ently", "ogi", "ogy", "li", "ly", "y", "ies", "ied", "ing", "ingly",
               "ed", "edly", "eed", "eedly", "ying", "icate", "iciti", "icity", "ical", "alize", "ative", "ness",
               "ful", "s", "es", "sses", "e", "le"]
    words.update("skis skies dying lying tying idly gently ugly early only singly innings".split())  # special words
    rng = random.Random(7)
    for base in rng.sample(sorted(words), 300):
        words.update(base[:cut] + ending for ending in endings for cut in (2, 3, 5, None))
    broken = [(word, stem(word)) for word in words if not word.startswith(english_stem_prefix(stem(word)))]
    assert broken == []


def test_word_prefixes_cover_variants_and_give_up_when_a_stem_is_only_an_ending():
    assert TERM_OF.word_prefixes({"run"}) == {"run"}
    assert TERM_OF.word_prefixes({"urumqi"}) == {"urumq", "urumch", "wulumuq"}
    assert TERM_OF.word_prefixes({"i"}) is None
