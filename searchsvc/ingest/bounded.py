"""Reading a file within bounds, so that no input can take the memory: a line or a file read
whole holds at most `Limits.max_record_bytes`, and a .gz file is stopped once it inflates
more than `Limits.max_gzip_ratio` times what was read of it.

Before these bounds a 1 GB line of JSON Lines was read whole (a MemoryError, and the other
files' records were lost with it) and a 2 MB .json.gz inflated to 2 GB in memory.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from searchsvc import settings

# A .gz file may inflate to this much whatever its ratio: tiny files of repeated text
# (a header row, a few short records) compress far better than text at large.
RATIO_FREE_BYTES = 1_000_000
# Whole files and the rest of an oversized line are read this much at a time.
CHUNK = 1 << 20


@dataclass(frozen=True)
class Limits:
    """The bounds of one ingest (SEARCHSVC_MAX_RECORD_BYTES, SEARCHSVC_MAX_GZIP_RATIO)."""

    max_record_bytes: int = settings.MAX_RECORD_BYTES.value(settings.MAX_RECORD_BYTES.default)
    max_gzip_ratio: int = settings.MAX_GZIP_RATIO.value(settings.MAX_GZIP_RATIO.default)

    @classmethod
    def from_environ(cls) -> Limits:
        return cls(settings.MAX_RECORD_BYTES.from_environ(), settings.MAX_GZIP_RATIO.from_environ())

    def record_size(self) -> str:
        return f"{settings.show_size(self.max_record_bytes)} ({settings.MAX_RECORD_BYTES.envvar})"


DEFAULT_LIMITS = Limits()


class TooLarge(Exception):
    """A file or line is past a bound; the message says which, for `FILE[:LINE]: message`."""


class BoundedInput:
    """A file's content (through gzip when its name ends in .gz), stopped by `TooLarge` when a
    .gz file inflates past its ratio."""

    def __init__(self, raw: BinaryIO, path: str, limits: Limits):
        self.raw = raw
        self.limits = limits
        self.compressed = path.lower().endswith(".gz")
        self._stream: BinaryIO = gzip.open(raw, "rb") if self.compressed else raw  # type: ignore[assignment]
        self._inflated = 0

    def read(self, size: int) -> bytes:
        return self._counted(self._stream.read(size))

    def readline(self, size: int) -> bytes | bytearray:
        """A line of at most `size` bytes, read a chunk at a time so that a bomb is stopped early."""
        first = self._counted(self._stream.readline(min(size, CHUNK)))
        if len(first) < min(size, CHUNK) or first.endswith(b"\n"):
            return first  # the whole line (or the end of the file): almost every line
        line = bytearray(first)  # grows in place: no second copy of a long line
        del first
        while len(line) < size and not line.endswith(b"\n"):
            chunk = self._counted(self._stream.readline(min(size - len(line), CHUNK)))
            if not chunk:
                break
            line += chunk
        return line

    def _counted(self, data: bytes) -> bytes:
        if self.compressed:
            self._inflated += len(data)
            # Against what was read of the file so far, so a bomb is stopped within its first
            # MBs rather than at ratio x the whole file.
            allowed = max(RATIO_FREE_BYTES, self.limits.max_gzip_ratio * self.raw.tell())
            if self._inflated > allowed:
                raise TooLarge(
                    f"stopped reading: it inflates to more than {self.limits.max_gzip_ratio} times its "
                    f"compressed size ({settings.MAX_GZIP_RATIO.envvar}), as a decompression bomb does")
        return data

    def read_whole(self, limit: int | None = None, bound: str | None = None) -> bytearray:
        """Everything, or `TooLarge` as soon as it is more than a record may be, or `limit` bytes
        (described as `bound`), before reading anything when the file's size says so."""
        if limit is None:
            limit, bound = self.limits.max_record_bytes, self.limits.record_size()
        if not self.compressed and os.fstat(self.raw.fileno()).st_size > limit:
            raise self._too_large(bound)
        data = bytearray()
        while chunk := self.read(min(CHUNK, limit + 1 - len(data))):
            data += chunk
            if len(data) > limit:
                raise self._too_large(bound)
        return data

    def _too_large(self, bound: str | None) -> TooLarge:
        once = " once decompressed" if self.compressed else ""
        return TooLarge(f"too large to read whole: more than {bound}{once}; split it"
                        + (", or write it as JSON Lines, which is read a line at a time"
                           if bound == self.limits.record_size() else ""))

    def lines(self) -> Iterator[bytes | bytearray | None]:
        """Each line, or None for a line longer than a record may be: its start is read and the
        rest skipped a chunk at a time, so it never is in memory whole."""
        limit = self.limits.max_record_bytes
        while line := self.readline(limit + 1):
            if len(line) <= limit or (len(line) == limit + 1 and line.endswith(b"\n")):
                yield line
                continue
            del line
            while (rest := self.readline(CHUNK)) and not rest.endswith(b"\n"):
                pass
            yield None

    def close(self) -> None:
        if self.compressed:
            self._stream.close()
