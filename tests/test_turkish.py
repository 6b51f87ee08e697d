"""Turkish posts (`lang: tr`) through the API: Turkish stems ("borsa" finds "borsada" and
"borsanın"), phrases, prefixes, fuzzy words, NOT, `title:`, highlighting, and exact totals and
facets against a brute force over the corpus file; and English posts searched exactly as
before, on an index that also holds Turkish ones.

The brute force reads the real Turkish financial news (shared/corpora, read in place) and the
English sample posts, splits and analyses every word with our own term functions, and walks
every post: no Whoosh matcher and no index is involved.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from conftest import CORPORA, SAMPLE_POSTS, Searchsvc

from searchsvc.index.analysis import TOKEN, TermFunction, fold, text_analyzer, turkish_lower
from searchsvc.index.store import IndexStore
from searchsvc.records import record_from_mapping

TURKISH = CORPORA / "multilingual" / "tr_financial_news.jsonl"
TERM = {"en": TermFunction(text_analyzer("en")), "tr": TermFunction(text_analyzer("tr"))}


def turkish_records() -> list[dict]:
    return [json.loads(line) for line in TURKISH.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def indexes(tmp_path_factory) -> dict[str, Path]:
    """The English sample posts alone, and with the 200 Turkish posts."""
    root = tmp_path_factory.mktemp("turkish")
    english = Searchsvc(root / "english")
    assert english("ingest", SAMPLE_POSTS / "posts").exit_code == 0
    mixed = Searchsvc(root / "mixed")
    result = mixed("ingest", SAMPLE_POSTS / "posts", TURKISH)
    assert result.exit_code == 0, result.output
    return {"english": root / "english", "mixed": root / "mixed"}


@pytest.fixture(scope="module")
def client(indexes, client_for):
    return client_for(indexes["mixed"])


@pytest.fixture(scope="module")
def posts(indexes) -> list[dict]:
    """Every post of the mixed index as its record, with its language and terms in order."""
    out = []
    for line in Searchsvc(indexes["mixed"])("export").stdout.splitlines():
        record = json.loads(line)
        language = "tr" if record.get("lang") == "tr" else "en"
        term = TERM[language]
        out.append({**record, "language": language,
                    "terms": [term(w) for w in TOKEN.findall(record["title"] + "\n" + record["body"])],
                    "title_terms": [term(w) for w in TOKEN.findall(record["title"])]})
    return out


def search(client, q: str, **params) -> dict:
    response = client.get("/api/search", query_string={"q": q, "per_page": 100, **params})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def every_id(client, q: str) -> set[str]:
    response = client.get("/api/export", query_string={"q": q, "format": "jsonl"})
    assert response.status_code == 200
    return {json.loads(line)["id"] for line in response.get_data(as_text=True).splitlines()}


def word_query(word: str) -> dict[str, str]:
    """A query word's term in each language, as the parser analyses it."""
    return {language: term(word) for language, term in TERM.items()}


def brute_word(posts: list[dict], word: str, field: str = "terms") -> set[str]:
    wanted = word_query(word)
    return {p["id"] for p in posts if wanted[p["language"]] in p[field]}


def brute_phrase(posts: list[dict], words: list[str]) -> set[str]:
    found = set()
    for p in posts:
        wanted = [word_query(w)[p["language"]] for w in words]
        terms = p["terms"]
        if any(terms[i:i + len(wanted)] == wanted for i in range(len(terms) - len(wanted) + 1)):
            found.add(p["id"])
    return found


def test_the_lemma_finds_its_inflected_forms(client, posts):
    records = turkish_records()
    holding = {form: {r["id"] for r in records
                      if form in {turkish_lower(w) for w in TOKEN.findall(r["title"] + "\n" + r["body"])}}
               for form in ("borsada", "borsanın", "borsası", "borsa")}
    assert all(holding.values())
    found = every_id(client, "borsa")
    for form, ids in holding.items():
        assert ids <= found, form
    assert found == brute_word(posts, "borsa")
    result = search(client, "borsa")
    assert (result["total"], result["query"]["understood"]) == (len(found), "borsa")
    # Typed without Turkish letters, and the other way round.
    assert every_id(client, "sirketler") == every_id(client, "şirketler") == brute_word(posts, "şirketler")
    assert brute_word(posts, "şirketler") == brute_word(posts, "şirket")


def test_a_turkish_phrase_matches_adjacent_words(client, posts):
    expected = brute_phrase(posts, ["merkez", "bankası"])
    assert len(expected) > 10
    assert every_id(client, '"merkez bankası"') == expected
    assert search(client, '"merkez bankası"')["total"] == len(expected)
    # The two words apart are more posts than the phrase.
    both = brute_word(posts, "merkez") & brute_word(posts, "bankası")
    assert every_id(client, "merkez bankası") == both and both > expected


def test_a_turkish_hit_is_highlighted_by_the_turkish_analysis(client):
    hits = {hit["id"]: hit for hit in search(client, "borsa")["hits"]}
    hit = next(h for h in hits.values() if h["title"].startswith("Borsadaki yüzde 1"))
    assert hit["title_highlighted"] == ("<mark>Borsadaki</mark> yüzde 1’lik bir düşüş bile kalp krizini "
                                        "tetikleyebilir")
    assert hit["matched_terms"] == ["bor"]
    assert "<mark>borsa</mark>" in hit["snippet"]
    # The whole post with the query's words marked: every inflected form, and nothing else.
    post = client.get(f"/api/posts/{hit['id']}", query_string={"q": "borsa"}).get_json()
    marked = [part.split("</mark>")[0] for part in post["body_highlighted"].split("<mark>")[1:]]
    assert marked and all(TERM["tr"](word) == "bor" for word in marked)
    body = next(r["body"] for r in turkish_records() if r["id"] == hit["id"])
    assert len(marked) == sum(TERM["tr"](w) == "bor" for w in TOKEN.findall(body))


def test_title_prefix_fuzzy_and_not_on_turkish_posts(client, posts):
    assert every_id(client, "title:borsa") == brute_word(posts, "borsa", "title_terms")
    assert every_id(client, "faiz NOT dolar") == brute_word(posts, "faiz") - brute_word(posts, "dolar")
    assert every_id(client, "faiz -dolar") == brute_word(posts, "faiz") - brute_word(posts, "dolar")
    # `yatırım*`: the words starting with "yatirim" (folded), then their stems.
    starting = {fold(turkish_lower(w)) for p in posts for w in TOKEN.findall(p["title"] + "\n" + p["body"])
                if fold(turkish_lower(w)).startswith("yatirim")}
    stems = {TERM["tr"](w) for w in starting} | {t for p in posts if p["language"] == "tr" for t in p["terms"]
                                                  if t.startswith("yatirim")}
    expected = {p["id"] for p in posts if p["language"] == "tr" and stems & set(p["terms"])}
    holding = {p["id"] for p in posts if any(fold(turkish_lower(w)).startswith("yatirim")
                                             for w in TOKEN.findall(p["title"] + "\n" + p["body"]))}
    assert holding <= expected
    assert every_id(client, "yatırım*") == every_id(client, "yatirim*") == expected
    # One edit away from "enflasyon": at least every post with the word and its forms.
    assert brute_word(posts, "enflasyon") <= every_id(client, "enflasyn~")


def test_totals_and_facets_are_those_of_the_brute_force(client, posts):
    by_id = {p["id"]: p for p in posts}
    for q in ("faiz", "dolar", "piyasa OR hisse", "enflasyon yüzde"):
        words = [w for w in q.split() if w != "OR"]
        sets = [brute_word(posts, w) for w in words]
        expected = set.union(*sets) if "OR" in q else set.intersection(*sets)
        result = search(client, q)
        assert result["total"] == len(expected), q
        authors = Counter(by_id[i].get("author") for i in expected)
        assert {f["value"]: f["count"] for f in result["facets"]["author"]} == authors, q
        years = Counter(int(by_id[i]["date"][:4]) for i in expected if by_id[i].get("date"))
        assert {f["value"]: f["count"] for f in result["facets"]["year"] if f["value"]} == years, q


def test_english_posts_are_indexed_and_found_as_before(indexes, client, client_for):
    """The Turkish posts add nothing to the English fields: every term of `text` and `title`
    has the same posts with and without them, and English searches find the same English posts
    in the same order (Turkish posts may mention Macron too)."""
    def postings(index: Path) -> dict[tuple[str, bytes], set[str]]:
        found = {}
        with IndexStore(index).open().searcher() as searcher:
            reader = searcher.reader()
            for field in ("text", "title"):
                for term in reader.lexicon(field):
                    docs = reader.postings(field, term).all_ids()
                    found[field, term] = {searcher.stored_fields(d)["id"] for d in docs}
        return found

    assert postings(indexes["mixed"]) == postings(indexes["english"])
    english = client_for(indexes["english"])
    for q in ("uyghur", "vaccines", "macron", "genocide", "\"east turkestan\"", "countr*"):
        alone = search(english, q)["hits"]
        mixed = [hit for hit in search(client, q)["hits"] if not hit["id"].startswith("trfin-")]
        assert [h["id"] for h in mixed] == [h["id"] for h in alone], q
        assert [h["snippet"] for h in mixed] == [h["snippet"] for h in alone], q


def test_language_of_a_record():
    from searchsvc.index.schema import language_of

    def record(lang):
        return record_from_mapping({"title": "t", "body": "b", **({} if lang is None else {"lang": lang})})

    assert [language_of(record(lang)) for lang in ("tr", "TR", "tr-TR", "tr_TR", " tr ", "en", "ug", None, 7)] \
        == ["tr", "tr", "tr", "tr", "tr", "en", "en", "en", "en"]
