"""The vectorised search (search/vectors.py over index/postings.py) finds exactly what Whoosh's
matchers find, with the same scores, for generated queries of every kind people send: words,
AND, OR, NOT, fields, phrases, prefixes, fuzzy words, with date and author filters, on an
index of several segments (small ones too, where Whoosh scores a prefix differently) with
deleted posts, and on the 10k presidential corpus."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
from whoosh import query as wq
from whoosh.index import open_dir

from searchsvc.index import seam
from searchsvc.index.store import IndexStore
from searchsvc.search import collect, docvalues, filters
from searchsvc.search.deadline import Deadline
from searchsvc.search.engine import Engine
from searchsvc.search.query import check_expansions, parse_query
from searchsvc.search.request import request_from_params
from searchsvc.search.vectors import NotVectorised, evaluate, open_vectors

# Plainly synthetic text: made-up words, fictional authors.
SYLLABLES = ["ka", "lo", "mi", "ren", "to", "sa", "vel", "dor", "qu", "ni", "bar", "est", "ul", "pho", "zin"]
AUTHORS = ["Ada Fictional", "Bora Kurgusal", "Cem Imaginary", None]


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3))))
    return sorted(words)


def _synthetic_posts(rng: random.Random, vocabulary: list[str], count: int, start: int) -> list[dict]:
    # A Zipf-like choice of words, so some are common and some rare.
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]
    posts = []
    for n in range(start, start + count):
        title = " ".join(rng.choices(vocabulary, weights, k=rng.randint(2, 6)))
        body = " ".join(rng.choices(vocabulary, weights, k=rng.randint(5, 200)))
        post = {"id": f"syn-{n}", "title": title.capitalize(), "body": body.capitalize() + "."}
        if rng.random() < 0.9:
            post["date"] = f"{rng.randint(1990, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        author = rng.choice(AUTHORS)
        if author:
            post["author"] = author
        posts.append(post)
    return posts


def _queries(rng: random.Random, words: list[str], pairs: list[tuple[str, str]], authors: list[str],
             count: int) -> list[str]:
    """`count` distinct queries of every kind, from words and adjacent pairs of the corpus."""
    def word() -> str:
        return rng.choice(words)

    makers = [
        lambda: word(),
        lambda: f"{word()} {word()}",
        lambda: f"{word()} {word()} {word()}",
        lambda: f"{word()} OR {word()}",
        lambda: f"{word()} OR {word()} OR {word()}",
        lambda: f"{word()} -{word()}",
        lambda: f"{word()} NOT ({word()} OR {word()})",
        lambda: f"({word()} OR {word()}) {word()}",
        lambda: '"{} {}"'.format(*rng.choice(pairs)),
        lambda: '"{} {}" {}'.format(*rng.choice(pairs), word()),
        lambda: '"{} {}" OR "{} {}"'.format(*rng.choice(pairs), *rng.choice(pairs)),
        lambda: f"title:{word()}",
        lambda: f"title:{word()} {word()}",
        lambda: f"author:{rng.choice(authors)}",
        lambda: f"{word()[:rng.randint(2, 4)]}*",
        lambda: f"{word()[:rng.randint(3, 5)]}* {word()}",
        lambda: f"{_typo(rng, word())}~",
        lambda: f"NOT {word()}",
        lambda: f"{word()} OR -{word()}",
        lambda: f"{word()} {word()} -{word()[:3]}*",
    ]
    found: list[str] = []
    while len(found) < count:
        text = rng.choice(makers)()
        if text not in found:
            found.append(text)
    return found


def _proximity(seed: int, words: list[str], pairs: list[tuple[str, str]], count: int) -> list[str]:
    """`count` proximity searches (`"a b"~N`, issue 22), from a random source of their own so the
    other queries stay those the earlier runs checked."""
    rng = random.Random(seed)
    found: list[str] = []
    while len(found) < count:
        text = rng.choice([
            lambda: '"{} {}"~{}'.format(*rng.choice(pairs), rng.randint(2, 12)),
            lambda: '"{} {}"~{}'.format(*reversed(rng.choice(pairs)), rng.randint(2, 12)),
            lambda: '"{} {} {}"~{} {}'.format(*rng.choice(pairs), rng.choice(words), rng.randint(2, 30),
                                              rng.choice(words)),
        ])()
        if text not in found:
            found.append(text)
    return found


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 4:
        return word
    at = rng.randrange(len(word))
    return word[:at] + rng.choice("aeiou") + word[at + 1:]


def _same_ranking(a: list[tuple[int, float]], b: list[tuple[int, float]]) -> None:
    """The same documents in the same order with the same scores (rounded to 4 places); where
    float rounding in a different order of additions moves a score by one unit of the last
    place, documents of (nearly) equal score may trade places."""
    assert len(a) == len(b)
    for (doc_a, score_a), (doc_b, score_b) in zip(a, b, strict=True):
        assert abs(score_a - score_b) <= 1.01e-4, (doc_a, score_a, doc_b, score_b)
        if doc_a != doc_b:
            assert abs(dict(a).get(doc_b, -1) - score_b) <= 1.01e-4
            assert abs(dict(b).get(doc_a, -1) - score_a) <= 1.01e-4


def _compare(engine: Engine, texts: list[str], filter_params: list[dict]) -> dict[str, int]:
    """Both paths on every query (each with one of `filter_params`); counts of what ran."""
    ran = {"vectorised": 0, "with matches": 0}
    with engine.reading() as searcher:
        values = docvalues.doc_values(engine, searcher)
        arrays = open_vectors(searcher)
        assert arrays is not None
        for n, text in enumerate(texts):
            params = filter_params[n % len(filter_params)]
            allowed = filters.allowed_docs(values, request_from_params(params))
            query = parse_query(text, "or" if n % 5 == 0 else "and")
            check_expansions(query, searcher.reader(), Deadline(None))
            evaluate(arrays, searcher, query, Deadline(None))  # raises NotVectorised if not covered
            ours_matching, ours = collect.rank_and_collect(engine, searcher, query, allowed, 10, Deadline(None))
            theirs_matching, theirs = collect.rank_with_matchers(searcher, query, allowed, 10, Deadline(None))
            assert ours_matching.tolist() == theirs_matching.tolist(), text
            _same_ranking(ours, theirs)
            # Every match, as an export asks for them.
            _, every_ours = collect.rank_and_collect(engine, searcher, query, allowed, None, Deadline(None))
            _, every_theirs = collect.rank_with_matchers(searcher, query, allowed, None, Deadline(None))
            _same_ranking(every_ours, every_theirs)
            unscored = collect.matching(engine, searcher, query, allowed, Deadline(None))
            assert unscored.tolist() == collect.match_with_matchers(searcher, query, allowed,
                                                                    Deadline(None)).tolist()
            ran["vectorised"] += 1
            ran["with matches"] += bool(len(ours_matching))
    return ran


FILTERS = [{}, {}, {"from": "2000", "to": "2010"}, {"author": "Ada Fictional"},
           {"from": "1995-06", "author": ["Bora Kurgusal", "Cem Imaginary"]}]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> tuple[Path, list[dict]]:
    """Three ingests (three segments under 5,000 posts) and a delete."""
    from conftest import Searchsvc

    folder = tmp_path_factory.mktemp("vectors")
    searchsvc = Searchsvc(folder / "index")
    rng = random.Random(13)
    vocabulary = _vocabulary(rng, 400)
    posts: list[dict] = []
    for part in range(3):
        batch = _synthetic_posts(rng, vocabulary, 250, part * 250)
        source = folder / f"part{part}.jsonl"
        source.write_text("".join(json.dumps(p) + "\n" for p in batch), encoding="utf-8")
        assert searchsvc("ingest", source).exit_code == 0
        posts += batch
    deleted = [p["id"] for p in posts[::7]]
    assert searchsvc("delete", *deleted).exit_code == 0
    return searchsvc.index, [p for p in posts if p["id"] not in set(deleted)]


def test_same_matches_and_scores_as_whoosh_on_synthetic_posts(synthetic):
    index, posts = synthetic
    engine = Engine(IndexStore(index), result_cache_size=0, search_timeout=None)
    rng = random.Random(7)
    words = sorted({w for p in posts for w in re.findall(r"\w+", p["body"].lower())})
    pairs = sorted({pair for p in posts[:50] for pair in zip(p["body"].lower().split(), p["body"].lower().split()[1:],
                                                                strict=False)})
    pairs = [(a.strip("."), b.strip(".")) for a, b in pairs]
    # 150 here (the fast tier); the presidential corpus below runs 300 in CI.
    texts = _queries(rng, words, pairs, ["fictional", "kurgusal", "imaginary"], 150) + _proximity(1, words, pairs, 30)
    ran = _compare(engine, texts, FILTERS)
    engine.close()
    assert ran["vectorised"] == 180
    assert ran["with matches"] > 100


def test_deleted_posts_never_match(synthetic):
    """Against the source posts: Whoosh's matchers offered deleted posts for `a OR -b`."""
    index, posts = synthetic
    engine = Engine(IndexStore(index), result_cache_size=0, search_timeout=None)
    every = sorted(p["id"] for p in posts)
    with engine.reading() as searcher:
        for text in ["NOT zzzznothing", "zzzznothing OR -yyyynothing"]:
            query = parse_query(text)
            for docs in (collect.matching(engine, searcher, query, None, Deadline(None)),
                         collect.rank_and_collect(engine, searcher, query, None, 10, Deadline(None))[0],
                         collect.rank_with_matchers(searcher, query, None, 10, Deadline(None))[0]):
                assert sorted(searcher.stored_fields(int(d))["id"] for d in docs) == every, text
    engine.close()


def test_segments_without_arrays_are_left_to_whoosh_matchers(tmp_path):
    """A segment Whoosh's own writer wrote has no arrays: open_vectors says so (None), and the
    search takes Whoosh's matchers for that index version."""
    from whoosh.index import create_in

    from searchsvc.index.schema import build_schema, document_from_record
    from searchsvc.records import record_from_mapping

    with seam.whooshs_own_pickles():  # Whoosh's own writer and index, reading what they wrote
        ix = create_in(str(tmp_path), build_schema(), indexname="MAIN")
        writer = ix.writer()
        record = record_from_mapping({"id": "syn-whoosh", "title": "Written by Whoosh", "body": "Pamphlet ink."})
        writer.add_document(**document_from_record(record))
        writer.commit()
        searcher = ix.searcher()
    with searcher:  # its segment's postings are read by our unpicklers: Whoosh's own data passes them
        assert open_vectors(searcher) is None
        matching, ranked = collect.rank_with_matchers(searcher, parse_query("pamphlet"), None, 10, Deadline(None))
        assert matching.tolist() == [0] and [d for d, _ in ranked] == [0]


def test_whoosh_itself_opens_the_index_and_finds_the_same(search_index):
    """The index stays a Whoosh index: Whoosh's open_dir and Searcher answer from its postings."""
    store = IndexStore(search_index)
    folder = store.root / store.marker().generation
    engine = Engine(store, result_cache_size=0, search_timeout=None)
    with seam.whooshs_own_pickles():  # Whoosh's own reading of the table of contents, schema and all
        theirs = open_dir(str(folder), indexname="MAIN").searcher()
    with theirs, engine.reading() as ours:
        for text in ["pamphlet", '"synthetic pamphlet"', "pamph*", "title:undated", "author:fictional"]:
            query = parse_query(text)
            found = {theirs.stored_fields(d)["id"] for d in theirs.docs_for_query(query)}
            mine = {ours.stored_fields(int(d))["id"]
                    for d in collect.matching(engine, ours, query, None, Deadline(None))}
            assert found == mine and found, text
    engine.close()


def test_queries_outside_the_arrays_raise_not_vectorised(search_index):
    engine = Engine(IndexStore(search_index), result_cache_size=0, search_timeout=None)
    with engine.reading() as searcher:
        arrays = open_vectors(searcher)
        with pytest.raises(NotVectorised):
            evaluate(arrays, searcher, wq.Phrase("text", ["synthetic", "pamphlet"], slop=3), Deadline(None))
        # ... and rank_and_collect answers them by the matchers.
        matching, ranked = collect.rank_and_collect(engine, searcher, wq.Phrase("text", ["synthet", "pamphlet"],
                                                                                slop=3), None, 10, Deadline(None))
        assert len(matching) == len(ranked) > 0
    engine.close()


def test_top_by_score_breaks_ties_by_document_number_as_whoosh():
    docs = np.array([3, 5, 8, 9, 12])
    scores = np.array([1.0, 2.0, 2.0, 0.5, 2.0])
    assert collect.top_by_score(docs, scores, 2) == [(5, 2.0), (8, 2.0)]
    assert collect.top_by_score(docs, scores, 4) == [(5, 2.0), (8, 2.0), (12, 2.0), (3, 1.0)]
    assert collect.top_by_score(docs, scores, None) == [(5, 2.0), (8, 2.0), (12, 2.0), (3, 1.0), (9, 0.5)]
    assert collect.top_by_score(docs, scores, 0) == []


@pytest.mark.slow
def test_same_matches_and_scores_as_whoosh_on_the_presidential_corpus(presidential):
    searchsvc, _ = presidential
    engine = Engine(IndexStore(searchsvc.index), result_cache_size=0, search_timeout=None)
    rng = random.Random(11)
    with engine.reading() as searcher:
        reader = searcher.reader()
        spelling = [w.decode() for w in reader.lexicon("spell") if w.isalpha() and len(w) > 2]
    # Words across document frequencies, phrases from the corpus's own text.
    words = rng.sample(spelling, 600)
    with engine.reading() as searcher:
        bodies = [searcher.stored_fields(d)["body"] for d in range(0, 10000, 97)]
    pairs = []
    for body in bodies:
        tokens = re.findall(r"[a-z]+", body.lower())
        for _ in range(3):
            if len(tokens) > 2:
                at = rng.randrange(len(tokens) - 1)
                pairs.append((tokens[at], tokens[at + 1]))
    authors = ["roosevelt", "truman", "obama", "lincoln"]
    ran = _compare(engine, _queries(rng, words, pairs, authors, 300) + _proximity(2, words, pairs, 40),
                   [{}, {}, {"from": "1940", "to": "1960"}, {"author": "Harry S. Truman"}])
    engine.close()
    assert ran["vectorised"] == 340
    assert ran["with matches"] > 150
