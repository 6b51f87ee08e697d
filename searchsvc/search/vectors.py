"""The vectorised search: a Whoosh query scored over the postings arrays (index/postings.py)
with numpy, every matching document at once, instead of Whoosh's matchers one posting at a
time (36 ms of a 46 ms request at 100k posts went to them).

A query is worked out one segment at a time, as Whoosh does (a prefix expands to the words of
that segment), into two dense arrays over the segment's documents: which match, and their
scores. The rules are Whoosh's, so the scores are the same as its matchers' within float
rounding (tests/test_vectors.py compares both on hundreds of generated queries):

- a word scores BM25 (ranking.BM25: the index's idf and average field length, the document's
  one-byte field length), times its boost;
- AND and OR add the scores of the parts that match; AND NOT keeps the left part's score;
  a NOT inside an AND or OR matches every other document and scores 1 there;
  a phrase scores as the AND of its words where the words stand in order;
- a `prefix*` or `word~` standing for one word of a segment is that word scored, without the
  query's boost; several words are their OR, boosted. Except (Whoosh's MultiTerm and Or): a
  `prefix*` of 1,024 words or more, or of 3 or more in a segment of at most 5,000 documents,
  scores 1 for every match (`_UNWEIGHTED_*`).

A query with any other part raises NotVectorised and the caller runs Whoosh's matchers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from whoosh import query as wq
from whoosh.searching import Searcher

from searchsvc.index.codec import open_segment_postings
from searchsvc.index.postings import ARRAY_FIELDS, LENGTH_OF_BYTE, SegmentPostings
from searchsvc.search.deadline import Deadline
from searchsvc.search.phrases import ExactPhrase
from searchsvc.search.ranking import BM25, K1, B

# Whoosh's Or.TOO_MANY_CLAUSES and the segment size up to which it preloads an unweighted Or.
_UNWEIGHTED_CLAUSES = 1024
_UNWEIGHTED_DOCS = 5000


class NotVectorised(Exception):
    """The query has a part the arrays do not answer: use Whoosh's matchers."""


@dataclass
class Segment:
    postings: SegmentPostings
    reader: Any  # Whoosh's segment reader: prefix and fuzzy expansion
    offset: int  # its first global document number
    doc_count: int
    norms: dict[str, np.ndarray] = field(default_factory=dict)  # BM25's length part, per field


@dataclass
class VectorIndex:
    """The arrays of every segment of one index version, and which documents are live."""

    segments: list[Segment]
    doc_count: int
    live: np.ndarray  # bool per global document number

    def norm(self, segment: Segment, fieldname: str, avgfl: float) -> np.ndarray:
        """K1 * ((1 - B) + B * fl / avgfl) per document: BM25's length part, in Whoosh's
        order of operations (scoring.bm25) so the scores are the same to the last bit."""
        norm = segment.norms.get(fieldname)
        if norm is None:
            fl = LENGTH_OF_BYTE[segment.postings.fields[fieldname].lengths]
            norm = segment.norms[fieldname] = K1 * ((1 - B) + B * fl / avgfl)
        return norm


def open_vectors(searcher: Searcher) -> VectorIndex | None:
    """The arrays of `searcher`'s index version, or None when a segment has none."""
    reader = searcher.reader()
    leaves = reader.leaf_readers()
    segments = []
    for segreader, offset in leaves:
        if segreader.segment() is None:
            # Whoosh's EmptyReader: an index of no segments (an ingest that added nothing).
            if segreader.doc_count_all() == 0:
                continue
            return None
        postings = open_segment_postings(segreader)
        if postings is None:
            return None
        segments.append(Segment(postings, segreader, offset, segreader.doc_count_all()))
    total = reader.doc_count_all()
    live = np.ones(total, dtype=bool)
    for segment in segments:
        if segment.reader.has_deletions():
            deleted = np.fromiter(segment.reader.segment().deleted_docs(), dtype=np.int64)
            live[segment.offset + deleted] = False
    return VectorIndex(segments, total, live)


class _Stats:
    """The global statistics of one search: idf and average field length, each looked up once."""

    def __init__(self, searcher: Searcher):
        self.searcher = searcher
        self.weighting = BM25()
        self._idf: dict[tuple[str, bytes], float] = {}
        self._avgfl: dict[str, float] = {}

    def idf(self, fieldname: str, btext: bytes) -> float:
        key = (fieldname, btext)
        value = self._idf.get(key)
        if value is None:
            value = self._idf[key] = self.weighting.idf(self.searcher, fieldname, btext)
        return value

    def avgfl(self, fieldname: str) -> float:
        value = self._avgfl.get(fieldname)
        if value is None:
            value = self._avgfl[fieldname] = self.searcher.avg_field_length(fieldname) or 1
        return value


def evaluate(vectors: VectorIndex, searcher: Searcher, query: wq.Query,
             deadline: Deadline) -> tuple[np.ndarray, np.ndarray]:
    """(matches, scores): a bool and a float64 array over every global document number,
    deleted documents not matching. NotVectorised for a query the arrays cannot answer."""
    matches = np.zeros(vectors.doc_count, dtype=bool)
    scores = np.zeros(vectors.doc_count, dtype=np.float64)
    stats = _Stats(searcher)
    for segment in vectors.segments:
        deadline.check()
        found, score = _Evaluation(vectors, segment, stats, deadline).run(query, scored=True)
        end = segment.offset + segment.doc_count
        matches[segment.offset:end] = found
        scores[segment.offset:end] = score
    matches &= vectors.live
    scores[~matches] = 0.0
    return matches, scores


class _Evaluation:
    """One query over one segment."""

    def __init__(self, vectors: VectorIndex, segment: Segment, stats: _Stats, deadline: Deadline):
        self.vectors = vectors
        self.segment = segment
        self.n = segment.doc_count
        self.stats = stats
        self.deadline = deadline
        self.schema = stats.searcher.schema

    def run(self, q: wq.Query, scored: bool) -> tuple[np.ndarray, np.ndarray]:
        """(matches, scores) of `q` over this segment's documents; scores are 0 where it
        does not match. `scored` False: Whoosh's unweighted context (a multi-word expansion)."""
        self.deadline.tick()
        kind = type(q)
        if kind is wq.Term:
            return self._term(q.fieldname, q.text, q.boost, scored)
        if kind is wq.Or:
            return self._boosted(self._or(q.subqueries, scored), q.boost)
        if kind is wq.And:
            return self._boosted(self._and(q.subqueries, scored), q.boost)
        if kind is wq.AndNot:
            found, score = self.run(q.a, scored)
            excluded, _ = self.run(q.b, False)
            found = found & ~excluded
            return self._boosted((found, np.where(found, score, 0.0)), q.boost)
        if kind is ExactPhrase and q.slop == 1 and q.fieldname in ARRAY_FIELDS:
            return self._phrase(q, scored)
        if kind is wq.Not:
            # Whoosh's InverseMatcher: every other document, each scoring 1.
            excluded, _ = self.run(q.query, False)
            found = ~excluded
            return found, found.astype(np.float64)
        if kind is wq.Every:
            return np.ones(self.n, dtype=bool), np.full(self.n, float(q.boost))
        if isinstance(q, wq.MultiTerm) and q.field() in ARRAY_FIELDS:
            return self._expansion(q, scored)
        if q is wq.NullQuery or isinstance(q, type(wq.NullQuery)):
            return self._none()
        raise NotVectorised(type(q).__name__)

    def _none(self) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(self.n, dtype=bool), np.zeros(self.n, dtype=np.float64)

    @staticmethod
    def _boosted(result: tuple[np.ndarray, np.ndarray], boost: float) -> tuple[np.ndarray, np.ndarray]:
        return result if boost == 1.0 else (result[0], result[1] * boost)

    def _or(self, subqueries: list[wq.Query], scored: bool) -> tuple[np.ndarray, np.ndarray]:
        found, score = self._none()
        for sub in subqueries:
            f, s = self.run(sub, scored)
            found |= f
            score += s
        return found, score

    def _and(self, subqueries: list[wq.Query], scored: bool) -> tuple[np.ndarray, np.ndarray]:
        if not subqueries:
            return self._none()
        found = np.ones(self.n, dtype=bool)
        score = np.zeros(self.n, dtype=np.float64)
        for sub in subqueries:
            f, s = self.run(sub, scored)
            found &= f
            score += s
        score[~found] = 0.0
        return found, score

    def _postings(self, fieldname: str, text: Any) -> tuple[np.ndarray, np.ndarray, int, bytes] | None:
        if fieldname not in ARRAY_FIELDS or fieldname not in self.schema:
            raise NotVectorised(fieldname)
        try:
            btext = self.schema[fieldname].to_bytes(text)
        except ValueError:
            return None
        arrays = self.segment.postings.fields.get(fieldname)
        if arrays is None:  # no document of this segment has a word in the field
            return None
        number = arrays.term_number(btext)
        if number is None:
            return None
        docs, freqs, start, _ = arrays.postings(number)
        return docs, freqs, start, btext

    def _bm25(self, fieldname: str, btext: bytes, docs: np.ndarray, freqs: np.ndarray) -> np.ndarray:
        stats = self.stats
        idf = stats.idf(fieldname, btext)
        norm = self.vectors.norm(self.segment, fieldname, stats.avgfl(fieldname))
        tf = freqs.astype(np.float64)
        return idf * ((tf * (K1 + 1)) / (tf + norm[docs]))

    def _term(self, fieldname: str, text: Any, boost: float, scored: bool) -> tuple[np.ndarray, np.ndarray]:
        found, score = self._none()
        postings = self._postings(fieldname, text)
        if postings is None:
            return found, score
        docs, freqs, _, btext = postings
        found[docs] = True
        if scored:
            score[docs] = self._bm25(fieldname, btext, docs, freqs)
        else:
            score[docs] = freqs  # Whoosh's unweighted matchers score a posting by its weight
        return self._boosted((found, score), boost)

    def _expansion(self, q: wq.MultiTerm, scored: bool) -> tuple[np.ndarray, np.ndarray]:
        fieldname = q.field()
        words = [word for word in q._btexts(self.segment.reader) if word]
        if not words:
            return self._none()
        if len(words) == 1:
            return self._term(fieldname, words[0], 1.0, scored)
        found, score = self._none()
        for word in words:
            self.deadline.tick()
            f, s = self._term(fieldname, word, 1.0, scored)
            found |= f
            score += s
        # Whoosh's MultiTerm asks for a constant score by taking the weighting away, which
        # only the preloading Or honours: it is chosen for many words or a small segment.
        preloaded = len(words) >= _UNWEIGHTED_CLAUSES or (len(words) > 2 and self.n <= _UNWEIGHTED_DOCS)
        if q.constantscore and preloaded:
            return found, found.astype(np.float64)
        return self._boosted((found, score), q.boost)

    def _phrase(self, q: ExactPhrase, scored: bool) -> tuple[np.ndarray, np.ndarray]:
        """The words' postings intersected by document, then their positions merged: a
        document matches when word i stands at p + i for some p."""
        fieldname = q.fieldname
        arrays = self.segment.postings.fields.get(fieldname)
        if arrays is None:  # no document of this segment has a word in the field
            return self._none()
        words = []
        for word in q.words:
            postings = self._postings(fieldname, word)
            if postings is None:
                return self._none()  # a word no post holds: no match
            words.append(postings)
        # Documents holding every word, smallest list first.
        docs = min((p[0] for p in words), key=len)
        for p in words:
            docs = docs[np.isin(docs, p[0], assume_unique=True)]
            if not len(docs):
                return self._none()
        keys = None
        for offset, (word_docs, _, start, _) in enumerate(words):
            self.deadline.tick()
            postings = start + np.searchsorted(word_docs, docs)
            firsts = np.where(postings > 0, arrays.pos_ends[postings - 1], 0)
            firsts[postings == 0] = 0
            ends = arrays.pos_ends[postings]
            counts = ends - firsts
            # Every position of these postings, and the document it belongs to.
            flat = np.repeat(firsts - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
            owners = np.repeat(docs.astype(np.int64), counts)
            # The phrase would start at position p - offset; a document and a start as one number.
            word_keys = (owners << 32) + (arrays.positions[flat].astype(np.int64) - offset)
            if keys is None:
                keys = word_keys
            else:
                at = np.searchsorted(word_keys, keys)
                at[at >= len(word_keys)] = 0
                keys = keys[word_keys[at] == keys] if len(word_keys) else keys[:0]
            if not len(keys):
                return self._none()
        matched = np.unique(keys >> 32)
        found, score = self._none()
        found[matched] = True
        for word_docs, freqs, _, btext in words:
            at = np.searchsorted(word_docs, matched)
            if scored:
                score[matched] += self._bm25(fieldname, btext, matched, freqs[at])
            else:
                score[matched] += freqs[at]
        return self._boosted((found, score), q.boost)
