"""Turkish recall and precision on financial news, and what an Uyghur word matches.

    python benchmarks/turkish.py                 # 200 Turkish posts, 51 lemmas; the Uyghur corpus
    python benchmarks/turkish.py --json
    python benchmarks/turkish.py --smoke         # 10 lemmas, no Uyghur: checks it runs

Turkish (`../shared/corpora/multilingual/tr_financial_news.jsonl`, 200 posts, `lang: tr`): each
of 51 common lemmas of financial news (`LEMMAS`) is searched as typed ("şirket") and typed
without Turkish letters ("sirket"), through `searchsvc.search.run.iter_matches` (the code path
of the API and exports) on an index our own ingest builds. Run it with the code before and
after a change of analysis (`PYTHONPATH=/path/to/other/checkout`): it imports nothing else of
searchsvc. Its table also compares stemming rules on the same posts without an index
(`--rules`), each rule applied to every word; a post matches a lemma when one of its words
has the lemma's term.

Ground truth, independent of any stemmer: a post is relevant to a lemma when it holds a word
(lowercased the Turkish way) that is the lemma, or the lemma (its last consonant possibly
softened, p/ç/t/k -> b/c/d/ğ: "talep" -> "talebi") followed by a chain of Turkish nominal
inflections in their order: plural -lAr, a possessive (-(I)m, -(I)n, -(I)mIz, -(I)nIz, -(s)I),
a case (-(y)I, -(y)A, -(n)In, -DA, -DAn, -(y)lA, -cA, with the pronominal n after a
possessive), -ki, then a copula (-DIr, -(y)DI, -(y)mIş, -(y)sA, -(y)Iz, -(y)Im) (`SUFFIXES`).
Derivations (-lIk, -lI, -sIz, -CI: "dolarlık", "yatırımcı") are other words. Vowel harmony is
not checked; the words this rule accepted were read by hand, and the two it got wrong are
listed in `NOT_INFLECTIONS` ("konuda" is konu+da, not konut; "fiyatlamış" is a verb).

Uyghur (`ug_uyghur_corpus_articles.jsonl`): how many posts hold the word ئۇيغۇر ("Uyghur")
itself, how many only a suffixed form (ئۇيغۇرلار, ئۇيغۇرنىڭ, ...), and what `ئۇيغۇر` and
`ئۇيغۇر*` find through the search.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import unicodedata
from collections import Counter
from pathlib import Path

import Stemmer

from searchsvc.index.store import IndexStore
from searchsvc.ingest.batch import IngestReport, read_batch, write_batch
from searchsvc.search.engine import Engine
from searchsvc.search.request import SearchRequest
from searchsvc.search.run import iter_matches

CORPORA = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora" / "multilingual"
TURKISH = CORPORA / "tr_financial_news.jsonl"
UYGHUR = CORPORA / "ug_uyghur_corpus_articles.jsonl"

LEMMAS = (
    "borsa dolar euro faiz enflasyon piyasa banka şirket yatırım yatırımcı hisse fiyat petrol ekonomi "
    "büyüme ihracat ithalat kredi bütçe vergi endeks işlem satış talep üretim sektör rekor gelir zarar "
    "artış düşüş oran tahvil karar hedef fon konut sanayi tüketici istihdam ücret varlık değer para "
    "bilanço hafta maliyet proje ticaret kazanç rakam"
).split()
SMOKE_LEMMAS = LEMMAS[:10]

_V4 = "[ıiuü]"
_V2 = "[ae]"
SUFFIXES = re.compile(
    f"(?:l{_V2}r)?"
    f"(?:{_V4}?m{_V4}z|{_V4}?n{_V4}z|{_V4}?m|{_V4}?n|s?{_V4})?"
    f"(?:n?(?:y?{_V4}|y?{_V2}|n?{_V4}n|[dt]{_V2}n?|y?l{_V2}|c{_V2}))?"
    "(?:ki)?"
    f"(?:[dt]{_V4}r|y?d{_V4}|y?m{_V4}ş|y?s{_V2}|y?{_V4}z|y?{_V4}m)?"
)
SOFTENED = {"p": "b", "ç": "c", "t": "d", "k": "ğ"}
NOT_INFLECTIONS = {"konuda", "fiyatlamış"}
WORD = re.compile(r"\w+")
UYGHUR_WORD = "ئۇيغۇر"


def turkish_lower(word: str) -> str:
    return word.replace("I", "ı").replace("İ", "i").lower()


def is_inflection(word: str, lemma: str) -> bool:
    """`word` (lowercased) is `lemma` or one of its inflected forms, by the rule above."""
    if word in NOT_INFLECTIONS:
        return False
    for base in {lemma, lemma[:-1] + SOFTENED.get(lemma[-1], lemma[-1])}:
        if word.startswith(base) and SUFFIXES.fullmatch(word[len(base):]):
            return True
    return False


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def words_of(record: dict) -> set[str]:
    return {turkish_lower(w) for w in WORD.findall(record["title"] + "\n" + record["body"])}


def ground_truth(posts: list[set[str]], lemmas: list[str]) -> dict[str, set[int]]:
    return {lemma: {n for n, words in enumerate(posts) if any(is_inflection(w, lemma) for w in words)}
            for lemma in lemmas}


# The stemming rules compared (`--rules`), each a word -> term function; searchsvc's own folding
# is repeated here so the comparison needs no particular version of it.
_COMBINING = re.compile("[\u0300-\u036f]")
_snowball_tr = Stemmer.Stemmer("turkish").stemWord
_snowball_en = Stemmer.Stemmer("english").stemWord


def fold(text: str) -> str:
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFKD", text.casefold().replace("ı", "i"))
    return unicodedata.normalize("NFC", _COMBINING.sub("", text))


def _fixpoint(word: str, shortest: int = 0, possessive_s: bool = False) -> str:
    original, seen = word, {word}
    while True:
        stem = _snowball_tr(word)
        if len(stem) < shortest:
            return word
        if (possessive_s and len(stem) > shortest and stem[-1] == "s" and stem[-2] in "aeıioöuü"
                and original.startswith(stem) and original[len(stem):len(stem) + 1] in ("ı", "i", "u", "ü")):
            stem = stem[:-1]
        if stem in seen:
            return stem
        seen.add(stem)
        word = stem


RULES = {
    "no Turkish stems (folding, English stems)": lambda w: (lambda t: _snowball_en(t) if t.isascii() else t)(fold(w)),
    "Snowball once": lambda w: fold(_snowball_tr(turkish_lower(w))),
    "Snowball to a fixpoint": lambda w: fold(_fixpoint(turkish_lower(w))),
    "fixpoint, stems >= 3 letters": lambda w: fold(_fixpoint(turkish_lower(w), 3)),
    "fixpoint, >= 4 letters": lambda w: fold(_fixpoint(turkish_lower(w), 4)),
    "fixpoint, >= 3 letters, possessive s (searchsvc)": lambda w: fold(_fixpoint(turkish_lower(w), 3, True)),
    "the same on folded words (no Turkish letters)": lambda w: fold(_fixpoint(fold(turkish_lower(w)), 3, True)),
}


def score(found: dict[str, set[int]], truth: dict[str, set[int]]) -> dict[str, float]:
    """Macro-averaged recall and precision (a lemma matching nothing has precision 1)."""
    recalls = [len(found[lemma] & truth[lemma]) / len(truth[lemma]) for lemma in truth]
    precisions = [len(found[lemma] & truth[lemma]) / len(found[lemma]) if found[lemma] else 1.0 for lemma in truth]
    return {"recall": round(sum(recalls) / len(recalls), 3), "precision": round(sum(precisions) / len(precisions), 3)}


def compare_rules(posts: list[set[str]], truth: dict[str, set[int]]) -> dict[str, dict]:
    out = {}
    vocabulary = sorted(set().union(*posts))
    for name, rule in RULES.items():
        terms = [{rule(w) for w in words} for words in posts]
        row = {}
        for typed, as_typed in (("as typed", lambda lemma: lemma), ("without Turkish letters", fold)):
            found = {lemma: {n for n, ts in enumerate(terms) if rule(as_typed(lemma)) in ts} for lemma in truth}
            row[typed] = score(found, truth)
        # Words of the corpus given a lemma's term that are not its forms: what the rule conflates.
        wrong = {lemma: sorted(w for w in vocabulary if rule(w) == rule(lemma) and not is_inflection(w, lemma))
                 for lemma in truth}
        row["conflated"] = {lemma: words for lemma, words in wrong.items() if words}
        out[name] = row
    return out


def build(records: list[dict], folder: Path) -> Engine:
    source = folder / "posts.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    report = IngestReport()
    write_batch(IndexStore(folder / "index"), read_batch([str(source)], report), report, rebuild=False, wait=0)
    if report.invalid:
        sys.exit(f"{report.invalid} invalid records: {report.problems[:3]}")
    return Engine(IndexStore(folder / "index"))


def matches(engine: Engine, q: str) -> set[str]:
    _, _, found = iter_matches(engine, SearchRequest(q=q))
    return {record.id for record, _ in found}


def measure_search(records: list[dict], truth: dict[str, set[int]]) -> dict[str, dict]:
    ids = [r["id"] for r in records]
    with tempfile.TemporaryDirectory() as tmp:
        engine = build(records, Path(tmp))
        out = {}
        for typed, as_typed in (("as typed", lambda lemma: lemma), ("without Turkish letters", fold)):
            found = {}
            for lemma in truth:
                got = matches(engine, as_typed(lemma))
                found[lemma] = {n for n, post_id in enumerate(ids) if post_id in got}
            out[typed] = {**score(found, truth), "per_lemma": {
                lemma: {"relevant": len(truth[lemma]), "found": len(found[lemma]),
                        "right": len(found[lemma] & truth[lemma])} for lemma in truth}}
        engine.close()
    return out


def measure_uyghur(records: list[dict]) -> dict:
    posts = [set(WORD.findall(r["title"] + "\n" + r["body"])) for r in records]
    exact = sum(UYGHUR_WORD in words for words in posts)
    prefixed = sum(any(w.startswith(UYGHUR_WORD) for w in words) for words in posts)
    forms: Counter[str] = Counter()
    for r in records:
        forms.update(w for w in WORD.findall(r["title"] + "\n" + r["body"]) if w.startswith(UYGHUR_WORD))
    with tempfile.TemporaryDirectory() as tmp:
        engine = build(records, Path(tmp))
        found = {q: len(matches(engine, q)) for q in (UYGHUR_WORD, UYGHUR_WORD + "*")}
        engine.close()
    return {"posts": len(records), "posts_with_the_word": exact, "posts_with_a_word_starting_with_it": prefixed,
            "distinct_forms": len(forms), "commonest_forms": forms.most_common(8),
            "search": found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="10 lemmas, no Uyghur: checks it runs")
    parser.add_argument("--rules", action="store_true", help="also compare stemming rules without an index")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    args = parser.parse_args()

    records = load(TURKISH)
    lemmas = SMOKE_LEMMAS if args.smoke else LEMMAS
    posts = [words_of(r) for r in records]
    truth = ground_truth(posts, lemmas)
    summary: dict = {"posts": len(records), "lemmas": len(lemmas),
                     "relevant_per_lemma": round(sum(map(len, truth.values())) / len(truth), 1),
                     "search": measure_search(records, truth)}
    if args.rules:
        summary["rules"] = compare_rules(posts, truth)
    if not args.smoke:
        summary["uyghur"] = measure_uyghur(load(UYGHUR))
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    print(f"Turkish: {summary['posts']} posts, {summary['lemmas']} lemmas, "
          f"{summary['relevant_per_lemma']} relevant posts a lemma")
    for typed, row in summary["search"].items():
        print(f"  search, lemma {typed:24s} recall {row['recall']:.3f}  precision {row['precision']:.3f}")
    for name, row in summary.get("rules", {}).items():
        typed, plain = row["as typed"], row["without Turkish letters"]
        print(f"  rule {name:50s} recall {typed['recall']:.3f} precision {typed['precision']:.3f}"
              f" | typed plain {plain['recall']:.3f} {plain['precision']:.3f}"
              f" | {sum(map(len, row['conflated'].values()))} words conflated")
    if "uyghur" in summary:
        u = summary["uyghur"]
        print(f"Uyghur: {u['posts']} posts; {u['posts_with_the_word']} hold {UYGHUR_WORD} itself, "
              f"{u['posts_with_a_word_starting_with_it']} a word starting with it ({u['distinct_forms']} forms); "
              f"the search finds {u['search'][UYGHUR_WORD]} for {UYGHUR_WORD}, "
              f"{u['search'][UYGHUR_WORD + '*']} for {UYGHUR_WORD}*")


if __name__ == "__main__":
    main()
