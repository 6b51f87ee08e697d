"""How matches are scored: BM25 with the idf of the BM25 paper (as Lucene and Anserini use).

Whoosh's own BM25F uses the tf-idf idf, log(N / (n + 1)) + 1, which gives common words far
too much weight: on SciFact train it scored nDCG@10 0.61 against 0.72 with this idf. The
parameters and the title boost (query.TITLE_BOOST) were tuned on SciFact train with
benchmarks/quality.py; see benchmarks/README.md for the figures.
"""

from __future__ import annotations

from math import log

from whoosh import scoring

K1 = 1.0
B = 0.6


class BM25(scoring.BM25F):
    """Whoosh's BM25F scorer with the probabilistic idf, log(1 + (N - n + 0.5) / (n + 0.5))."""

    def __init__(self, B: float = B, K1: float = K1, **kwargs: float):
        super().__init__(B=B, K1=K1, **kwargs)

    def idf(self, searcher, fieldname: str, text: bytes) -> float:  # Whoosh's signature
        parent = searcher.get_parent()
        return idf(parent.doc_count_all(), parent.doc_frequency(fieldname, text))


def idf(total: int, n: int) -> float:
    """The probabilistic idf of a word in `n` of `total` documents (also the vectorised search's)."""
    return log(1 + (total - n + 0.5) / (n + 0.5))


def weighting() -> BM25:
    return BM25()
