"""The vectorised search: a Whoosh query scored over the postings arrays (index/postings.py)
with numpy, every matching document at once, instead of Whoosh's matchers one posting at a
time (36 ms of a 46 ms request at 100k posts went to them).

A word, a phrase or an expansion is looked up in each segment, as Whoosh does (a prefix expands
to the words of that segment); the parts are then combined over the whole index as sorted
arrays of matching documents and their scores. The rules are Whoosh's, so the scores are the
same as its matchers' within float rounding (tests/test_vectors.py compares both on hundreds
of generated queries):

- a word scores BM25 (ranking.BM25: the index's idf and average field length, the document's
  one-byte field length), times its boost;
- AND and OR add the scores of the parts that match; AND NOT keeps the left part's score;
  a NOT inside an AND or OR matches every other document and scores 1 there;
  a phrase scores as the AND of its words where the words stand in order;
- a `prefix*` or `word~` (query.WordPrefix, WordFuzzy) is the OR of the index words it
  stands for in the segment, times its boost (query._ScoredExpansion: not Whoosh's MultiTerm
  rule, under which a post's score depended on the size of its segment).

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
from searchsvc.search.query import WordFuzzy, WordPrefix
from searchsvc.search.ranking import BM25, K1, B, idf


class NotVectorised(Exception):
    """The query has a part the arrays do not answer: use Whoosh's matchers."""


@dataclass
class Segment:
    postings: SegmentPostings
    reader: Any  # Whoosh's segment reader: its deletions
    offset: int  # its first global document number
    doc_count: int


@dataclass
class VectorIndex:
    """The arrays of every segment of one index version, and which documents are live."""

    segments: list[Segment]
    doc_count: int
    live: np.ndarray  # bool per global document number
    norms: dict[str, np.ndarray] = field(default_factory=dict)

    def global_norm(self, fieldname: str, avgfl: float) -> np.ndarray:
        """K1 * ((1 - B) + B * fl / avgfl) per global document number: BM25's length part, in
        Whoosh's order of operations (scoring.bm25) so the scores are the same to the last
        bit. One array over every segment: a word is scored in one pass, not one per segment
        (20 segments made that per-call overhead most of a 3-word search)."""
        norm = self.norms.get(fieldname)
        if norm is None:
            codes = [segment.postings.fields[fieldname].lengths if fieldname in segment.postings.fields
                     else np.zeros(segment.doc_count, dtype=np.uint8) for segment in self.segments]
            fl = LENGTH_OF_BYTE[np.concatenate(codes) if codes else np.zeros(0, dtype=np.uint8)]
            norm = self.norms[fieldname] = K1 * ((1 - B) + B * fl / avgfl)
        return norm

    def norm(self, segment: Segment, fieldname: str, avgfl: float) -> np.ndarray:
        """global_norm over one segment's documents."""
        return self.global_norm(fieldname, avgfl)[segment.offset:segment.offset + segment.doc_count]


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


Result = tuple[np.ndarray, np.ndarray]  # matching global document numbers (ascending), their scores


def _empty() -> Result:
    return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)


def evaluate(vectors: VectorIndex, searcher: Searcher, query: wq.Query, deadline: Deadline) -> Result:
    """(documents, scores): every global document number `query` matches, ascending, deleted
    ones left out, and each one's score. NotVectorised for a query the arrays cannot answer.

    Matches are kept sparse, as sorted document numbers: an AND looks up the other parts'
    documents only at the smallest part's, so no step costs the size of the index except an
    OR of large parts (a dense array: cheaper than sorting them)."""
    docs, scores = _Evaluation(vectors, _Stats(searcher), deadline).run(query)
    live = vectors.live[docs]
    return (docs, scores) if live.all() else (docs[live], scores[live])


def _contains(sorted_docs: np.ndarray, docs: np.ndarray) -> np.ndarray:
    """Which of `docs` are in `sorted_docs` (a bool per element of `docs`)."""
    if not len(sorted_docs):
        return np.zeros(len(docs), dtype=bool)
    at = np.searchsorted(sorted_docs, docs)
    at[at == len(sorted_docs)] = 0
    return sorted_docs[at] == docs


class _Evaluation:
    """One query over every segment."""

    def __init__(self, vectors: VectorIndex, stats: _Stats, deadline: Deadline):
        self.vectors = vectors
        self.n = vectors.doc_count
        self.stats = stats
        self.deadline = deadline
        self.schema = stats.searcher.schema

    def run(self, q: wq.Query) -> Result:
        self.deadline.tick()
        kind = type(q)
        if kind is wq.Term:
            return self._word(q.fieldname, q.text, q.boost)
        if kind is wq.Or:
            return _boosted(self._or([self.run(sub) for sub in q.subqueries]), q.boost)
        if kind is wq.And:
            return _boosted(self._and(q.subqueries), q.boost)
        if kind is wq.AndNot:
            docs, scores = self.run(q.a)
            keep = ~_contains(self.run(q.b)[0], docs)
            return _boosted((docs[keep], scores[keep]), q.boost)
        if kind is wq.Not:
            # Whoosh's InverseMatcher: every other document, each scoring 1.
            docs = np.arange(self.n, dtype=np.int64)
            docs = docs[~_contains(self.run(q.query)[0], docs)]
            return docs, np.ones(len(docs))
        if kind is ExactPhrase and q.fieldname in ARRAY_FIELDS:
            return self._per_segment(lambda segment: self._phrase(segment, q))
        if kind is wq.Every:
            return np.arange(self.n, dtype=np.int64), np.full(self.n, float(q.boost))
        if isinstance(q, (WordPrefix, WordFuzzy)) and q.field() in ARRAY_FIELDS:
            return self._expansion(q)
        if q is wq.NullQuery or isinstance(q, type(wq.NullQuery)):
            return _empty()
        raise NotVectorised(type(q).__name__)

    def _per_segment(self, evaluate_in: Any) -> Result:
        """A leaf's matches in every segment (segment document numbers), made global."""
        parts = []
        for segment in self.vectors.segments:
            docs, scores = evaluate_in(segment)
            if len(docs):
                parts.append((docs.astype(np.int64) + segment.offset, scores))
        if not parts:
            return _empty()
        if len(parts) == 1:
            return parts[0]
        return np.concatenate([d for d, _ in parts]), np.concatenate([s for _, s in parts])

    def _or(self, results: list[Result]) -> Result:
        """Every document of any part, the scores of the parts that match it added in order."""
        results = [r for r in results if len(r[0])]
        if not results:
            return _empty()
        if len(results) > 4:  # many parts: one dense pass, not a merge per part
            docs = np.concatenate([d for d, _ in results])
            summed = np.bincount(docs, weights=np.concatenate([s for _, s in results]), minlength=self.n)
            matched = np.flatnonzero(np.bincount(docs, minlength=self.n))
            return matched, summed[matched]
        merged = results[0]
        for part in results[1:]:
            merged = _union(merged, part)
        return merged

    def _and(self, subqueries: list[wq.Query]) -> Result:
        """The documents every part matches (looked up at the smallest part's), the parts'
        scores added in order; a NOT part excludes its documents and adds 1 (as in Whoosh)."""
        if not subqueries:
            return _empty()
        positive = [type(sub) is not wq.Not for sub in subqueries]
        if not any(positive):
            results = [self.run(sub) for sub in subqueries]
        else:
            results = [self.run(sub if keep else sub.query) for sub, keep in zip(subqueries, positive, strict=True)]
        included = [r for r, keep in zip(results, positive, strict=True) if keep or not any(positive)]
        docs = min((r[0] for r in included), key=len)
        for (part, _), keep in zip(results, positive, strict=True):
            if not len(docs):
                return _empty()
            if keep or not any(positive):
                docs = docs[_contains(part, docs)]
            else:
                docs = docs[~_contains(part, docs)]
        scores = np.zeros(len(docs), dtype=np.float64)
        for (part, part_scores), keep in zip(results, positive, strict=True):
            if keep or not any(positive):
                scores += part_scores[np.searchsorted(part, docs)]
            else:
                scores += 1.0
        return docs, scores

    def _postings(self, segment: Segment, fieldname: str,
                  text: Any) -> tuple[np.ndarray, np.ndarray, int, bytes] | None:
        if fieldname not in ARRAY_FIELDS or fieldname not in self.schema:
            raise NotVectorised(fieldname)
        try:
            btext = self.schema[fieldname].to_bytes(text)
        except ValueError:
            return None
        arrays = segment.postings.fields.get(fieldname)
        number = arrays.term_number(btext) if arrays is not None else None
        if number is None:
            return None
        docs, freqs, start, _ = arrays.postings(number)
        return docs, freqs, start, btext

    def _bm25(self, segment: Segment, fieldname: str, btext: bytes, docs: np.ndarray,
              freqs: np.ndarray) -> np.ndarray:
        stats = self.stats
        norm = self.vectors.norm(segment, fieldname, stats.avgfl(fieldname))
        return _bm25(stats.idf(fieldname, btext), freqs, norm[docs])

    def _word(self, fieldname: str, text: Any, boost: float) -> Result:
        """A word over every segment at once: its postings gathered, then scored in one pass
        (the idf from the same postings: Whoosh's document frequency counts them all)."""
        if fieldname not in ARRAY_FIELDS or fieldname not in self.schema:
            raise NotVectorised(fieldname)
        try:
            btext = self.schema[fieldname].to_bytes(text)
        except ValueError:
            return _empty()
        docs, freqs, offsets = [], [], []
        for segment in self.vectors.segments:
            arrays = segment.postings.fields.get(fieldname)
            number = arrays.term_number(btext) if arrays is not None else None
            if number is not None:
                found, found_freqs, _, _ = arrays.postings(number)
                docs.append(found)
                freqs.append(found_freqs)
                offsets.append(segment.offset)
        if not docs:
            return _empty()
        counts = [len(d) for d in docs]
        all_docs = np.concatenate(docs).astype(np.int64) + np.repeat(np.asarray(offsets, dtype=np.int64), counts)
        norm = self.vectors.global_norm(fieldname, self.stats.avgfl(fieldname))
        return _boosted((all_docs, _bm25(idf(self.n, sum(counts)), np.concatenate(freqs), norm[all_docs])), boost)

    def _expansion(self, q: WordPrefix | WordFuzzy) -> Result:
        """The OR of the index words a `prefix*` or `word~` stands for, times its boost. The
        words of the whole index: a word absent from a segment adds nothing there, so this is
        the segment-by-segment expansion Whoosh's matchers make. All words' postings are
        gathered word by word, scored in one pass and added up per document in word order."""
        fieldname = q.field()
        words = sorted(word for word in q._btexts(self.stats.searcher.reader()) if word)
        if not words:
            return _empty()
        found: list[list[tuple[np.ndarray, np.ndarray, int]]] = [[] for _ in words]
        for segment in self.vectors.segments:
            self.deadline.tick()
            arrays = segment.postings.fields.get(fieldname)
            if arrays is None:
                continue
            for n, number in enumerate(arrays.term_numbers(words)):
                if number is not None:
                    docs, freqs, _, _ = arrays.postings(number)
                    found[n].append((docs, freqs, segment.offset))
        parts = [(n, part) for n, word_parts in enumerate(found) for part in word_parts]
        if not parts:
            return _empty()
        idfs = [idf(self.n, sum(len(docs) for docs, _, _ in word_parts)) for word_parts in found]
        counts = [len(docs) for _, (docs, _, _) in parts]
        docs = (np.concatenate([d for _, (d, _, _) in parts]).astype(np.int64)
                + np.repeat(np.asarray([o for _, (_, _, o) in parts], dtype=np.int64), counts))
        norm = self.vectors.global_norm(fieldname, self.stats.avgfl(fieldname))
        scores = _bm25(np.repeat(np.asarray([idfs[n] for n, _ in parts]), counts),
                       np.concatenate([f for _, (_, f, _) in parts]), norm[docs])
        # bincount adds in the order given: each document's words in sorted order, as the OR.
        summed = np.bincount(docs, weights=scores, minlength=self.n)
        matched = np.flatnonzero(np.bincount(docs, minlength=self.n))
        return _boosted((matched, summed[matched]), q.boost)

    def _phrase(self, segment: Segment, q: ExactPhrase) -> Result:
        """The words' postings intersected by document, then their positions merged: a
        document matches when word i stands at p + i for some p."""
        fieldname = q.fieldname
        arrays = segment.postings.fields.get(fieldname)
        if arrays is None:  # no document of this segment has a word in the field
            return _empty()
        words = []
        for word in q.words:
            postings = self._postings(segment, fieldname, word)
            if postings is None:
                return _empty()  # a word no post of this segment holds: no match here
            words.append(postings)
        # Documents holding every word, from the rarest word's.
        docs = min((p[0] for p in words), key=len)
        for p in words:
            docs = docs[_contains(p[0], docs)]
            if not len(docs):
                return _empty()
        keys = self._near_keys(arrays, words, docs, q.slop) if q.slop != 1 else None
        if keys is not None and not len(keys):
            return _empty()
        # Rarest word first: the keys to look up are the smallest set.
        for offset, (word_docs, _, start, _) in sorted(enumerate(words), key=lambda item: len(item[1][0])):
            if q.slop != 1:
                break
            self.deadline.check()
            word_keys = self._position_keys(arrays, word_docs, start, docs, offset)
            keys = word_keys if keys is None else keys[_contains(word_keys, keys)]
            if not len(keys):
                return _empty()
        keys.sort()
        owners = keys >> 32
        first = np.ones(len(owners), dtype=bool)
        first[1:] = owners[1:] != owners[:-1]
        matched = owners[first]
        scores = np.zeros(len(matched), dtype=np.float64)
        for word_docs, freqs, _, btext in words:
            scores += self._bm25(segment, fieldname, btext, matched, freqs[np.searchsorted(word_docs, matched)])
        return _boosted((matched, scores), q.boost)


    def _near_keys(self, arrays: Any, words: list[Any], docs: np.ndarray, slop: int) -> np.ndarray:
        """The keys (document << 32) + position of the last word wherever each word follows a
        reachable end of the words before it by 1 to `slop` positions (phrases.py says why
        this is Whoosh's SpanNear2): each next word's keys look up their nearest reachable
        key before them, in order of the words."""
        ends = None
        keys_of: dict[int, np.ndarray] = {}  # a word the phrase repeats is looked up once
        for word_docs, _, start, _ in words:
            # Each word is a pass over all its positions in `docs`, millions in one large post:
            # the clock is read every word, not every 256th (60 words took 9.7 s past a 5 s limit).
            self.deadline.check()
            keys = keys_of.get(start)
            if keys is None:
                keys = keys_of[start] = self._position_keys(arrays, word_docs, start, docs, 0)
            if ends is not None:
                at = np.searchsorted(ends, keys) - 1  # a key equal to an end is not after it
                ok = at >= 0
                before = ends[np.maximum(at, 0)]
                ok &= ((before >> 32) == (keys >> 32)) & (keys - before <= slop)
                keys = keys[ok]
            ends = keys  # ascending and distinct, as _position_keys gives them
            if not len(ends):
                break
        return ends

    @staticmethod
    def _position_keys(arrays: Any, word_docs: np.ndarray, start: int, docs: np.ndarray, offset: int) -> np.ndarray:
        """(document << 32) + (position - offset) for every position of a word in `docs` (a
        subset of `word_docs`, the word's postings from posting `start`), ascending: where
        the phrase would start. When `docs` are most of the word's documents the whole run
        of positions is taken as it lies (no gather): keys of other documents match nothing."""
        if len(docs) * 2 >= len(word_docs):
            first = int(arrays.pos_ends[start - 1]) if start else 0
            ends = arrays.pos_ends[start:start + len(word_docs)]
            counts = np.diff(ends, prepend=first)
            positions = arrays.positions[first:int(ends[-1])]
            owners = np.repeat(word_docs.astype(np.int64), counts)
        else:
            postings = start + np.searchsorted(word_docs, docs)
            ends = arrays.pos_ends[postings]
            firsts = arrays.pos_ends[postings - 1]
            firsts[postings == 0] = 0
            counts = ends - firsts
            flat = np.repeat(firsts - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
            positions = arrays.positions[flat]
            owners = np.repeat(docs.astype(np.int64), counts)
        return (owners << 32) + (positions.astype(np.int64) - offset)


def _union(a: Result, b: Result) -> Result:
    """The documents of `a` and `b`, a document's two scores added: the smaller side's
    documents looked up in the larger's and the new ones inserted in order (one addition per
    document, so which side comes first changes no bit). A title word's posts are a subset of
    the same word's in `text`, so the common case inserts nothing."""
    if len(b[0]) > len(a[0]):
        a, b = b, a
    docs_a, scores_a = a
    docs_b, scores_b = b
    at = np.searchsorted(docs_a, docs_b)
    at[at == len(docs_a)] = 0
    shared = docs_a[at] == docs_b
    scores = scores_a.copy()
    scores[at[shared]] += scores_b[shared]
    if shared.all():
        return docs_a, scores
    where = np.searchsorted(docs_a, docs_b[~shared])
    return np.insert(docs_a, where, docs_b[~shared]), np.insert(scores, where, scores_b[~shared])


def _bm25(idf: Any, freqs: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """scoring.bm25 with the length part precomputed (VectorIndex.global_norm), in Whoosh's
    order of operations: the same scores to the last bit."""
    tf = freqs.astype(np.float64)
    return idf * ((tf * (K1 + 1)) / (tf + norms))


def _boosted(result: Result, boost: float) -> Result:
    return result if boost == 1.0 else (result[0], result[1] * boost)
