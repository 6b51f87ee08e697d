"""The corpus the search, serving and ingest benchmarks share: reading it, repeating it with new
ids (`--copies`), and the distinct queries made from its own words (imported by name, like
_stats.py; no searchsvc import, so a baseline server that imports this stays free of our code).
"""

from __future__ import annotations

import bisect
import gzip
import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

CORPORA = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora"
PRESIDENTIAL = CORPORA / "us_presidential_documents.jsonl.gz"

# The query classes, in the order of the tables: the eight of the performance issue, then OR and prefix.
CLASSES = ("rare word", "common word", "2-word AND", "3-word AND", "phrase", "word + date range",
           "date range, newest", "word, newest", "2-word OR", "prefix*")
SEED = 13


def load(corpus: Path, limit: int | None = None) -> list[dict]:
    """The first `limit` records of a JSON Lines file, gzipped or not."""
    opener = gzip.open if corpus.suffix == ".gz" else open
    records = []
    with opener(corpus, "rt", encoding="utf-8") as f:
        for line in f:
            if limit is not None and len(records) >= limit:
                break
            records.append(json.loads(line))
    return records


def copy_of(records: list[dict], k: int) -> list[dict]:
    """The k-th copy of the corpus for the scale runs: new ids, dates k days later."""
    if k == 0:
        return records
    out = []
    for r in records:
        r = dict(r, id=f"{r['id']}-copy{k}")
        if r.get("date"):
            shifted = datetime.fromisoformat(r["date"][:10]) + timedelta(days=k)
            r["date"] = shifted.date().isoformat() + r["date"][10:]
        out.append(r)
    return out


def copies(records: list[dict], n: int) -> Iterator[dict]:
    """Every record of the n copies, one copy in memory at a time."""
    for k in range(n):
        yield from copy_of(records, k)


def write_jsonl(records: Iterable[dict], path: Path) -> int:
    """Write records as JSON Lines; the number of bytes written."""
    with path.open("w", encoding="utf-8") as out:
        for r in records:
            out.write(json.dumps(r) + "\n")
    return path.stat().st_size


# Queries --------------------------------------------------------------------------------------

# Words nobody searches for alone; the three engines index them all (none drops stop words), so
# this only keeps the generated queries looking like searches.
STOP = frozenset("""
a about above after again against all also am an and any are as at be because been before being below between
both but by can could did do does doing down during each few for from further had has have having he her here
hers herself him himself his how i if in into is it its itself just may me might more most must my myself no
nor not now of off on once only or other our ours ourselves out over own same shall she should so some such
than that the their theirs them themselves then there these they this those through to too under until up upon
very was we were what when where which while who whom why will with within without would you your yours
""".split())
WORD = re.compile(r"[a-z]{3,}")
# Two words side by side with one space, nothing glued to either: the same adjacent pair under
# every engine's tokenizer.
PAIR = re.compile(r"(?<![\w'’.-])([a-z]{3,}) ([a-z]{3,})(?![\w'’-])")


def _text(record: dict) -> str:
    return f"{record.get('title') or ''}\n{record.get('body') or ''}".lower()


def queries(records: list[dict], per_class: int, seed: int = SEED) -> list[tuple[str, dict]]:
    """`per_class` distinct searches of each class in CLASSES (fewer where the corpus has too
    few words of a kind), as (class, API parameters), made deterministically from the records.

    Words are picked by document frequency (df) over all `records`, lower-case ASCII letters
    only, no stop words: rare 2 <= df <= max(3, 0.1% of the posts), common >= 10%, the others
    >= 1% (and < 10% for OR and prefixes). AND queries take their words from one post, so
    each finds at least that post; phrases are word pairs side by side in a post; date ranges
    are whole years (1 to 20 of them) starting at a year the posts have. No two returned
    searches have the same parameters.
    """
    rng = random.Random(seed)
    df: Counter[str] = Counter()
    years: set[int] = set()
    for r in records:
        df.update(set(WORD.findall(_text(r))))
        if str(r.get("date") or "")[:4].isdigit():
            years.add(int(str(r["date"])[:4]))
    for word in STOP:
        df.pop(word, None)
    n = len(records)
    vocabulary = sorted(df)
    rare = [w for w in vocabulary if 2 <= df[w] <= max(3, n // 1000)]
    common = [w for w in vocabulary if df[w] >= n * 0.10]
    frequent = [w for w in vocabulary if df[w] >= n * 0.01]  # mid and common
    mid = [w for w in frequent if df[w] < n * 0.10] or frequent
    year_list = sorted(years) or [2000]

    def words_of(record: dict, pool: set[str]) -> list[str]:
        return sorted({w for w in WORD.findall(_text(record)) if w in pool})

    def year_range() -> dict:
        start = rng.choice(year_list)
        end = min(year_list[-1], start + rng.randrange(20 if rng.random() < 0.5 else 5))
        return {"from": str(start), "to": str(end)}

    def anded(k: int) -> dict | None:
        words = words_of(rng.choice(records), frequent_set)
        return {"q": " ".join(rng.sample(words, k))} if len(words) >= k else None

    def phrase() -> dict | None:
        pairs = [m.groups() for m in PAIR.finditer(_text(rng.choice(records)))
                 if not STOP.intersection(m.groups()) and min(df[m[1]], df[m[2]]) >= 2]
        return {"q": '"{} {}"'.format(*rng.choice(pairs))} if pairs else None

    def prefix() -> dict | None:
        word = rng.choice(long_words)
        stem = word[:rng.choice((4, 5))]
        # At most 50 words of the corpus start with it (ours refuses over 500 index words).
        expansions = bisect.bisect_left(vocabulary, stem + "{") - bisect.bisect_left(vocabulary, stem)
        return {"q": stem + "*"} if 2 <= expansions <= 50 else None

    frequent_set = set(frequent)
    long_words = [w for w in mid if len(w) >= 6] or mid
    makers = {
        "rare word": lambda: {"q": rng.choice(rare)} if rare else None,
        "common word": lambda: {"q": rng.choice(common)} if common else None,
        "2-word AND": lambda: anded(2),
        "3-word AND": lambda: anded(3),
        "phrase": phrase,
        "word + date range": lambda: {"q": rng.choice(frequent), **year_range()},
        "date range, newest": year_range,
        "word, newest": lambda: {"q": rng.choice(frequent), "sort": "newest"},
        "2-word OR": lambda: {"q": " OR ".join(rng.sample(mid, 2))} if len(mid) >= 2 else None,
        "prefix*": prefix,
    }
    seen: set[tuple] = set()
    out: list[tuple[str, dict]] = []
    for cls in CLASSES:
        made, attempts = 0, 0
        while made < per_class and attempts < per_class * 50:
            attempts += 1
            params = makers[cls]()
            key = tuple(sorted(params.items())) if params else None
            if key is None or key in seen:
                continue
            seen.add(key)
            out.append((cls, params))
            made += 1
    return out
