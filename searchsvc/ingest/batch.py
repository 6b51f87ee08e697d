"""Ingestion: files in, validated and de-duplicated records, one commit to the index.

Reading and validation happen before the write lock is taken, so a slow parse never
blocks another writer. Unchanged records are recognised by their fingerprint and not
rewritten, which makes re-ingesting an archive cheap.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

from searchsvc.errors import DiskFull, IndexDamaged, InvalidRecord
from searchsvc.index.columns import live_columns
from searchsvc.index.schema import SCHEMA_VERSION, record_from_stored
from searchsvc.index.store import IndexStore
from searchsvc.index.toc import PinnedIndex
from searchsvc.index.writer import write_records
from searchsvc.ingest.bounded import DEFAULT_LIMITS, Limits
from searchsvc.ingest.listing import is_teaser_of, is_text_of
from searchsvc.ingest.sources import Item, Notice, Problem, Skipped, SourceFile, discover, read_source
from searchsvc.records import EXPORT_RANKING, Record, has_export_ranking, record_from_mapping

# Per writing process: the postings of about 20 MB of text stay in memory; beyond that
# Whoosh sorts through temporary files, which made an ingest 1.6x slower.
WRITER_MEMORY_MB = 512


# Lines a report keeps (all are passed to `notify` as they come): a file of ten million bad
# records must not keep ten million messages in memory.
KEPT_LINES = 1000


@dataclass
class IngestReport:
    """What one ingest run did; `problems` and `warnings` are the first KEPT_LINES of the lines
    shown to people."""

    files: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    kept_longer: int = 0
    removed: int = 0
    invalid: int = 0
    skipped_files: int = 0
    written: bool = False
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.invalid == 0

    def summary(self, *, rebuild: bool = False) -> str:
        parts = [
            f"{self.new} new",
            f"{self.updated} updated",
            f"{self.unchanged} unchanged",
        ]
        if self.kept_longer:
            parts.append(f"{self.kept_longer} kept longer body")
        if rebuild:
            parts.append(f"{self.removed} removed")
        parts += [f"{self.invalid} invalid", f"{self.skipped_files} skipped files"]
        verb = "Rebuilt index from" if rebuild and self.written else "Read"
        files = "1 file" if self.files == 1 else f"{self.files} files"
        return f"{verb} {files}: " + ", ".join(parts)


@dataclass
class Batch:
    """Valid records of a run by id (the last one wins), where each came from, and which of
    them are from a blog listing (whose bodies may be teasers)."""

    records: dict[str, Record] = field(default_factory=dict)
    places: dict[str, str] = field(default_factory=dict)
    from_listing: set[str] = field(default_factory=set)


Notify = Callable[[str], None]


def read_batch(
    paths: Iterable[str],
    report: IngestReport,
    *,
    dayfirst: bool = False,
    notify: Notify | None = None,
    progress: Callable[[int], None] | None = None,
    on_sources: Callable[[list[SourceFile]], None] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Batch:
    """Read and validate every record under `paths`; problems go to `report` and `notify`.

    Memory: one record (or one file of a format read whole) at a time, at most
    `limits.max_record_bytes`, besides the valid records kept for the commit.
    """
    say = notify or (lambda line: None)
    sources: list[SourceFile] = []
    for found in discover(paths):
        if isinstance(found, SourceFile):
            sources.append(found)
        elif isinstance(found, Skipped):
            report.skipped_files += 1
            _warn(report, say, str(found))
        elif isinstance(found, Notice):
            _warn(report, say, str(found))
        else:
            _problem(report, say, str(found))
    report.files = len(sources)
    if on_sources:
        on_sources(sources)

    batch = Batch()
    for source in sources:
        rankings = 0
        try:
            for item in read_source(source, progress, limits):
                if isinstance(item, Problem):
                    _problem(report, say, str(item))
                    continue
                rankings += has_export_ranking(item.data)
                _add(batch, item, source.format, report, say, dayfirst)
        except MemoryError:
            # Within the bounds this takes a machine with less memory than they need; the
            # records of the other files are still kept.
            _problem(report, say, f"{source.path}: not enough memory to read it: its records may be up to "
                                  f"{limits.record_size()}")
        if rankings:
            records = "1 record has" if rankings == 1 else f"{rankings} records have"
            _warn(report, say, f"{source.path}: note: {records} a top-level {EXPORT_RANKING!r}, the ranking "
                               "a search export adds: it is not stored as post data")
    return batch


def _add(batch: Batch, item: Item, fmt: str, report: IngestReport, say: Notify, dayfirst: bool) -> None:
    try:
        record = record_from_mapping(item.data, dayfirst=dayfirst)
    except InvalidRecord as e:
        _problem(report, say, f"{item.place}: {e.reason}")
        return
    earlier = batch.places.get(record.id)
    if earlier is not None:
        if fmt == "listing" and is_teaser_of(record.body, batch.records[record.id].body_text):
            report.kept_longer += 1
            _warn(report, say, f"{item.place}: warning: post {record.id!r} is a teaser of the longer body at "
                               f"{earlier}; kept the longer body")
            return
        if fmt == "listing" and _is_markdown_of(record, batch.records[record.id]):
            _warn(report, say, f"{item.place}: warning: post {record.id!r} is the text of the Markdown post at "
                               f"{earlier}; kept the Markdown")
            return
        _warn(report, say, f"{item.place}: warning: id {record.id!r} also at {earlier}; the last one wins")
        del batch.records[record.id]  # re-insert so the order is that of the winner
    batch.records[record.id] = record
    batch.places[record.id] = item.place
    if fmt == "listing":
        batch.from_listing.add(record.id)
    else:
        batch.from_listing.discard(record.id)


def _warn(report: IngestReport, say: Notify, line: str) -> None:
    if len(report.warnings) < KEPT_LINES:
        report.warnings.append(line)
    say(line)


def _problem(report: IngestReport, say: Notify, line: str) -> None:
    report.invalid += 1
    if len(report.problems) < KEPT_LINES:
        report.problems.append(line)
    say(line)


def write_batch(
    store: IndexStore, batch: Batch, report: IngestReport, *, rebuild: bool, wait: float,
    notify: Notify | None = None,
) -> None:
    """Add new records, update changed ones, leave unchanged ones; or rebuild from the batch.

    A listing's teaser of a post the index holds with a longer body leaves that post as it
    is (a warning to `notify`, counted in `report.kept_longer`).
    """
    say = notify or (lambda line: None)
    with store.locked(wait):
        if rebuild:
            ix, existing = _replaced_index(store)
        else:
            ix = store.open_for_writing()
            existing = fingerprints(ix)
        kept = _keep_longer_bodies(ix, batch, existing, report, say) if ix is not None and existing else set()
        for post_id, record in batch.records.items():
            if post_id in kept:
                continue
            known = existing.get(post_id)
            if known is None:
                report.new += 1
            elif known == record.fingerprint:
                report.unchanged += 1
            else:
                report.updated += 1
        try:
            if rebuild:
                report.removed = len(existing.keys() - batch.records.keys())
                name, fresh = store.new_generation()
                try:
                    _write(fresh, batch.records.values(), wait, replace=set())
                    store.make_current(name)
                except BaseException:
                    store.discard_generation(name)
                    raise
                report.written = True
                return
            changed = [r for r in batch.records.values() if existing.get(r.id) != r.fingerprint]
            if changed:
                _write(ix, changed, wait, replace=existing.keys())
                report.written = True
        except OSError as e:
            if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise DiskFull(
                f"no space left on the disk while writing the index at {store.root}: nothing was "
                "written and the index is as it was; free some space and ingest again"
            ) from None


def _keep_longer_bodies(ix, batch: Batch, existing: dict[str, bytes], report: IngestReport,
                        say: Notify) -> set[str]:
    """Put back the stored post wherever the batch has only a listing's teaser of its body, or
    the text of a Markdown post (`_is_markdown_of`: counted unchanged, without a warning).

    A listing shows the start of each post; read again, it must not cut the posts short.
    Only records from a listing, and only when their body is the start of the stored one
    (listing.is_teaser_of; of a Markdown post's text, which is what a listing shows), so a
    shorter correction from any other source is applied.
    """
    candidates = {post_id for post_id in batch.from_listing
                  if post_id in existing and existing[post_id] != batch.records[post_id].fingerprint}
    kept = set()
    for post_id, stored in _stored(ix, candidates).items():
        if _is_markdown_of(batch.records[post_id], stored):
            batch.records[post_id] = stored  # the same post: unchanged, nothing to warn of
        elif is_teaser_of(batch.records[post_id].body, stored.body_text):
            batch.records[post_id] = stored
            kept.add(post_id)
            report.kept_longer += 1
            _warn(report, say, f"{batch.places[post_id]}: warning: post {post_id!r} is a teaser of the longer body "
                               "in the index; kept the longer body")
    return kept


def _is_markdown_of(listed: Record, post: Record) -> bool:
    """Whether a listing's record has all the text of Markdown post `post`: the listing shows
    the page, so it has the words without the Markdown, and the post must keep it."""
    return post.markdown and not listed.markdown and is_text_of(listed.body, post.body_text)


def _stored(ix, ids: Collection[str]) -> dict[str, Record]:
    """The stored posts with these ids."""
    if not ids:
        return {}
    with ix.reader() as reader:
        return {post_id: record_from_stored(reader.stored_fields(docnum))
                for docnum, post_id in live_columns(reader, "id") if post_id in ids}


def _write(ix, records: Iterable[Record], wait: float, *, replace: Collection[str]) -> None:
    """One commit: posts whose id is in `replace` are updated in place, the rest added."""
    write_records(ix, list(records), replace=replace, wait=wait, limitmb=WRITER_MEMORY_MB)


def _replaced_index(store: IndexStore) -> tuple[PinnedIndex | None, dict[str, bytes]]:
    """The index a rebuild replaces and its posts' fingerprints, for the summary line and the
    teaser rule only: read after every byte of it was checked, and none when it is missing,
    damaged or of another schema version (a rebuild is how such an index is replaced, so it
    never reads one)."""
    if store.is_empty():
        return None, {}
    try:
        if store.marker().schema_version != SCHEMA_VERSION:
            return None, {}
        ix = store.open(full_check=True)
        return ix, fingerprints(ix)
    except IndexDamaged:
        return None, {}


def fingerprints(ix) -> dict[str, bytes]:
    """id -> fingerprint of every live document, read from columns (no stored bodies)."""
    with ix.reader() as reader:
        return {post_id: print_ for _, post_id, print_ in live_columns(reader, "id", "fingerprint")}
