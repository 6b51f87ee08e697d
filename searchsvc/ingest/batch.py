"""Ingestion: files in, validated and de-duplicated records, one commit to the index.

Reading and validation happen before the write lock is taken, so a slow parse never
blocks another writer. Unchanged records are recognised by their fingerprint and not
rewritten, which makes re-ingesting an archive cheap.
"""

from __future__ import annotations

import errno
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

from searchsvc.errors import DiskFull, IndexDamaged, InvalidRecord
from searchsvc.index.columns import live_columns
from searchsvc.index.schema import SCHEMA_VERSION, record_from_stored
from searchsvc.index.store import IndexStore
from searchsvc.index.toc import PinnedIndex
from searchsvc.index.writer import write_records
from searchsvc.ingest import addresses
from searchsvc.ingest.bounded import DEFAULT_LIMITS, Limits
from searchsvc.ingest.fieldnames import FieldNames, Reading
from searchsvc.ingest.follow import Crawl, Unchanged, is_url
from searchsvc.ingest.listing import is_text_of
from searchsvc.ingest.sources import Item, Notice, Problem, Skipped, SourceFile, discover, read_source
from searchsvc.markup import MAX_HTML_CHARS, MAX_SOURCE_CHARS
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
    urls: int = 0  # addresses fetched (or tried) by `ingest URL` and `follow`
    not_modified: int = 0
    fetch_errors: int = 0
    written: bool = False
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Columns read as fields ("headline -> title") and columns not read ("title"), over all
    # files, in the order first met (ordered sets).
    columns: dict[str, None] = field(default_factory=dict)
    not_read: dict[str, None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.invalid == 0 and self.fetch_errors == 0

    def summary(self, *, rebuild: bool = False) -> str:
        parts = [
            f"{self.new} new",
            f"{self.updated} updated",
            f"{self.unchanged} unchanged",
        ]
        if self.kept_longer:
            parts.append(f"{self.kept_longer} {'teaser' if self.kept_longer == 1 else 'teasers'} kept aside")
        if rebuild:
            parts.append(f"{self.removed} removed")
        parts += [f"{self.invalid} invalid", f"{self.skipped_files} skipped files"]
        # "Read 2 files: ...", "Fetched 12 URLs (4 not modified, 1 failed): ...", or both joined by "and".
        rebuilt = rebuild and self.written
        heads = []
        if self.files or not self.urls:
            heads.append(("Rebuilt index from " if rebuilt else "Read ") + ("1 file" if self.files == 1
                                                                           else f"{self.files} files"))
        if self.urls:
            web = "1 URL" if self.urls == 1 else f"{self.urls} URLs"
            heads.append(f"{'fetched' if heads else ('Rebuilt index from fetched' if rebuilt else 'Fetched')} {web} "
                         f"({self.not_modified} not modified, {self.fetch_errors} failed)")
        columns = ""
        if self.columns or self.not_read:
            columns = " (columns: " + "; ".join(filter(None, [
                ", ".join(self.columns), self.not_read and "not read: " + ", ".join(self.not_read)])) + ")"
        return " and ".join(heads) + ": " + ", ".join(parts) + columns


@dataclass
class Batch:
    """Valid records of a run by id (the last one wins, except that a teaser never replaces a
    longer body), where each came from, and which of them are teasers (a listing's, a feed's
    summary: bodies that may be only the start of the post)."""

    records: dict[str, Record] = field(default_factory=dict)
    places: dict[str, str] = field(default_factory=dict)
    teasers: set[str] = field(default_factory=set)  # after write_batch: the posts the index now holds as teasers
    sources: dict[str, str] = field(default_factory=dict)  # id -> the file or URL it came from
    unchanged: set[str] = field(default_factory=set)  # posts of URLs that answered 304 Not Modified
    failed_sources: set[str] = field(default_factory=set)  # files and URLs with an invalid record
    # file or URL -> ids of its valid records, in order (a dict as an ordered set: a list's `in`
    # made an ingest quadratic in the records of one file, 60 s for 80,000 tiny records)
    given: dict[str, dict[str, None]] = field(default_factory=dict)
    # Posts whose version in the index is itself only a teaser (a crawl knows, from its state): a
    # newer teaser replaces it, even a shorter one (the listing's text changed, the page still fails).
    stored_teasers: set[str] = field(default_factory=set)

    def ids_by_source(self) -> dict[str, list[str]]:
        """The ids of the valid records each file or URL gave, kept or not (a listing's teasers
        too): what a URL answered 304 stands for next time."""
        return {source: list(ids) for source, ids in self.given.items()}


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
    fields: FieldNames | None = None,
) -> Batch:
    """Read and validate every record under `paths`; problems go to `report` and `notify`.

    Columns are read as fields by `fields` (by default, the synonyms alone); each file that had
    any is noted once, with how many of its records had them.

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

    names = fields or FieldNames()
    batch = Batch()
    seen: set[str] = set()
    for source in sources:
        rankings = 0
        records = 0
        readings: Counter[Reading] = Counter()
        try:
            for item in read_source(source, progress, limits):
                if isinstance(item, Problem):
                    _problem(report, say, str(item))
                    continue
                rankings += has_export_ranking(item.data)
                records += 1
                data, read = names.read(item.data)
                readings.update(read)
                add_item(batch, Item(item.path, item.line, data, teaser=item.teaser), report, say, dayfirst, read)
        except MemoryError:
            # Within the bounds this takes a machine with less memory than they need; the
            # records of the other files are still kept.
            _problem(report, say, f"{source.path}: not enough memory to read it: its records may be up to "
                                  f"{limits.record_size()}")
        if rankings:
            records = "1 record has" if rankings == 1 else f"{rankings} records have"
            _warn(report, say, f"{source.path}: note: {records} a top-level {EXPORT_RANKING!r}, the ranking "
                               "a search export adds: it is not stored as post data")
        if readings:
            _warn(report, say, f"{source.path}: note: {_columns_note(readings, records, names, report)}")
            seen.update(target for _, target in readings if target is not None)
    for mapped in names.explicit.values():
        if mapped.target not in seen and mapped.source.strip().lower() != mapped.target:
            _warn(report, say, f"note: no record has a column {mapped.source!r} ({mapped.origin})")
    return batch


def read_web(batch: Batch, crawl: Crawl, urls: Iterable[str], report: IngestReport, *, dayfirst: bool = False,
             notify: Notify | None = None) -> None:
    """Add the posts of a crawl (ingest/follow.py) to `batch`; each fetch error is a problem."""
    say = notify or (lambda line: None)
    for found in crawl.read(urls):
        if isinstance(found, Unchanged):
            report.not_modified += 1
            batch.unchanged.update(found.ids)
        elif isinstance(found, Problem):
            batch.failed_sources.add(found.path)
            report.fetch_errors += 1
            _problem(report, say, str(found), invalid=False)
        elif isinstance(found, Notice):
            _warn(report, say, str(found))
        else:
            add_item(batch, found, report, say, dayfirst)
    report.urls += crawl.visited
    if crawl.other_hosts:
        _warn(report, say, f"note: {crawl.other_hosts} links to other sites were not followed")


def _columns_note(readings: Counter[Reading], records: int, names: FieldNames, report: IngestReport) -> str:
    """What a file's columns were read as ("columns read as fields: headline -> title (2 of 3
    records)"), also added to the report's summary."""
    read, not_read = [], []
    for (column, target), n in readings.items():
        share = "" if n == records else f" ({n} of {records} records)"
        if target is None:
            report.not_read[column] = None
            not_read.append(f"{column} ({names.explicit[column.strip().lower()].origin}){share}")
        else:
            report.columns[f"{column} -> {target}"] = None
            read.append(f"{column} -> {target}{share}")
    note = f"columns read as fields: {', '.join(read)}"
    return note + (f"; not read: {', '.join(not_read)}" if not_read else "")


def add_item(batch: Batch, item: Item, report: IngestReport, say: Notify, dayfirst: bool,
             read: tuple[Reading, ...] = ()) -> None:
    """Validate one raw record into `batch`; an invalid one is a problem of `report`."""
    try:
        record = record_from_mapping(item.data, dayfirst=dayfirst, site=item.site)
    except InvalidRecord as e:
        batch.failed_sources.add(item.path)
        # Said with the record's renamed columns: "missing required field 'title'" of a record
        # whose title was read from an empty `headline` names the column that was read.
        columns = ", ".join(f"{c} -> {t}" for c, t in read if t is not None)
        _problem(report, say, f"{item.place}: {e.reason}" + (f" (columns: {columns})" if columns else ""))
        return
    elsewhere = _other_site(item, record)
    if elsewhere:
        _warn(report, say, f"{item.place}: warning: skipped {record.title!r}: {elsewhere}, not to {item.site} (the "
                           "site it was read from)")
        return
    batch.given.setdefault(item.path, {})[record.id] = None
    earlier = batch.places.get(record.id)
    if earlier is not None:
        if item.teaser and _is_markdown_of(record, batch.records[record.id]):
            _warn(report, say, f"{item.place}: warning: post {record.id!r} is the text of the Markdown post at "
                               f"{earlier}; kept the Markdown")
            return
        # A teaser never replaces the post's own text read in this run (a front page showing whole
        # posts has share buttons besides), and of two teasers the longer one is kept.
        if item.teaser and (record.id not in batch.teasers
                            or is_shorter(record.body, batch.records[record.id].body_text)):
            report.kept_longer += 1
            if not is_url(item.path):  # a crawl keeps every teaser aside for its page: counted, not told
                _warn(report, say, f"{item.place}: warning: post {record.id!r} is a teaser of the longer body at "
                                   f"{earlier}; kept the longer body")
            return
        # (A feed's full text and the page of one post, in one crawl, are the same post: not told.)
        if (record.id not in batch.teasers or item.teaser) and not (
                is_url(item.path) and is_url(batch.sources[record.id])):
            _warn(report, say, f"{item.place}: warning: id {record.id!r} also at {earlier}; the last one wins")
        del batch.records[record.id]  # re-insert so the order is that of the winner
    batch.records[record.id] = record
    batch.places[record.id] = item.place
    batch.sources[record.id] = item.path
    if item.teaser:
        batch.teasers.add(record.id)
    else:
        batch.teasers.discard(record.id)


def _other_site(item: Item, record: Record) -> str | None:
    """The site a record read from the web names as its address, when that is not the site it was
    read from. Its id derives from that address: a feed entry, a listing's teaser or a page on
    site B naming site A's post would replace A's post with B's text (a forged retraction under a
    real organisation's address). A post is replaced only by its own site, or by a file the
    operator ingests (`item.site` None)."""
    if item.site is None or record.url is None:
        return None
    try:
        named = addresses.parse(record.url).site
    except addresses.BadAddress as e:
        # Browsers read `https://victim.example\\statement` and `https://x@victim.example/` as
        # victim.example's: an address read two ways is no post of this site.
        return f"it links to {record.url[:200]!r}, which is read two ways ({e})"
    if any(addresses.same_but_www(named, own) for own in (item.site, *item.aliases)):
        return None  # example.org's feed links to www.example.org: one site
    return f"it links to {named}"


def is_shorter(teaser: str, body: str) -> bool:
    """Whether a teaser's text is no longer than a body, spacing aside (a listing joins lines as
    the post's page does not): a teaser never replaces a body at least as long, the post's own."""
    return len(" ".join(teaser.split())) <= len(" ".join(body.split()))


def _warn(report: IngestReport, say: Notify, line: str) -> None:
    if len(report.warnings) < KEPT_LINES:
        report.warnings.append(line)
    say(line)


def _problem(report: IngestReport, say: Notify, line: str, *, invalid: bool = True) -> None:
    report.invalid += invalid
    if len(report.problems) < KEPT_LINES:
        report.problems.append(line)
    say(line)


def write_batch(
    store: IndexStore, batch: Batch, report: IngestReport, *, rebuild: bool, wait: float,
    notify: Notify | None = None,
) -> None:
    """Add new records, update changed ones, leave unchanged ones; or rebuild from the batch.

    A listing's teaser of a post the index holds with a longer body leaves that post as it
    is (a warning to `notify`, counted in `report.kept_longer`). A Markdown post too long to
    render is written as plain text, with a warning (rendered by the writers, so told after).
    """
    say = notify or (lambda line: None)
    with store.locked(wait):
        if rebuild:
            ix, existing = _replaced_index(store)
        else:
            ix = store.open_for_writing()
            existing = fingerprints(ix)
        kept = _keep_longer_bodies(ix, batch, existing, report, say) if ix is not None and existing else set()
        # Posts of pages that answered 304: unchanged, and kept by a rebuild as the index holds them.
        not_modified = {i for i in batch.unchanged if i in existing and i not in batch.records}
        report.unchanged += len(not_modified)
        if rebuild and not_modified and ix is not None:
            batch.records.update(_stored(ix, not_modified))
            kept |= not_modified
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
                    unrendered = _write(fresh, batch.records.values(), wait, replace=set())
                    store.make_current(name)
                except BaseException:
                    store.discard_generation(name)
                    raise
                report.written = True
                _warn_unrendered(batch, unrendered, report, say)
                return
            changed = [r for r in batch.records.values() if existing.get(r.id) != r.fingerprint]
            if changed:
                unrendered = _write(ix, changed, wait, replace=existing.keys())
                report.written = True
                _warn_unrendered(batch, unrendered, report, say)
        except OSError as e:
            if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise DiskFull(
                f"no space left on the disk while writing the index at {store.root}: nothing was "
                "written and the index is as it was; free some space and ingest again"
            ) from None


def _keep_longer_bodies(ix, batch: Batch, existing: dict[str, bytes], report: IngestReport,
                        say: Notify) -> set[str]:
    """Put back the stored post wherever the batch has only a teaser (a listing's, a feed's summary)
    no longer than the stored body's text: read again, a listing or a feed must not cut posts
    short. A teaser with all the text of a Markdown post is that post (unchanged, no warning)."""
    candidates = {post_id for post_id in batch.teasers
                  if post_id in existing and existing[post_id] != batch.records[post_id].fingerprint}
    kept = set()
    for post_id, stored in _stored(ix, candidates).items():
        if _is_markdown_of(batch.records[post_id], stored):
            batch.records[post_id] = stored  # the same post: unchanged, nothing to warn of
            batch.teasers.discard(post_id)
        elif post_id in batch.unchanged or (post_id not in batch.stored_teasers
                                            and is_shorter(batch.records[post_id].body, stored.body_text)):
            # (its page answered 304 Not Modified: the index holds the page's text)
            place = batch.places[post_id]
            batch.records[post_id] = stored
            batch.teasers.discard(post_id)  # what the index keeps is the stored post, not this teaser
            kept.add(post_id)
            report.kept_longer += 1
            if not is_url(batch.sources[post_id]):
                _warn(report, say, f"{place}: warning: post {post_id!r} is a teaser of the longer body in the "
                                   "index; kept the longer body")
    return kept


def _is_markdown_of(teaser: Record, post: Record) -> bool:
    """Whether a teaser has all the text of Markdown post `post`: a listing shows the page, so it
    has the words without the Markdown, and the post must keep it."""
    return post.markdown and not teaser.markdown and is_text_of(teaser.body, post.body_text)


def _stored(ix, ids: Collection[str]) -> dict[str, Record]:
    """The stored posts with these ids."""
    if not ids:
        return {}
    with ix.reader() as reader:
        return {post_id: record_from_stored(reader.stored_fields(docnum))
                for docnum, post_id in live_columns(reader, "id") if post_id in ids}


def _write(ix, records: Iterable[Record], wait: float, *, replace: Collection[str]) -> list[str]:
    """One commit: posts whose id is in `replace` are updated in place, the rest added; the ids
    of Markdown posts written as plain text, too long to render."""
    return write_records(ix, list(records), replace=replace, wait=wait, limitmb=WRITER_MEMORY_MB)


def _warn_unrendered(batch: Batch, ids: Iterable[str], report: IngestReport, say: Notify) -> None:
    """A warning at each Markdown post of the batch written as plain text (markup.py's bounds):
    its record is kept, and its page shows the source as written."""
    for post_id in ids:
        place = batch.places.get(post_id)
        if place is None:  # a post kept as the index held it (a page that answered 304)
            continue
        size = len(batch.records[post_id].body)
        why = (f"is {size:,} characters long, more than the {MAX_SOURCE_CHARS:,} rendered" if size > MAX_SOURCE_CHARS
               else f"would render to more than {MAX_HTML_CHARS:,} characters of HTML")
        _warn(report, say, f"{place}: warning: the Markdown of post {post_id!r} {why}; it is shown and searched "
                           "as plain text")


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
