"""One open index and one searcher per process, kept fresh as the index changes.

Opening a searcher per request doubled latency at 10k posts; checking whether the index
changed costs microseconds. After a commit we open a new searcher (Whoosh's `refresh()`
would keep deleted posts visible); a rebuild switches the index to a new generation
directory, which the marker file tells us, and we reopen.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict

from whoosh import index as whoosh_index
from whoosh.qparser import QueryParser
from whoosh.searching import Searcher

from .query import make_parser
from .ranking import weighting
from .store import MARKER, IndexStore


class Engine:
    """The index a server or command searches; `searcher()` is always current."""

    def __init__(self, store: IndexStore, *, result_cache_size: int = 256, search_timeout: float | None = 5.0):
        self.store = store
        # Seconds one search may run before it is stopped (None: no limit).
        self.search_timeout = search_timeout
        self.result_cache_size = result_cache_size
        self._lock = threading.Lock()
        self._marker_stamp: tuple[int, int] | None = None
        self._ix: whoosh_index.Index | None = None
        self._searcher: Searcher | None = None
        self._parsers: dict[str, QueryParser] = {}
        self._memo: dict[str, tuple[int, object]] = {}
        # Bumped whenever the searcher changes (a commit or a rebuild): the key of every cache.
        self.version = 0
        self._results: OrderedDict[object, object] = OrderedDict()

    def searcher(self) -> Searcher:
        """The current searcher, reopened after a rebuild and refreshed after a commit.

        Raises IndexMissing, NotAnIndex or IndexVersionMismatch when the index cannot be read.
        """
        with self._lock:
            stamp = self._stamp()
            if self._searcher is None or stamp != self._marker_stamp:
                ix = self.store.open()
                old = self._searcher
                searcher = ix.searcher(weighting=weighting())
                self._ix, self._searcher, self._marker_stamp = ix, searcher, stamp
                self._changed()
                if old is not None:
                    old.close()
            elif self._ix is not None and self._ix.latest_generation() != self._searcher.reader().generation():
                # Not Searcher.refresh(): it reuses segment readers and keeps their old
                # deletions, so deleted and replaced (updated) posts stayed visible.
                old = self._searcher
                self._searcher = self._ix.searcher(weighting=weighting())
                self._changed()
                old.close()
            return self._searcher

    def _changed(self) -> None:
        self.version += 1
        self._results.clear()
        self._memo.clear()

    def cached_result(self, key: object, compute):  # noqa: ANN001, ANN201 - any value
        """`compute()` for `key`, remembered (LRU) until the index changes.

        Many people run the same few searches at a news moment; the index changes rarely.
        """
        self.searcher()  # refresh first: a commit must empty the cache before we read it
        with self._lock:
            if key in self._results:
                self._results.move_to_end(key)
                return self._results[key]
        value = compute()
        with self._lock:
            self._results[key] = value
            while len(self._results) > self.result_cache_size:
                self._results.popitem(last=False)
        return value

    def parser(self, operator: str = "and") -> QueryParser:
        """The query parser for this index's schema (built once per operator)."""
        if operator not in self._parsers:
            self._parsers[operator] = make_parser(self.searcher().schema, operator=operator)
        return self._parsers[operator]

    def memo(self, name: str, compute):  # noqa: ANN001, ANN201 - any value
        """`compute(searcher)`, kept until the index changes (summaries, author lists)."""
        searcher = self.searcher()
        cached = self._memo.get(name)
        if cached is not None and cached[0] == self.version:
            return cached[1]
        value = compute(searcher)
        self._memo[name] = (self.version, value)
        return value

    def generation(self) -> str:
        """The current generation's name, part of every cache key and export header."""
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
