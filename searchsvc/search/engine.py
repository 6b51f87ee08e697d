"""One open index and one searcher per process, kept fresh as the index changes, and the
caches that last as long as one version of the index. The engine only opens, refreshes and
caches: it knows nothing of queries or results.

Opening a searcher per request doubled latency at 10k posts; checking whether the index
changed costs microseconds. After a commit we open a new searcher (Whoosh's `refresh()`
would keep deleted posts visible); a rebuild switches the index to a new generation
directory, which the marker file tells us, and we reopen.

The server runs several threads per process over one Engine, and Whoosh's readers are not
thread-safe: postings and stored fields are shared file objects read with seek then read
(see index/mapped_files.py). Whoever uses a searcher holds the engine's lock: `with
engine.reading() as searcher:`. A search may hold it for the whole search time limit, so
`/healthz` never waits for it (`health()`): it reads what the last look at the index found.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from whoosh.searching import Searcher

from searchsvc.errors import SearchsvcError, SearchTimeout
from searchsvc.index import manifest as manifests
from searchsvc.index.codec import check_postings
from searchsvc.index.commit import SEGMENT_FILE
from searchsvc.index.seam import ForgedData
from searchsvc.index.store import MARKER, IndexStore
from searchsvc.index.toc import PinnedIndex
from searchsvc.search.deadline import Deadline
from searchsvc.search.ranking import weighting

# How often the open commit's file sizes are compared with its manifest (a stat a file), and a
# damaged generation's folder is looked at for a repair.
SIZE_CHECK_SECONDS = 0.2


def _file_key(path: Path, committed: object) -> tuple[int, int, int, int, object] | None:
    """A file by identity: a hard link is the same file; a recycled inode is not (its time)."""
    try:
        st = os.stat(path)
    except OSError:
        return None  # missing: the check says so
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, committed


@dataclass(frozen=True)
class Opened:
    """The commit a look at the index opened: what /healthz and /metrics report."""

    generation: str
    commit: str | None  # None for an index written before manifests kept them
    committed: str | None
    posts: int


class Engine:
    """The index a server or command searches; `searcher()` is always current."""

    def __init__(self, store: IndexStore, *, result_cache_size: int = 256, search_timeout: float | None = 5.0,
                 verify_every: float | None = None):
        self.store = store
        # Seconds between checks of every byte of the open commit, in a background thread (None:
        # only when a commit is opened): bytes damaged on disk after that are found this way.
        self.verify_every = verify_every
        self._verifier: threading.Thread | None = None
        self._closed = threading.Event()
        # Seconds one search may run before it is stopped (None: no limit).
        self.search_timeout = search_timeout
        self.result_cache_size = result_cache_size
        # Guards the searcher, the caches, and every use of a searcher (see reading()).
        self._lock = threading.RLock()
        self._pinned = 0  # reading() blocks open in the thread holding the lock
        self._opened_stamp: object = None
        self._ix: PinnedIndex | None = None
        self._failure: SearchsvcError | None = None  # why the index at _failed_stamp cannot be read
        self._failed_stamp: object = None
        # What the last look at the index found, read without the lock by health(): set (one
        # assignment, so a reader sees the old value or the new) whenever a commit is opened or a
        # failure recorded.
        self._last: Opened | SearchsvcError | None = None
        # Files checked, by identity (device, inode) and committed sum: a publish hard-links the
        # files a replica already had into a new generation, and those need no second reading.
        self._verified: set[tuple[int, int, int, int, object]] = set()
        self._sizes_checked = 0.0
        self._failed_files: object = None
        self._failure_checked = 0.0
        self._marker_key: object = None
        self._generation: str | None = None
        self._searcher: Searcher | None = None
        self._kept: dict[str, Any] = {}
        self._results: OrderedDict[Hashable, Any] = OrderedDict()
        # Told of each failure to open or check the index (the server counts them in /metrics).
        self.on_failure: Callable[[SearchsvcError], None] | None = None

    def searcher(self) -> Searcher:
        """The current searcher, reopened after a commit or a rebuild.

        Raises IndexMissing, NotAnIndex, IndexVersionMismatch or IndexDamaged when the index
        cannot be read. A damaged index is answered from memory until its marker or manifest
        changes (a repair) or a file of its generation does: every request costs two stat calls,
        and a look at the generation's folder every SIZE_CHECK_SECONDS, not a new check.
        """
        with self._lock:
            if self._pinned and self._searcher is not None:
                return self._searcher  # inside reading(): one searcher for the whole block
            # A replaced searcher is not closed: an export in another thread may still be
            # reading its matches from it (a closed reader raises ReaderClosed mid-stream).
            # It is freed when its last user drops it; its segments are memory maps, and
            # their file handles were closed when they were mapped (compound.py).
            stamp = self._stamp()
            if self._failure is not None and stamp == self._failed_stamp and not self._files_changed():
                raise self._failure
            if self._searcher is None or stamp != self._opened_stamp or self._sizes_changed():
                try:
                    ix = self.store.open()
                    fresh = self._verify(ix)
                    searcher = ix.searcher(weighting=weighting())
                    _check_postings(searcher, fresh)
                except ForgedData as e:
                    failure = self.store.damaged(e.problem)
                    self._fail(failure, stamp)
                    raise failure from None
                except SearchsvcError as e:
                    self._fail(e, stamp)
                    raise
                self._failure = None
                self._ix, self._opened_stamp = ix, stamp
                if self.verify_every and self._verifier is None:
                    self._verifier = threading.Thread(target=self._verify_often, name="searchsvc-verify", daemon=True)
                    self._verifier.start()
                self._searcher = searcher
                self._changed()
                found = ix.manifest
                self._last = Opened(ix.name, found.commit_id if found else None, found.committed if found else None,
                                    self._searcher.doc_count())
            return self._searcher

    def health(self) -> Opened:
        """The open commit, as the last look found it, without waiting for a search: every search
        may hold the lock for the whole time limit, and a health check that waits for it makes a
        load balancer drop the replica (4 slow searches: 6 of 15 checks unanswered within 2 s).
        When the lock is free, this look is a new one (a newer commit opened, sizes checked); when
        a search holds it, that search's own look opened and checked the commit it reads, so that
        answer stands. Raises the index's error (IndexDamaged...) as searcher() does.
        """
        # Before the first look there is nothing to report: wait for the look in progress (the
        # first open checks every byte), but never for the search that follows it.
        while not self._lock.acquire(timeout=0.05):
            if self._last is not None:
                return self._reported(self._last)
        try:
            self.searcher()
            assert self._last is not None
            return self._reported(self._last)
        finally:
            self._lock.release()

    @staticmethod
    def _reported(last: Opened | SearchsvcError) -> Opened:
        if isinstance(last, SearchsvcError):
            raise last
        return last

    def _verify(self, ix: PinnedIndex) -> set[str] | None:
        """Every byte of each file of the commit this process has not checked before: a file
        is checked once (Whoosh never rewrites one), so after a commit only its new files are.
        Returns their names (None: an index without a manifest, every file new)."""
        if ix.manifest is None:
            return None
        folder = Path(ix.storage.folder)
        keys = {name: _file_key(folder / name, s) for name, s in ix.manifest.files.items()}
        unchecked = [name for name, key in keys.items() if key is None or key not in self._verified]
        bad = list(manifests.problems(folder, ix.manifest, full=True, names=unchecked))
        if bad:
            raise self.store.damaged(*bad)
        self._verified.update(key for name in unchecked if (key := keys[name]) is not None)
        return set(unchecked)

    def _verify_often(self) -> None:
        """Every `verify_every` seconds, check every byte of the open commit (outside the lock:
        searches go on meanwhile); on a mismatch, answer IndexDamaged until the index changes."""
        assert self.verify_every is not None
        while not self._closed.wait(self.verify_every):
            with self._lock:
                ix, stamp = self._ix, self._opened_stamp
            if ix is None or ix.manifest is None:
                continue
            bad = list(manifests.problems(Path(ix.storage.folder), ix.manifest, full=True))
            if bad:
                with self._lock:
                    if self._opened_stamp == stamp:
                        self._fail(self.store.damaged(*bad), stamp)

    def _fail(self, failure: SearchsvcError, stamp: object) -> None:
        """Answer `failure` until the index changes, or a file of the generation does (copied
        back from a backup); check every file again then (a file checked before may be the one
        damaged since)."""
        self._failure, self._failed_stamp = failure, stamp
        self._last = failure
        if self.on_failure is not None:
            self.on_failure(failure)
        self._failed_files = self._files_stamp()
        self._searcher = None  # never a searcher over files whose check failed
        self._verified.clear()

    def _files_stamp(self) -> object:
        """Name, size, change time and inode of every file of the current generation."""
        if self._generation is None:
            return None
        try:
            found = []
            with os.scandir(self.store.generation_path(self._generation)) as entries:
                for entry in entries:
                    st = entry.stat()
                    found.append((entry.name, st.st_size, st.st_mtime_ns, st.st_ino))
            return sorted(found)
        except OSError:
            return None

    def _files_changed(self) -> bool:
        """Whether a file of the failed generation changed since the failure (looked at every
        SIZE_CHECK_SECONDS at most: a damaged index is answered from memory in between)."""
        now = time.monotonic()
        if now - self._failure_checked < SIZE_CHECK_SECONDS:
            return False
        self._failure_checked = now
        return self._files_stamp() != self._failed_files

    def _sizes_changed(self) -> bool:
        """Whether a file of the open commit changed size (cut or replaced under us), looked at
        every SIZE_CHECK_SECONDS at most: a cut segment must give a 503, not a wrong answer with a 200."""
        now = time.monotonic()
        if self._ix is None or self._ix.manifest is None or now - self._sizes_checked < SIZE_CHECK_SECONDS:
            return False
        self._sizes_checked = now
        return next(manifests.problems(Path(self._ix.storage.folder), self._ix.manifest, full=False), None) is not None

    @contextmanager
    def reading(self, searcher: Searcher | None = None, deadline: Deadline | None = None) -> Iterator[Searcher]:
        """Hold the lock and use one searcher for the whole block: the current one, or
        `searcher`, taken from an earlier block (an export reads its matches in batches
        from the searcher that found them). Calls to searcher() inside the block return
        the same searcher, so a commit never swaps it in the middle of a search.

        With a `deadline`, the wait for the lock counts against it (SearchTimeout when it is not
        free in time): a search waited for the ones before it and then had a limit of its own,
        so of 4 searches of 1.7 s sent at once to one process, with a limit of 5 s, the last
        answered after 6.2 s; now a search answers within its limit, 503 if it must.

        Raises the index errors of searcher() (never with `searcher` given), and IndexDamaged
        for a forged file met in the block (answered until the index changes).
        """
        left = None if deadline is None else deadline.remaining()
        if not self._lock.acquire(timeout=-1 if left is None else left):
            assert deadline is not None and deadline.timeout is not None
            raise SearchTimeout(f"the server was busy with other searches for {deadline.timeout:g} s, the search "
                                "time limit, and this one was not started; retry in a few seconds")
        try:
            try:
                if searcher is not None:
                    yield searcher
                    return
                current = self.searcher()
                self._pinned += 1
                try:
                    yield current
                finally:
                    self._pinned -= 1
            except ForgedData as e:  # a forged stored document, term or postings array: the index is damaged
                failure = self.store.damaged(e.problem)
                self._fail(failure, self._stamp())
                raise failure from None
        finally:
            self._lock.release()

    def _changed(self) -> None:
        self._results.clear()
        self._kept.clear()

    # Caches of this index version, emptied when it changes. Use them inside reading(), so the
    # version cannot change between looking a value up and storing it.

    def cached(self, key: Hashable) -> Any:
        """The result remembered for `key` (least recently used ones are forgotten), or None.

        Many people run the same few searches at a news moment; the index changes rarely.
        """
        with self._lock:
            if key not in self._results:
                return None
            self._results.move_to_end(key)
            return self._results[key]

    def cache(self, key: Hashable, value: Any) -> None:
        """Remember a result for `key` until the index changes or it is the least recently used."""
        with self._lock:
            self._results[key] = value
            self._results.move_to_end(key)
            while len(self._results) > self.result_cache_size:
                self._results.popitem(last=False)

    def kept(self, name: str) -> Any:
        """What `keep(name, ...)` stored for this index version (never evicted), or None."""
        with self._lock:
            return self._kept.get(name)

    def keep(self, name: str, value: Any) -> None:
        """Keep a value derived from this index version (doc values, the archive's contents)."""
        with self._lock:
            self._kept[name] = value

    def generation(self) -> str:
        """The current generation's name, part of every cache key and export header."""
        with self._lock:
            self.searcher()
            assert self._ix is not None
            return self._ix.name

    def commit(self) -> tuple[str | None, str | None]:
        """(commit id, commit time) of the open commit (manifest.Manifest.commit_id); Nones for
        an index written before manifests kept them."""
        with self._lock:
            self.searcher()
            assert self._ix is not None
            found = self._ix.manifest
            return (found.commit_id, found.committed) if found is not None else (None, None)

    def _stamp(self) -> object:
        """What changes when a commit or a rebuild is made: the marker and the current manifest."""
        stamps = []
        for path in (self.store.root / MARKER, self._manifest_path()):
            try:
                st = os.stat(path)
                stamps.append((st.st_mtime_ns, st.st_ino, st.st_size))
            except (FileNotFoundError, NotADirectoryError, TypeError):
                stamps.append(None)
        return tuple(stamps)

    def _manifest_path(self) -> Path | None:
        """The current generation's manifest, from the marker (read again only when it changed)."""
        try:
            st = os.stat(self.store.root / MARKER)
        except OSError:
            return None
        key = (st.st_mtime_ns, st.st_ino, st.st_size)
        if key != self._marker_key:
            try:
                self._marker_key, self._generation = key, self.store.marker().generation
            except SearchsvcError:
                self._marker_key, self._generation = key, None
        return None if self._generation is None else manifests.path_of(self.store.root, self._generation)

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            if self._searcher is not None:
                self._searcher.close()
                self._searcher = None
            # The postings arrays map the segment files: dropped here, the maps go with them
            # (a closed engine kept a small disk from being unmounted).
            self._kept.clear()


def _check_postings(searcher: Searcher, fresh: set[str] | None) -> None:
    """The postings arrays of each segment whose file this process has just checked, read as a
    search reads them (postings.SegmentPostings checks every array): a forged array, its sums
    recomputed, is damage before any search or /healthz says ok. Once a segment, as the bytes."""
    ids = None if fresh is None else {m[1] for name in fresh if (m := SEGMENT_FILE.match(name))}
    check_postings(searcher.reader(), ids)
