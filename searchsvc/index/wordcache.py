"""A memo of a function of one word, bounded by an estimate of its bytes, not its entries.

The analysis remembers each word it folds or stems. Bounded by entries (100,000 each), three
such caches kept about 6.5 KB for every distinct 1,000-letter word a query brought, up to some
650 MB a server process; a bound in bytes holds whatever the words' lengths.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable

# Bytes an entry costs besides its two strings: its slot in the hash table and its node in
# the order list (OrderedDict), measured with tracemalloc at about 100.
ENTRY_BYTES = 100


class WordCache:
    """`function(word)`, remembered for the most recently used words up to `max_bytes` in all.

    Safe to share between threads: a hit takes no lock (an entry another thread evicts in
    between is still a right answer); a miss is computed outside the lock.
    """

    def __init__(self, function: Callable[[str], str], max_bytes: int):
        self.function = function
        self.max_bytes = max_bytes
        self.nbytes = 0  # the estimate of what the entries hold
        self._entries: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, word: str) -> str:
        entries = self._entries
        value = entries.get(word)
        if value is not None:
            try:
                entries.move_to_end(word)
            except KeyError:
                pass
            return value
        value = self.function(word)
        size = sys.getsizeof(word) + sys.getsizeof(value) + ENTRY_BYTES
        if size > self.max_bytes:
            return value
        with self._lock:
            if word not in entries:
                entries[word] = value
                self.nbytes += size
            while self.nbytes > self.max_bytes:
                old, old_value = entries.popitem(last=False)
                self.nbytes -= sys.getsizeof(old) + sys.getsizeof(old_value) + ENTRY_BYTES
        return value

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.nbytes = 0
