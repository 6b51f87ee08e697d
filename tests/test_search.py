"""Matching, the query language, filters, order, pages, facets and highlighting, through the API."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest
from conftest import CORPORA, SYNTHETIC, Searchsvc, assert_error

from searchsvc.index.analysis import AsciiStemFilter


def search(client, **params):
    response = client.get("/api/search?" + urlencode(params, doseq=True))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def ids(client, **params) -> list[str]:
    return [hit["id"] for hit in search(client, per_page=100, **params)["hits"]]


def sample_id(fragment: str, client) -> str:
    for hit in search(client, per_page=100, q="kanat OR author:kanat")["hits"]:
        if fragment in hit["title"]:
            return hit["id"]
    raise AssertionError(fragment)


# Text analysis


@pytest.mark.parametrize("word", ["running", "runs", "run", "RUN"])
def test_english_stemming(client, word):
    assert ids(client, q=word) == ["syn-run"]


def test_condemned_finds_condemn_and_condemning(client):
    found = search(client, q="condemned", per_page=100)
    titles = {hit["title"] for hit in found["hits"]}
    assert found["total"] == 2
    assert any("Must Be Condemned" in t for t in titles)  # "Condemned"
    assert any("My Gratitude to the 38 Countries" in t for t in titles)  # "condemning"
    assert found["query"]["understood"] == "condemn"


@pytest.mark.parametrize("query", ["Ürümqi", "urumqi", "URUMQI", "Urumchi"])
def test_accent_folding_and_variants_find_urumqi(client, query):
    # Written "Urumqi", "Urumchi" and "Ürümqi": each spelling finds all three, both ways.
    assert set(ids(client, q=query)) == {"syn-urumqi", "syn-uigur", "syn-turkish"}


@pytest.mark.parametrize("query, expected", [
    ("isik", "syn-turkish"), ("Işık", "syn-turkish"), ("istanbul", "syn-turkish"), ("İSTANBUL", "syn-turkish"),
    ("dag", "syn-turkish"), ("cicek", "syn-turkish"), ("gol", "syn-turkish"), ("uzum", "syn-turkish"),
    ("sehir", "syn-turkish"), ("şehir", "syn-turkish"),
])
def test_turkish_letters_fold(client, query, expected):
    assert ids(client, q=query) == [expected]


@pytest.mark.parametrize("spelling", ["Uyghur", "Uighur", "Uigur", "Uygur", "uighurs"])
def test_uyghur_spellings_find_each_other(client, spelling):
    found = set(ids(client, q=spelling))
    assert "syn-uigur" in found  # written "Uigur"
    assert len(found - {"syn-uigur"}) == 4  # the four sample posts, written "Uyghur"


@pytest.mark.parametrize("spelling", ["Turkestan", "Turkistan"])
def test_turkestan_spellings_find_each_other(client, spelling):
    assert set(ids(client, q=spelling)) == {"syn-uigur", sample_id("Christmastime", client)}


def test_understood_query_shows_stems_and_variants(client):
    assert search(client, q="Uighurs running")["query"]["understood"] == "uyghur AND run"


def test_users_can_add_variant_groups(tmp_path, monkeypatch):
    from searchsvc.index.analysis import text_analyzer

    extra = tmp_path / "variants.txt"
    extra.write_text("# ours\nGulja Ghulja Yining\n", encoding="utf-8")
    monkeypatch.setenv("SEARCHSVC_VARIANTS", str(extra))
    analyzer = text_analyzer()
    assert [t.text for t in analyzer("Ghulja Yining Uighur")] == ["gulja", "gulja", "uyghur"]


def _first_record(name: str) -> dict:
    with open(CORPORA / "multilingual" / name, encoding="utf-8") as f:
        return json.loads(f.readline())


@pytest.fixture(scope="module")
def multilingual_client(tmp_path_factory, client_for):
    from conftest import Searchsvc

    index = tmp_path_factory.mktemp("multilingual") / "index"
    assert Searchsvc(index)("ingest", CORPORA / "multilingual").exit_code == 0
    return client_for(index)


def test_uyghur_arabic_script_by_word(multilingual_client):
    record = _first_record("ug_uyghur_corpus_articles.jsonl")
    word = max(re.findall(r"[\u0600-\u06ff]+", record["body"])[:50], key=len)
    assert record["id"] in ids(multilingual_client, q=word)


def test_turkish_news_by_word(multilingual_client):
    record = _first_record("tr_financial_news.jsonl")
    word = max(re.findall(r"\w+", record["body"])[:40], key=len)
    assert record["id"] in ids(multilingual_client, q=word.upper())


def test_chinese_word_inside_a_sentence(multilingual_client):
    record = _first_record("zh_xinwenlianbo_sample.jsonl")
    run = max(re.findall(r"[\u4e00-\u9fff]+", record["body"]), key=len)
    word = run[len(run) // 2: len(run) // 2 + 3]  # three characters from the middle of a sentence
    found = search(multilingual_client, q=word, per_page=100)
    assert record["id"] in [hit["id"] for hit in found["hits"]]
    hit = next(h for h in found["hits"] if h["id"] == record["id"])
    assert f"<mark>{word}</mark>" in hit["snippet"] or f"<mark>{word}</mark>" in hit["title_highlighted"]


# The query language


def test_default_is_and(client):
    assert ids(client, q="pamphlet ink") == ["syn-hostile"]
    assert set(ids(client, q="pamphlet")) == {"syn-hostile", "syn-undated-1", "syn-undated-2"}


def test_exact_phrase(client):
    assert len(ids(client, q='"concentration camps"')) == 2
    assert ids(client, q='"camps concentration"') == []


@pytest.mark.parametrize("query, expected", [
    ("marathon OR diary", {"syn-run", "syn-urumqi"}),
    ("pamphlet NOT ink", {"syn-undated-1", "syn-undated-2"}),
    ("pamphlet -ink", {"syn-undated-1", "syn-undated-2"}),
    ("(marathon OR diary) river", {"syn-run"}),
    ("title:pamphlet", {"syn-undated-1", "syn-undated-2"}),
    ('author:"Ada Fictional"', {"syn-run", "syn-urumqi"}),
    ("author:bora", {"syn-turkish", "syn-uigur"}),
    ("pamph*", {"syn-hostile", "syn-undated-1", "syn-undated-2"}),
    ("marathn~", {"syn-run"}),
    ("Covid-19", {None}),
])
def test_boolean_field_prefix_fuzzy(client, query, expected):
    found = set(ids(client, q=query))
    if expected == {None}:  # the hyphen inside a word is not a NOT
        assert len(found) == 1 and "syn-" not in next(iter(found))
    else:
        assert found == expected


@pytest.mark.parametrize("query, message", [
    ('"unclosed phrase', 'the query has an opening " without a closing one'),
    ("(a OR b", "the query has a '(' that is never closed"),
    ("a OR b)", "the query has a ')' without a '(' before it"),
    ("a AND", "'AND' needs a word after it"),
    ("OR b", "'OR' needs a word on each side"),
    ("a OR OR b", "'OR' needs a word on each side"),
    ("NOT", "'NOT' needs a word after it"),
    ("title:", "'title:' needs a word after it"),
    ("()", "the query has empty parentheses '()'"),
    ("!!! ???", "the query has no words to search for"),
])
def test_malformed_queries_are_400_with_a_reason(client, query, message):
    response = client.get("/api/search?" + urlencode({"q": query}))
    assert_error(response, 400, "bad_query", "q", message)


def test_empty_query_lists_everything_newest_first(client):
    found = search(client, per_page=100)
    assert found["total"] == 13
    assert found["query"]["sort"] == "newest"
    assert found["hits"][0]["id"] == "syn-start-2021"
    assert [h["id"] for h in found["hits"][-2:]] == ["syn-undated-1", "syn-undated-2"]


# Dates


@pytest.mark.parametrize("params, expected", [
    ({"from": "2021"}, {"syn-start-2021"}),
    ({"to": "2020"}, "all dated but 2021"),
    ({"from": "2020-12-31", "to": "2020-12-31"}, {"syn-end-2020"}),
    ({"from": "Dec 2020", "to": "Dec 2020"}, {"syn-end-2020", "sample-dec-29", "sample-dec-24"}),
    ({"from": "29 December 2020", "to": "2020-12-29"}, {"sample-dec-29"}),
    ({"from": "2020-12-29T13:24", "to": "2020-12-29T13:24"}, {"sample-dec-29"}),
    ({"from": "2020-12-29T13:25"}, {"syn-end-2020", "syn-start-2021"}),
    ({"from": "1999", "to": "2000"}, set()),
])
def test_date_filters_at_the_precision_given(client, params, expected):
    found = set(ids(client, **params))
    in_december = search(client, per_page=100, **{"from": "2020-12", "to": "2020-12"})["hits"]
    december = {h["id"]: h["date"] for h in in_december}
    names = {"sample-dec-29": next(k for k, v in december.items() if v.startswith("2020-12-29")),
             "sample-dec-24": next(k for k, v in december.items() if v.startswith("2020-12-24"))}
    if expected == "all dated but 2021":
        everything = {h["id"] for h in search(client, per_page=100)["hits"]}
        expected = everything - {"syn-start-2021", "syn-undated-1", "syn-undated-2"}
    else:
        expected = {names.get(e, e) for e in expected}
    assert found == expected


def test_empty_date_window_has_zero_total_and_no_hits(client):
    found = search(client, q="pamphlet", **{"from": "1999", "to": "1999"})
    assert (found["total"], found["hits"], found["facets"]) == (0, [], {"author": [], "year": []})


@pytest.mark.parametrize("params, code, param, message", [
    ({"from": "2021-13-45"}, "bad_date", "from", "'from': invalid date '2021-13-45': month must be in 1..12"),
    ({"to": "someday"}, "bad_date", "to", "'to': invalid date 'someday': not a date dateutil understands"),
    ({"from": "2021", "to": "2020"}, "bad_date_range", "from", "'from' (2021) is after 'to' (2020)"),
    ({"sort": "random"}, "bad_sort", "sort", "'sort' must be one of relevance, newest, oldest, got 'random'"),
    ({"page": "0"}, "bad_page", "page", "'page' must be between 1 and 1000, got 0"),
    ({"page": "x"}, "bad_page", "page", "'page' must be a whole number, got 'x'"),
    ({"per_page": "101"}, "bad_page", "per_page", "'per_page' must be between 1 and 100, got 101"),
])
def test_bad_parameters_are_400_naming_the_parameter(client, params, code, param, message):
    assert_error(client.get("/api/search?" + urlencode(params)), 400, code, param, message)


@pytest.mark.parametrize("param, value", [
    ("to", "9999"), ("to", "9999-12"), ("to", "9999-12-31"), ("to", "9999-12-31T23:59"),
    ("from", "9999"), ("from", "9999-12-31"),
])
@pytest.mark.parametrize("path", ["/api/search", "/api/export", "/api/export?format=csv"])
def test_years_past_9998_are_400_on_the_api(client, path, param, value):
    """Year 9999 was a 500: the end of its period is past the last datetime Python has."""
    sep = "&" if "?" in path else "?"
    assert_error(client.get(path + sep + urlencode({param: value})), 400, "bad_date", param,
                 f"'{param}': invalid date '{value}': the latest year allowed is 9998")


@pytest.mark.parametrize("params, status, total", [
    ({"from": "0001", "to": "9998"}, 200, 11),
    ({"to": "9998-12-31T23:59:59.999999"}, 200, 11),
    ({"from": "0001", "to": "0001"}, 200, 0),
    ({"to": "0000"}, 400, None),  # dateutil's "day is out of range for month", as before
])
def test_the_first_and_last_years_allowed(client, params, status, total):
    response = client.get("/api/search?" + urlencode(params))
    assert response.status_code == status
    if total is None:
        assert_error(response, 400, "bad_date", "to", "'to': invalid date '0000': day is out of range for month")
    else:
        assert response.get_json()["total"] == total


def test_posts_dated_before_year_1000_are_searched_faceted_and_drawn(searchsvc, write, client_for):
    """A post from 0999 made every search a 500: its month key was "999-06" (strftime's %Y is
    not padded), which the year facet could not read."""
    posts = [{"id": "old-999", "title": "Synthetic chronicle", "date": "0999-06-15", "author": "Ada Fictional",
              "body": "A plainly synthetic chronicle."},
             {"id": "old-5", "title": "Synthetic tablet", "date": "0005-01-02", "body": "A synthetic chronicle too."}]
    result = searchsvc("ingest", write("old.jsonl", "".join(json.dumps(p) + "\n" for p in posts)))
    assert result.exit_code == 0, result.output
    client = client_for(searchsvc.index)
    found = search(client, q="chronicle", sort="oldest")
    assert [h["id"] for h in found["hits"]] == ["old-5", "old-999"]
    assert found["facets"]["year"] == [{"value": 5, "count": 1}, {"value": 999, "count": 1}]
    assert search(client, **{"from": "0999-06", "to": "0999-06"})["total"] == 1
    page = client.get("/?q=chronicle")
    assert page.status_code == 200 and "from=0999" in page.get_data(as_text=True)
    assert client.get("/feed.atom?q=chronicle").status_code == 200


# Order, pages, facets


def test_sort_orders_put_undated_last(client):
    newest = ids(client, q="pamphlet OR marathon OR diary", sort="newest")
    oldest = ids(client, q="pamphlet OR marathon OR diary", sort="oldest")
    assert newest == ["syn-hostile", "syn-urumqi", "syn-run", "syn-undated-1", "syn-undated-2"]
    assert oldest == ["syn-run", "syn-urumqi", "syn-hostile", "syn-undated-1", "syn-undated-2"]


def test_relevance_puts_title_matches_first_and_has_scores(client):
    found = search(client, q="pamphlet")
    assert found["query"]["sort"] == "relevance"
    assert {h["id"] for h in found["hits"][:2]} == {"syn-undated-1", "syn-undated-2"}
    scores = [h["score"] for h in found["hits"]]
    assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)


def test_pages_are_disjoint_and_together_give_the_total(client):
    first = search(client, per_page=5)
    assert (first["total"], first["pages"]) == (13, 3)
    pages = [search(client, per_page=5, page=n)["hits"] for n in (1, 2, 3)]
    seen = [h["id"] for page in pages for h in page]
    assert [len(p) for p in pages] == [5, 5, 3]
    assert len(seen) == len(set(seen)) == 13
    assert search(client, per_page=5, page=4)["hits"] == []


def test_facets_count_all_matches_and_sum_to_the_total(client):
    found = search(client, per_page=1)
    assert sum(f["count"] for f in found["facets"]["author"]) == found["total"] == 13
    assert sum(f["count"] for f in found["facets"]["year"]) == 13
    assert found["facets"]["year"] == [{"value": 2019, "count": 5}, {"value": 2020, "count": 5},
                                       {"value": 2021, "count": 1}, {"value": None, "count": 2}]
    assert found["facets"]["author"][0] == {"value": "Kanat", "count": 4}
    assert {"value": None, "count": 2} in found["facets"]["author"]


def test_author_filter_is_exact_and_repeatable(client):
    assert set(ids(client, author="Ada Fictional")) == {"syn-run", "syn-urumqi"}
    assert set(ids(client, author=["Ada Fictional", "Cem Imaginary"])) == {
        "syn-run", "syn-urumqi", "syn-end-2020", "syn-start-2021"}
    assert ids(client, author="ada fictional") == []


# Highlighting and escaping


def test_snippet_highlights_stemmed_matches(client):
    [hit] = search(client, q="running river")["hits"]
    assert hit["snippet"] == "We <mark>run</mark> every morning along the <mark>river</mark>."
    assert hit["matched_terms"] == ["river", "run"]
    assert hit["title_highlighted"] == "Marathon notes"


def test_title_only_match_still_gets_the_opening_as_snippet(client):
    [hit] = search(client, q="title:marathon")["hits"]
    assert hit["title_highlighted"] == "<mark>Marathon</mark> notes"
    assert hit["snippet"] == "We run every morning along the river."


def test_hostile_text_is_escaped_everywhere(client):
    [hit] = search(client, q="ink")["hits"]
    assert hit["title_highlighted"] == "&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt; &amp; friends"
    assert hit["snippet"] == ("Hostile body &lt;img src=x onerror=alert(1)&gt; about pamphlet "
                              "<mark>ink</mark> &amp; paper.")
    assert hit["title"] == "<script>alert('title')</script> & friends"  # raw text stays raw in JSON
    [hit] = search(client, q="script")["hits"]
    assert hit["title_highlighted"].startswith("&lt;<mark>script</mark>&gt;")


def test_long_bodies_are_highlighted_past_32k(tmp_path, client_for):
    from conftest import Searchsvc

    body = "filler words here. " * 3000 + "The needle sentence."
    posts = tmp_path / "long.jsonl"
    posts.write_text(json.dumps({"id": "long", "title": "Long", "body": body}) + "\n", encoding="utf-8")
    Searchsvc(tmp_path / "index")("ingest", posts)
    client = client_for(tmp_path / "index")
    [hit] = client.get("/api/search?q=needle").get_json()["hits"]
    assert hit["snippet"].endswith("The <mark>needle</mark> sentence.")
    assert len(body) > 32_000


def test_did_you_mean(client):
    found = search(client, q="marathn")
    assert found["total"] == 0
    assert found["did_you_mean"] == {"q": "marathon", "total": 1}
    assert search(client, q="marathon")["did_you_mean"] is None


def test_synthetic_fixture_is_what_the_tests_assume():
    assert len(SYNTHETIC) == 9


def test_a_commit_is_seen_by_the_next_search_despite_the_result_cache(tmp_path, client_for):
    from conftest import Searchsvc

    searchsvc = Searchsvc(tmp_path / "index")
    first = tmp_path / "a.jsonl"
    first.write_text(json.dumps({"id": "z1", "title": "Synthetic zebra one", "body": "Zebra."}) + "\n")
    searchsvc("ingest", first)
    client = client_for(tmp_path / "index")
    assert search(client, q="zebra")["total"] == 1
    assert search(client, q="zebra")["total"] == 1  # answered from the cache
    second = tmp_path / "b.jsonl"
    second.write_text(json.dumps({"id": "z2", "title": "Synthetic zebra two", "body": "Zebra."}) + "\n")
    searchsvc("ingest", second)
    assert search(client, q="zebra")["total"] == 2
    searchsvc("delete", "z1")
    after = search(client, q="zebra")
    assert (after["total"], [h["id"] for h in after["hits"]]) == (1, ["z2"])


def test_an_update_replaces_the_old_version_for_a_running_server(tmp_path, client_for):
    from conftest import Searchsvc

    searchsvc = Searchsvc(tmp_path / "index")
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"id": "u1", "title": "Synthetic okapi draft", "body": "Okapi."}) + "\n")
    searchsvc("ingest", path)
    client = client_for(tmp_path / "index")
    assert [h["title"] for h in search(client, q="okapi")["hits"]] == ["Synthetic okapi draft"]
    path.write_text(json.dumps({"id": "u1", "title": "Synthetic okapi final", "body": "Okapi."}) + "\n")
    assert searchsvc("ingest", path).stdout.startswith("Read 1 file: 0 new, 1 updated")
    found = search(client, q="okapi")
    assert (found["total"], [h["title"] for h in found["hits"]]) == (1, ["Synthetic okapi final"])


def test_facets_and_exports_are_right_across_segments_without_some_fields(tmp_path, client_for):
    from conftest import Searchsvc

    searchsvc = Searchsvc(tmp_path / "index")
    plain = tmp_path / "plain.jsonl"  # a segment with no dates and no authors at all
    plain.write_text(json.dumps({"id": "n1", "title": "Synthetic quokka note", "body": "Quokka."}) + "\n")
    dated = tmp_path / "dated.jsonl"
    dated.write_text(json.dumps({"id": "d1", "title": "Synthetic quokka report", "body": "Quokka.",
                                 "date": "2019-03-01", "author": "Quinn Fictional"}) + "\n")
    searchsvc("ingest", plain)
    searchsvc("ingest", dated)
    found = search(client_for(tmp_path / "index"), q="quokka")
    assert found["facets"] == {"author": [{"value": "Quinn Fictional", "count": 1}, {"value": None, "count": 1}],
                               "year": [{"value": 2019, "count": 1}, {"value": None, "count": 1}]}
    assert [p["id"] for p in searchsvc.export()] == ["d1", "n1"]  # dated first, undated last
    info = searchsvc.info()
    assert (info["undated"], info["authors"]) == (1, {"Quinn Fictional": 1})


@pytest.mark.parametrize("name", ["ug_uyghur_corpus_articles.jsonl", "tr_financial_news.jsonl",
                                  "zh_xinwenlianbo_sample.jsonl"])
def test_fast_highlighting_terms_are_exactly_the_analysers(name):
    from conftest import SAMPLE_POSTS

    from searchsvc.index.analysis import TermFunction, term_spans, text_analyzer

    analyzer = text_analyzer()
    term_of = TermFunction(analyzer)
    with open(CORPORA / "multilingual" / name, encoding="utf-8") as f:
        texts = [json.loads(line)["body"] for line in f][:20]
    texts += [p.read_text(encoding="utf-8") for p in (SAMPLE_POSTS / "posts").iterdir()]
    texts += ["Ürümqi İSTANBUL Işık Uighurs RUNNING condemned Turkistan Urumchi ＡＢＣ 新闻联播 x 中 China’s"]
    for text in texts:
        slow = [(t.startchar, t.endchar, t.text) for t in analyzer(text, chars=True, mode="index")]
        assert list(term_spans(text, term_of)) == slow


def test_a_prefix_of_the_typed_word_finds_words_whose_stem_is_shorter(client):
    # "morning" is indexed as the stem "morn", which "mornin" does not begin.
    body = client.get("/api/search?q=mornin*").get_json()
    assert [h["id"] for h in body["hits"]] == ["syn-run"]
    assert "<mark>morning</mark>" in body["hits"][0]["snippet"]
    assert body["query"]["understood"] == "mornin*"


@pytest.mark.parametrize("q, understood", [
    ("REQUIRE run", "requir AND run"), ("run ANDMAYBE river", "run AND andmayb AND river"),
])
def test_whooshs_undocumented_operators_are_plain_words(client, q, understood):
    """`REQUIRE war` silently searched only `war`: REQUIRE and ANDMAYBE are not our language."""
    assert search(client, q=q)["query"]["understood"] == understood


def test_a_bare_star_is_every_post(client):
    everything = search(client, per_page=1)["total"]
    assert [search(client, q=q)["total"] for q in ("*", "run OR *")] == [everything, everything]
    assert search(client, q="run OR *")["query"]["understood"] == "*"  # Whoosh simplifies it


# Snowball's English stems as PyStemmer gives them: words Whoosh's port of an older Snowball
# stemmed alike ("internment" and "international" were both "intern") are apart.
STEM_POSTS = [
    {"id": "stem-internment", "title": "Internment camps", "body": "A report on internment."},
    {"id": "stem-international", "title": "An international meeting", "body": "Internal notes, international guests."},
    {"id": "stem-organ", "title": "Organ donation", "body": "Organs given by donors."},
    {"id": "stem-organization", "title": "A new organization", "body": "Organizations and organizers met."},
    {"id": "stem-universities", "title": "Universities", "body": "Two universities and a university library."},
    {"id": "stem-universal", "title": "Universal rights", "body": "Rights that are universal."},
    {"id": "stem-added", "title": "Notes", "body": "Later we added a line, then add another."},
]


@pytest.fixture(scope="module")
def stem_client(tmp_path_factory, client_for):
    root = tmp_path_factory.mktemp("stems")
    posts = root / "posts.jsonl"
    posts.write_text("".join(json.dumps({**p, "date": "2020-01-01", "author": "Ada Fictional"}) + "\n"
                             for p in STEM_POSTS), encoding="utf-8")
    result = Searchsvc(root / "index")("ingest", posts)
    assert result.exit_code == 0, result.output
    return client_for(root / "index")


@pytest.mark.parametrize("query, expected", [
    ("internment", ["stem-internment"]), ("international", ["stem-international"]),
    ("internal", ["stem-international"]), ("organ", ["stem-organ"]), ("organs", ["stem-organ"]),
    ("organization", ["stem-organization"]), ("organizing", ["stem-organization"]),
    ("university", ["stem-universities"]), ("universal", ["stem-universal"]), ("adding", ["stem-added"]),
])
def test_stems_keep_apart_words_that_only_look_alike(stem_client, query, expected):
    assert ids(stem_client, q=query) == expected


def test_the_stemmer_gives_the_same_stems_from_many_threads():
    # PyStemmer's stemmers keep state between calls; gunicorn's threads analyse queries side by side.
    words = sorted({w for p in STEM_POSTS for w in re.findall(r"\w+", p["title"] + " " + p["body"].lower())}) * 200
    stemmer = AsciiStemFilter(lang="en", cachesize=0)._stem
    expected = [stemmer(w) for w in words]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: [stemmer(w) for w in words], range(8)))
    assert all(r == expected for r in results)
    assert stemmer("internment") == "internment" and stemmer("international") == "internat"
