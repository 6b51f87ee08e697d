"""Writing posts into the index faster than Whoosh's own writer: Whoosh's segment writer with
our codec (codec.py: postings as arrays).

Profiling the first ingest of 2,000 presidential documents (6.2 MB) with stock Whoosh:
39% of the time went to the token pipeline (see `fasttext.FastText`), 15% to reading each
posting's document length back from the half-written segment while writing the postings,
and most of the rest to Whoosh's posting writer (zlib-compressed pickled blocks), which our
codec replaces with arrays.

- `PostWriter` remembers the field lengths it wrote, so the postings pass never reads
  them back from disk, and hands the postings to the codec a term at a time.
- `write_records` splits a large batch between processes, one segment each.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections import Counter, defaultdict
from collections.abc import Collection, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_for
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from whoosh.filedb.filestore import FileStorage
from whoosh.index import clean_files
from whoosh.system import pack_uint
from whoosh.writing import PostingPool, SegmentWriter

from searchsvc.index.codec import ArrayCodec, ArrayFieldWriter, open_segment_postings
from searchsvc.index.commit import commit
from searchsvc.index.fasttext import terms
from searchsvc.index.inversion import Inverter
from searchsvc.index.postings import ARRAY_FIELDS, set_length_code
from searchsvc.index.schema import LANGUAGE_FIELDS, SPELL_FIELD, build_schema, document_from_record
from searchsvc.index.toc import PinnedIndex

if TYPE_CHECKING:
    from searchsvc.records import Record


# Each language's title-and-body field: a post has one of them.
TEXT_FIELDS = tuple(text for text, _ in LANGUAGE_FIELDS.values())


class LeanPool(PostingPool):
    """Whoosh's posting pool without the per-posting type assertions."""

    def add(self, item: tuple) -> None:
        self.currentsize += 150 + len(item[1]) * 2 + len(item[4] or b"")
        if self.currentsize > self.limit:
            self.save()
        self.current.append(item)


class PostWriter(SegmentWriter):
    """SegmentWriter with our codec (codec.ArrayCodec: postings as arrays), which keeps the
    field lengths it writes for the postings, and writes the `spell` field as one posting per
    word per segment.

    "Did you mean" asks only whether a word occurs and how often (`doc_frequency`,
    `frequency`), never which posts hold it, so `spell` needs no posting per post: each
    word is posted once, on the first post of the segment holding it, weighted by its
    count. That is about 40% fewer postings for an ingest to write.
    """

    def __init__(self, ix: Any, *, limitmb: int = 128, **kwargs: Any):
        super().__init__(ix, limitmb=limitmb, codec=ArrayCodec(), **kwargs)
        self.mergetype = merge_small  # for commit(), as `delete` calls it
        self._ix = ix
        # SegmentWriter ignores its `poolclass` argument.
        self.pool = LeanPool(self._tempstorage, self.newsegment, limitmb=limitmb)
        self.pool.fieldnames = set(self.schema.names())
        # Each field's one-byte length code per document, for the postings (postings.py).
        self._length_codes: dict[str, bytearray] = defaultdict(bytearray)
        pdw = self.perdocwriter
        add_field = pdw.add_field
        codes = self._length_codes

        def remember(fieldname: str, fieldobj: Any, value: Any, length: int) -> None:
            if length:
                set_length_code(codes[fieldname], pdw._docnum, length)
            add_field(fieldname, fieldobj, value, length)

        pdw.add_field = remember
        self._spell_terms = self.schema[SPELL_FIELD].term_function()
        self._spell_first: dict[str, int] = {}
        self._spell_count: Counter[str] = Counter()
        self._inverter = Inverter({name: self.schema[name].term_function() for name in ARRAY_FIELDS})

    def add_document(self, **fields: Any) -> None:
        """Whoosh's SegmentWriter.add_document for our schema (no boosts, vectors or custom
        stored values), with the positional fields' words handed to the Inverter."""
        self._check_state()
        docnum = self.docnum
        words = fields.pop(SPELL_FIELD, None)
        if words:
            # Before the other fields: `text` is the same string and reuses its words.
            found = terms(words, self._spell_terms)
            self._spell_count.update(found)
            first = self._spell_first
            for term in set(found).difference(first):  # per word of the post, not per known word
                first[term] = docnum
        perdocwriter = self.perdocwriter
        schema = self.schema
        add_post = self.pool.add
        # `text` first: it is the string `spell` just split into words (fasttext.words keeps one).
        inverted = {name: self._inverter.add(name, docnum, fields[name])
                    for name in sorted(self._inverter.fields, key=lambda name: name not in TEXT_FIELDS)
                    if fields.get(name) is not None}
        perdocwriter.start_doc(docnum)
        try:
            for fieldname in sorted(fields):
                value = fields[fieldname]
                if value is None:
                    continue
                field = schema[fieldname]
                length = 0
                if fieldname in inverted:
                    length = inverted[fieldname]
                elif field.indexed:
                    for tbytes, freq, weight, vbytes in field.index(value):
                        if field.scorable:
                            length += freq
                        add_post((fieldname, tbytes, docnum, weight, vbytes))
                perdocwriter.add_field(fieldname, field, value if field.stored else None, length)
                if field.column_type:
                    perdocwriter.add_column_value(fieldname, field.column_type, field.to_column_value(value))
        except Exception:
            perdocwriter.cancel_doc()
            raise
        perdocwriter.finish_doc()
        self._added = True
        self.docnum += 1

    def add_postings_to_pool(self, reader: Any, startdoc: int, docmap: dict[int, int] | None) -> None:
        """A merged segment's postings: the inverted fields' straight from its arrays to the
        Inverter (numpy, no tuple per posting), the others through Whoosh's pool."""
        arrays = open_segment_postings(reader) if hasattr(reader, "segment") else None
        if arrays is None:
            super().add_postings_to_pool(reader, startdoc, docmap)
            return
        if docmap is None:
            new_numbers = np.arange(startdoc, startdoc + arrays.doc_count, dtype=np.int64)
        else:
            new_numbers = np.full(arrays.doc_count, -1, dtype=np.int64)
            new_numbers[list(docmap)] = list(docmap.values())
        add = self.pool.add
        for fieldname, field in arrays.fields.items():
            if fieldname not in self.schema:
                continue
            if fieldname in self._inverter.fields:
                self._inverter.add_merged_arrays(fieldname, field, new_numbers)
                continue
            docs = new_numbers[field.docs].tolist()
            freqs = field.freqs.tolist()
            start = 0
            for btext, post_end in zip(field.term_list(), field.post_ends.tolist(), strict=True):
                for posting in range(start, post_end):
                    if docs[posting] >= 0:
                        add((fieldname, btext, docs[posting], freqs[posting], pack_uint(int(freqs[posting]))))
                start = post_end

    def _commit_toc(self, segments: list[Any]) -> None:
        # Whoosh's version writes the table of contents unsynced and deletes the old files at once.
        commit(self._ix, self.schema, segments, self.generation)

    def _flush_segment(self) -> None:
        add = self.pool.add
        for term, count in self._spell_count.items():
            add((SPELL_FIELD, term.encode("utf-8"), self._spell_first[term], float(count), pack_uint(count)))
        self.perdocwriter.close()
        fieldwriter = self.fieldwriter
        fieldwriter.set_lengths(self._length_codes)
        _write_postings(fieldwriter, self.schema, self.pool.iter_postings(), self._inverter)
        for fieldname in sorted(self._inverter.fields):
            arrays = self._inverter.postings(fieldname)
            if arrays is not None:
                fieldwriter.add_field_arrays(fieldname, arrays)
        fieldwriter.close(self.docnum)


def _write_postings(fieldwriter: ArrayFieldWriter, schema: Any, items: Any, inverter: Inverter) -> None:
    """Sorted postings (field, term, docnum, weight, value) to the field writer a term at a
    time, without Whoosh's per-posting calls; those of the inverted fields (from merged
    segments) to the inverter."""
    lastfn = lasttext = None
    docs: list[int] = []
    freqs: list[float] = []
    values: list[bytes] = []
    inverted = inverter.fields
    for fieldname, btext, docnum, weight, value in items:
        if fieldname in inverted:
            inverter.add_merged(fieldname, btext, docnum, value)
            continue
        if btext != lasttext or fieldname != lastfn:
            if lasttext is not None:
                fieldwriter.add_term(lasttext, docs, freqs, values)
                docs, freqs, values = [], [], []
            if fieldname != lastfn:
                fieldwriter.start_field(fieldname, schema[fieldname])
                lastfn = fieldname
            lasttext = btext
        docs.append(docnum)
        freqs.append(weight)
        values.append(value)
    if lasttext is not None:
        fieldwriter.add_term(lasttext, docs, freqs, values)


# Below this much text a second process costs more (start-up, imports) than it saves.
PARALLEL_MIN_CHARS = 4_000_000
# At most this much text per segment: a process inverts a whole segment in memory
# (inversion.py), about 8 bytes per character at its peak.
SEGMENT_MAX_CHARS = 48_000_000


def write_records(
    ix: Any,
    records: list[Record],
    *,
    replace: Collection[str],
    wait: float,
    limitmb: int,
    workers: int | None = None,
) -> list[str]:
    """One commit: posts whose id is in `replace` are replaced, the rest added. Returns the ids
    of Markdown posts written as plain text, too long to render (markup.py), in batch order.

    A large batch is split into contiguous parts by size (at least one per core, at most
    SEGMENT_MAX_CHARS each); helper processes, one per core, each write parts as segments of
    their own, and the segments keep the batch's order. This process, which holds the whole
    batch, inverts nothing then: the peak of any one process stays the batch or one part's
    inversion, not both. The commit (the
    table of contents) is only ever written here, under the caller's lock: a failure anywhere
    leaves the previous commit as it was, and the unfinished segments' files are deleted at
    once (`_abandon`).
    """
    with _collector_paused():
        return _write_records(ix, records, replace=replace, wait=wait, limitmb=limitmb, workers=workers)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Millions of postings tuples, none in a reference cycle: the cyclic garbage
    collector would traverse them again and again for nothing (about 1 s of a 22 s ingest)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _write_records(
    ix: Any, records: list[Record], *, replace: Collection[str], wait: float, limitmb: int, workers: int | None
) -> list[str]:
    if workers is None:
        workers = default_workers(records)
    size = sum(len(r.body) + len(r.title) for r in records)
    parts = split_by_size(records, max(workers, -(-size // SEGMENT_MAX_CHARS)))
    writer = PostWriter(ix, timeout=wait, limitmb=limitmb)
    try:
        for record in records:
            if record.id in replace:
                writer.delete_by_term("id", record.id)
        helpers: _Helpers | None = None
        with ExitStack() as stack:
            if len(parts) > 1:
                context = multiprocessing.get_context("spawn")
                pool = stack.enter_context(
                    ProcessPoolExecutor(
                        max(1, min(workers, len(parts))), mp_context=context,
                        initializer=_die_with_parent, initargs=(os.getpid(),)
                    )
                )
                helpers = _Helpers(pool, ix, parts, writer.pool.limit // 2**20, min(workers, len(parts)))
            # Small old segments are merged into this writer's segment (while the helpers work).
            final = writer._merge_segments(None, None, None)
            unrendered = [] if helpers else _add_all(writer, parts[0])
            own = writer._finalize_segment() if writer._added else None
            if helpers:
                for segment, ids in helpers.segments():
                    final.append(segment)
                    unrendered += ids
        if own is not None:
            final.append(own)
        else:
            writer._close_segment()
        writer._commit_toc(final)
    except BaseException:
        _abandon(writer, ix)
        raise
    writer._finish()
    return unrendered


class _Helpers:
    """The parts written as segments by helper processes, in the parts' order. A part is handed
    over only when a helper is free: one waiting in the pool's queue is a pickled copy of its
    records in this process (the 104k-post ingest peaked 450 MB higher with all of them queued)."""

    def __init__(self, pool: ProcessPoolExecutor, ix: Any, parts: list[list[Record]], limitmb: int, slots: int):
        self._pool, self._ix, self._limitmb = pool, ix, limitmb
        self._waiting = list(enumerate(parts))[::-1]
        self._running: dict[Future, int] = {}
        self._count = len(parts)
        for _ in range(slots):
            self._hand_over()

    def _hand_over(self) -> None:
        if self._waiting:
            n, part = self._waiting.pop()
            future = self._pool.submit(_write_segment, self._ix.storage.folder, self._ix.toc_generation, part,
                                       self._limitmb)
            self._running[future] = n

    def segments(self) -> list[tuple[Any, list[str]]]:
        """Every part's segment and unrendered posts (`_add_all`), once all are written; the first
        failure is raised."""
        done: dict[int, Any] = {}
        while self._running:
            finished, _ = wait_for(self._running, return_when=FIRST_COMPLETED)
            for future in finished:
                done[self._running.pop(future)] = future.result()
                self._hand_over()
        return [done[n] for n in range(self._count)]


# Segments this small (in words of `text`) are merged into the next ingest's segment, once at
# least MERGE_AT of them are there (many small ingests must not leave hundreds of segments);
# one merge takes at most MERGE_MAX_WORDS, since the merged segment is inverted in memory.
MERGE_MAX_WORDS = 8_000_000
MERGE_SMALL_WORDS = MERGE_MAX_WORDS // 8
MERGE_AT = 4


def merge_small(writer: SegmentWriter, segments: list[Any]) -> list[Any]:
    """A Whoosh merge policy: the segments kept as they are; the merged ones are added to
    `writer`. Whoosh's own (MERGE_SMALL, by document counts on a Fibonacci curve) merged
    300,000 posts into one ingest's segment once 36 segments were there: a 9.8 GB peak."""
    from whoosh.reading import SegmentReader

    sized = []
    for segment in segments:
        reader = SegmentReader(writer.storage, writer.schema, segment)
        try:
            words = sum(reader.field_length(name) for name in TEXT_FIELDS) if segment.doc_count() else 0
        finally:
            reader.close()
        sized.append((words, segment))
    sized.sort(key=lambda item: item[0])
    chosen: list[Any] = []
    total = 0
    for words, segment in sized:
        if words > MERGE_SMALL_WORDS or total + words > MERGE_MAX_WORDS:
            break
        chosen.append(segment)
        total += words
    emptied = [segment for words, segment in sized if not segment.doc_count()]
    if len(chosen) < MERGE_AT and not emptied:
        return segments
    chosen = chosen if len(chosen) >= MERGE_AT else emptied
    for segment in chosen:
        reader = SegmentReader(writer.storage, writer.schema, segment)
        try:
            writer.add_reader(reader)
        finally:
            reader.close()
    return [segment for segment in segments if segment not in chosen]


def _abandon(writer: SegmentWriter, ix: Any) -> None:
    """Undo a failed write: the last commit stays as it was, and the files of unfinished
    segments (ours and the helpers') are deleted now, so a full disk gets its space back.
    Closing may itself fail on a full disk; that must not hide the first error."""
    for step in (writer.cancel, writer._finish):
        try:
            step()
        except Exception:  # the original error is the one to report
            pass
    try:
        toc = ix._read_toc()  # our own table of contents, in a directory we created
        clean_files(ix.storage, ix.indexname, toc.generation, toc.segments)
    except Exception:  # the next commit cleans up the same way
        pass


def default_workers(records: list[Record]) -> int:
    size = sum(len(r.body) for r in records)
    if size < PARALLEL_MIN_CHARS:
        return 1
    return max(1, min(os.cpu_count() or 1, 4, size // (PARALLEL_MIN_CHARS // 2)))


def split_by_size(records: list[Record], parts: int) -> list[list[Record]]:
    """`records` in `parts` contiguous runs of about equal text size (none empty).

    Equal parts measured best; giving this process, which starts first, a larger or a
    smaller share was slower or within noise."""
    parts = max(1, min(parts, len(records)))
    if parts == 1:
        return [records]
    total = sum(len(r.body) + len(r.title) for r in records) or 1
    share = total / parts
    out: list[list[Record]] = [[]]
    done = 0
    for record in records:
        if done >= share * len(out) and len(out) < parts and out[-1]:
            out.append([])
        out[-1].append(record)
        done += len(record.body) + len(record.title)
    return out


def _add_all(writer: SegmentWriter, records: list[Record]) -> list[str]:
    """Adds `records`; the ids of Markdown posts among them too long to render (written as plain
    text), for the ingest to say so: the rendering is done here, in the writing processes."""
    unrendered = []
    for record in records:
        writer.add_document(**document_from_record(record))
        if record.markdown and not record.rendered:
            unrendered.append(record.id)
    return unrendered


def _write_segment(folder: str, toc: int, records: list[Record], limitmb: int) -> tuple[Any, list[str]]:
    """In a helper process: write `records` as one finished segment of the index in
    `folder` (no lock: the parent holds it) and return the segment for the parent to commit,
    with the ids of its unrendered Markdown posts (`_add_all`)."""
    # Our schema, and the table of contents the parent verified: nothing unpickled unchecked.
    ix = PinnedIndex(FileStorage(folder), build_schema(), toc, root=Path(folder).parent, name=Path(folder).name)
    writer = PostWriter(ix, _lk=False, limitmb=limitmb)
    gc.disable()  # see _collector_paused; this process ends with the segment
    unrendered = _add_all(writer, records)
    # The temporary directory is shared with the parent, which removes it when it is done.
    return writer._finalize_segment(), unrendered


def _die_with_parent(parent: int) -> None:
    """A helper must not outlive a killed ingest: it would write into a directory the next
    writer is cleaning up."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the ingest died while this process was starting
        os._exit(1)
