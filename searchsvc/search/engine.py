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
engine.reading() as searcher:`.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from typing import Any

from whoosh import index as whoosh_index
from whoosh.searching import Searcher

from searchsvc.index.store import MARKER, IndexStore
from searchsvc.search.ranking import weighting


class Engine:
    """The index a server or command searches; `searcher()` is always current."""

    def __init__(self, store: IndexStore, *, result_cache_size: int = 256, search_timeout: float | None = 5.0):
        self.store = store
        # Seconds one search may run before it is stopped (None: no limit).
        self.search_timeout = search_timeout
        self.result_cache_size = result_cache_size
        # Guards the searcher, the caches, and every use of a searcher (see reading()).
        self._lock = threading.RLock()
        self._pinned = 0  # reading() blocks open in the thread holding the lock
        self._marker_stamp: tuple[int, int] | None = None
        self._ix: whoosh_index.Index | None = None
        self._searcher: Searcher | None = None
        self._kept: dict[str, Any] = {}
        self._results: OrderedDict[Hashable, Any] = OrderedDict()

    def searcher(self) -> Searcher:
        """The current searcher, reopened after a rebuild and refreshed after a commit.

        Raises IndexMissing, NotAnIndex or IndexVersionMismatch when the index cannot be read.
        """
        with self._lock:
            if self._pinned and self._searcher is not None:
                return self._searcher  # inside reading(): one searcher for the whole block
            # A replaced searcher is not closed: an export in another thread may still be
            # reading its matches from it (a closed reader raises ReaderClosed mid-stream).
            # It is freed when its last user drops it; its segments are memory maps, and
            # their file handles were closed when they were mapped (compound.py).
            stamp = self._stamp()
            if self._searcher is None or stamp != self._marker_stamp:
                ix = self.store.open()
                searcher = ix.searcher(weighting=weighting())
                self._ix, self._searcher, self._marker_stamp = ix, searcher, stamp
                self._changed()
            elif self._ix is not None and self._ix.latest_generation() != self._searcher.reader().generation():
                # Not Searcher.refresh(): it reuses segment readers and keeps their old
                # deletions, so deleted and replaced (updated) posts stayed visible.
                self._searcher = self._ix.searcher(weighting=weighting())
                self._changed()
            return self._searcher

    @contextmanager
    def reading(self, searcher: Searcher | None = None) -> Iterator[Searcher]:
        """Hold the lock and use one searcher for the whole block: the current one, or
        `searcher`, taken from an earlier block (an export reads its matches in batches
        from the searcher that found them). Calls to searcher() inside the block return
        the same searcher, so a commit never swaps it in the middle of a search.

        Raises the index errors of searcher() (never with `searcher` given).
        """
        with self._lock:
            if searcher is not None:
                yield searcher
                return
            current = self.searcher()
            self._pinned += 1
            try:
                yield current
            finally:
                self._pinned -= 1

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
            return self.store.marker().generation

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.store.root / MARKER)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_ino)

    def close(self) -> None:
        with self._lock:
            if self._searcher is not None:
                self._searcher.close()
                self._searcher = None
