"""Read index segments straight from the memory map, without a private copy of each file.

Whoosh maps each compound segment file into memory, then wraps every file inside it in a
`BufferFile`, whose constructor does `BytesIO(buf)`: a private copy of the whole file. A
server worker on 104,000 posts held 790 MB of such copies (the postings and the terms of
20 segments) on top of the shared map, and every worker its own. `ViewFile` reads the
map through a position instead, so the pages stay shared between workers and the kernel
can evict them.

seam.py puts it in Whoosh's place (whoosh-reloaded 2.7.5, which we pin) before an index is
opened.
"""

from __future__ import annotations

from typing import Any

from whoosh.filedb.structfile import BufferFile


class _ViewReader:
    """The file methods StructFile uses (read, readline, readinto, seek, tell), over a
    memoryview, copying only what is read."""

    def __init__(self, view: Any):
        self._view = memoryview(view)
        self._pos = 0

    def read(self, size: int | None = -1) -> bytes:
        start, end = self._pos, len(self._view)
        if size is not None and size >= 0:
            end = min(end, start + size)
        if end <= start:
            return b""  # at or past the end (a seek may go there), as a file
        self._pos = end
        return self._view[start:end].tobytes()

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        out = bytearray()
        while size is None or size < 0 or len(out) < size:
            chunk = self.read(256)
            if not chunk:
                break
            newline = chunk.find(b"\n")
            if newline >= 0:
                self._pos -= len(chunk) - newline - 1
                out += chunk[: newline + 1]
                break
            out += chunk
        if size is not None and 0 <= size < len(out):
            self._pos -= len(out) - size
            del out[size:]
        return bytes(out)

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self._pos, len(self._view))[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        pass


class ViewFile(BufferFile):
    def __init__(self, buf: Any, name: str | None = None, onclose: Any = None):
        super().__init__(b"", name=name, onclose=onclose)
        self._buf = buf
        self.file = _ViewReader(buf)

    def subset(self, position: int, length: int, name: str | None = None) -> ViewFile:
        return ViewFile(self._buf[position : position + length], name=name or self._name)
