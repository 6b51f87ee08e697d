"""Did you mean: the share of misspellings corrected at rank 1 and the time per suggestion,
ours against the first version (Whoosh's corrector), both measured in the same run.

    python benchmarks/suggest.py --index /tmp/ixp    # reuse a presidential index (built there if missing)
    python benchmarks/suggest.py                     # builds one in a temporary folder (~30 s)
    python benchmarks/suggest.py --smoke             # 300 documents, misspellings made from them: checks it runs
    python benchmarks/suggest.py --json
    python benchmarks/suggest.py --make-misspellings # rewrites benchmarks/misspellings.tsv from the corpus

`misspellings.tsv` (misspelling, the word meant, how it was made) is made by this script from
the presidential corpus with a fixed seed: frequent words (at least 5 letters, 50 occurrences)
with one deletion, transposition of neighbours or substitution by a neighbouring key, never of
the first letter (people rarely mistype it), kept only when the result is no word of the corpus
or one it holds at most twice (its own typos, like "goverment"); then the cases of the issue:
uyghur (a variant spelling: left alone), uigur, slavry, "civl rights", goverment.

Each case is respelled by both versions, one after the other: "corrected" means the respelled
query is exactly the one meant. Times are per suggestion: respelling the query's words, and
the whole step, which also counts the posts the respelled query finds (as search.py does).
Ours runs within its time budget (did_you_mean.SUGGEST_SECONDS), as in search.py.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from _stats import percentile

from searchsvc.index.analysis import fold
from searchsvc.index.store import IndexStore
from searchsvc.ingest.batch import IngestReport, read_batch, write_batch
from searchsvc.search.deadline import Deadline
from searchsvc.search.did_you_mean import SUGGEST_SECONDS
from searchsvc.search.engine import Engine
from searchsvc.search.query import LEXEME, OPERATORS, parse_query, respell_words
from searchsvc.search.spelling import Respeller, spelling_index

HERE = Path(__file__).resolve().parent
PRESIDENTIAL = HERE.parent.parent / "shared" / "corpora" / "us_presidential_documents.jsonl.gz"
MISSPELLINGS = HERE / "misspellings.tsv"
SEED = 7
ISSUE_CASES = [("uyghur", "uyghur"), ("uigur", "uyghur"), ("slavry", "slavery"),
               ("civl rights", "civil rights"), ("goverment", "government")]
# Neighbouring keys on a QWERTY keyboard: the substitutions people make.
KEYBOARD = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]
_WORD = re.compile(r"[^\W\d_]+")


def load(corpus: Path, limit: int | None) -> list[dict]:
    with gzip.open(corpus, "rt", encoding="utf-8") as f:
        return [json.loads(line) for n, line in enumerate(f) if limit is None or n < limit]


def neighbours(letter: str) -> str:
    for r, row in enumerate(KEYBOARD):
        c = row.find(letter)
        if c >= 0:
            near = [row[c - 1] if c else "", row[c + 1] if c + 1 < len(row) else ""]
            for other in (KEYBOARD[r - 1] if r else "", KEYBOARD[r + 1] if r + 1 < len(KEYBOARD) else ""):
                near += [other[i] for i in (c - 1, c, c + 1) if 0 <= i < len(other)]
            return "".join(near)
    return ""


def make_misspellings(records: list[dict], count: int, seed: int = SEED,
                      min_count: int = 50) -> list[tuple[str, str, str]]:
    """(misspelling, word meant, how) for `count` frequent words of `records`, then the issue's cases."""
    words: Counter[str] = Counter()
    for r in records:
        words.update(fold(w) for w in _WORD.findall(r["title"] + "\n" + r["body"]))
    frequent = sorted(w for w, n in words.items() if n >= min_count and len(w) >= 5 and w.isascii())
    rng = random.Random(seed)
    rng.shuffle(frequent)
    out: list[tuple[str, str, str]] = []
    seen = set()
    for word in frequent:
        if len(out) >= count:
            break
        how = rng.choice(["deletion", "transposition", "substitution"])
        i = rng.randrange(1, len(word) - (how == "transposition"))
        if how == "deletion":
            wrong = word[:i] + word[i + 1:]
        elif how == "transposition":
            wrong = word[:i] + word[i + 1] + word[i] + word[i + 2:]
        else:
            wrong = word[:i] + rng.choice(neighbours(word[i]) or "e") + word[i + 1:]
        if wrong == word or wrong in seen or words[wrong] > 2:
            continue  # a real word of the corpus is no misspelling
        seen.add(wrong)
        out.append((wrong, word, how))
    return out + [(wrong, meant, "issue") for wrong, meant in ISSUE_CASES]


def read_misspellings(path: Path) -> list[tuple[str, str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return [(row[0], row[1], row[2]) for row in csv.reader(f, delimiter="\t") if row and row[0] != "misspelling"]


def write_misspellings(path: Path, cases: list[tuple[str, str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["misspelling", "meant", "how"])
        writer.writerows(cases)


def old_respell(searcher, q: str) -> str:
    """The first version's respelling (search._suggest before suggest.py): Whoosh's corrector
    on the `spell` field for every letters-only word of 3 or more the index lacks."""
    corrector = searcher.corrector("spell")
    pieces, position = [], 0
    for match in LEXEME.finditer(q):
        word = match.group()
        pieces.append(q[position:match.start()])
        position = match.end()
        replacement = word
        if word not in OPERATORS and re.fullmatch(r"[^\W\d_]{3,}", word):
            folded = fold(word)
            if searcher.doc_frequency("spell", folded) == 0:
                found = corrector.suggest(folded, limit=1, maxdist=2)
                if found:
                    replacement = found[0]
        pieces.append(replacement)
    pieces.append(q[position:])
    return "".join(pieces)


def new_respell(searcher, q: str) -> str:
    return respell_words(q, Respeller(spelling_index(searcher.reader()), Deadline(SUGGEST_SECONDS)))


def measure(engine: Engine, respell: Callable, cases: list[tuple[str, str, str]]) -> dict:
    searcher = engine.searcher()
    respell_ms, step_ms, results = [], [], []
    for wrong, meant, how in cases:
        started = time.perf_counter()
        corrected = respell(searcher, wrong)
        respelled = time.perf_counter()
        if corrected != wrong:  # the step then counts what the respelled query finds
            sum(1 for _ in searcher.docs_for_query(parse_query(corrected)))
        done = time.perf_counter()
        respell_ms.append((respelled - started) * 1000)
        step_ms.append((done - started) * 1000)
        results.append({"misspelling": wrong, "meant": meant, "how": how, "respelled": corrected,
                        "corrected": corrected == meant})
    return {"cases": len(cases),
            "corrected": sum(r["corrected"] for r in results),
            "share_corrected": round(sum(r["corrected"] for r in results) / len(results), 3),
            "respell_p50_ms": round(statistics.median(respell_ms), 2),
            "respell_p95_ms": round(percentile(respell_ms, 95), 2),
            "step_p50_ms": round(statistics.median(step_ms), 2),
            "step_p95_ms": round(percentile(step_ms, 95), 2),
            "issue": {r["misspelling"]: r["respelled"] for r in results if r["how"] == "issue"},
            "wrong": [f"{r['misspelling']} -> {r['respelled']} (meant {r['meant']})"
                      for r in results if not r["corrected"]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=PRESIDENTIAL)
    parser.add_argument("--index", type=Path, help="a searchsvc index of the same corpus (built there if missing)")
    parser.add_argument("--cases", type=Path, default=MISSPELLINGS, help="the misspellings (TSV)")
    parser.add_argument("--baseline-limit", type=int, help="measure the first version on only this many cases "
                        "(the issue's and some spread over the file; it takes 1-2 s a case)")
    parser.add_argument("--smoke", action="store_true", help="300 documents, misspellings made from them")
    parser.add_argument("--make-misspellings", action="store_true", help=f"rewrite {MISSPELLINGS.name} and stop")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    if args.make_misspellings:
        cases = make_misspellings(load(args.corpus, None), 240)
        write_misspellings(args.cases, cases)
        print(f"{len(cases)} misspellings written to {args.cases}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        records = None
        if args.smoke:
            records = load(args.corpus, 300)
            cases = make_misspellings(records, 20, min_count=5)
        else:
            cases = read_misspellings(args.cases)
        index = args.index or Path(tmp) / "index"
        if not index.exists():
            source = Path(tmp) / "corpus.jsonl"
            records = records or load(args.corpus, None)
            source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
            report = IngestReport()
            write_batch(IndexStore(index), read_batch([str(source)], report), report, rebuild=False, wait=0)
        engine = Engine(IndexStore(index), result_cache_size=0)
        started = time.perf_counter()
        spelling_index(engine.searcher().reader())
        build_s = time.perf_counter() - started
        baseline_cases = cases
        if args.baseline_limit and args.baseline_limit < len(cases):
            # Spread over the made misspellings, and every case of the issue.
            made = [case for case in cases if case[2] != "issue"]
            step = len(made) / max(1, args.baseline_limit - len(ISSUE_CASES))
            baseline_cases = [made[int(n * step)] for n in range(args.baseline_limit - len(ISSUE_CASES))]
            baseline_cases += [case for case in cases if case[2] == "issue"]
        ours = measure(engine, new_respell, cases)
        ours_on_baseline = measure(engine, new_respell, baseline_cases) if baseline_cases is not cases else ours
        theirs = measure(engine, old_respell, baseline_cases)
        documents = engine.searcher().doc_count()
        engine.close()

    summary = {"documents": documents, "cases": len(cases), "index_build_s": round(build_s, 2),
               "ours": ours, "first_version": theirs}
    if baseline_cases is not cases:
        summary["ours_on_baseline_cases"] = ours_on_baseline
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    print(f"{documents} documents, {len(cases)} misspellings; spelling index built in {build_s:.2f} s")
    print(f"{'':<26}{'cases':>7}{'corrected':>11}{'respell p50':>13}{'p95':>9}{'step p50':>10}{'p95':>9}  (ms)")
    rows = [("ours", ours)]
    if baseline_cases is not cases:
        rows.append(("ours, baseline's cases", ours_on_baseline))
    rows.append(("first version", theirs))
    for name, row in rows:
        print(f"{name:<26}{row['cases']:>7}{row['share_corrected']:>11.1%}{row['respell_p50_ms']:>13}"
              f"{row['respell_p95_ms']:>9}{row['step_p50_ms']:>10}{row['step_p95_ms']:>9}")
    for wrong in ISSUE_CASES:
        print(f"  {wrong[0]!r}: ours {ours['issue'].get(wrong[0])!r}, first version {theirs['issue'].get(wrong[0])!r}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
