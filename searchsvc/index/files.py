"""The files searchsvc keeps in an index folder, read within bounds and written without
following links.

An index folder, a snapshot or a replica may have been prepared by someone else. A symbolic
link planted where we write (the marker's temporary file, a manifest's, the lock) would have
our `open()` truncate and rewrite whatever it points to, and a marker that is a link to
/dev/zero, or a manifest that is a FIFO, would be read until memory runs out or waited on
forever. So every such file is opened with O_NOFOLLOW (a link is refused, never followed), read
only when fstat says it is a regular file and only up to a size searchsvc never exceeds, and a
temporary file is created with O_EXCL after removing any leftover of its name (unlink removes a
link itself, not what it points to). What is refused says why, for the caller's error.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

from searchsvc.errors import NotAnIndex

# Bounds on what a small file of ours can hold: a marker is about 150 bytes; a manifest about
# 170 bytes per file it names, so 64 MB is room for over 300,000 segment files.
MARKER_BYTES = 64 * 1024
MANIFEST_BYTES = 64 * 1024 * 1024

_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_LOCK = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class NotOurFile(Exception):
    """Something searchsvc never makes stands where it expects one of its files."""

    def __init__(self, problem: str):
        super().__init__(problem)
        self.problem = problem  # "it is a symbolic link, which searchsvc never makes"


LINK = "it is a symbolic link, which searchsvc never makes"


def not_ours(path: Path, folder: Path, problem: NotOurFile) -> NotAnIndex:
    """The error for one of our names in `folder` holding what we never make there."""
    return NotAnIndex(f"{path} is {problem.problem.removeprefix('it is ')}: refusing to write into {folder} "
                      "(remove it if the folder is yours)")


def open_regular(path: Path) -> int:
    """A descriptor for reading the regular file at `path`, never through a link and never
    waiting (a FIFO). FileNotFoundError when there is nothing there; NotOurFile otherwise."""
    try:
        fd = os.open(path, _READ)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise NotOurFile(LINK) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotOurFile("it is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_small(path: Path, limit: int) -> bytes:
    """The bytes of the small file at `path`, at most `limit` of them (more is not ours)."""
    fd = open_regular(path)
    try:
        too_large = NotOurFile(f"it is larger than {limit:,} bytes, more than searchsvc ever writes there")
        if os.fstat(fd).st_size > limit:
            raise too_large
        chunks, size = [], 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:  # it grew while read
                raise too_large
        return b"".join(chunks)
    finally:
        os.close(fd)


def remove_leftover(path: Path, *, folder: bool = False) -> None:
    """Remove what a killed run may have left at `path`: a link or a file is unlinked (never what
    it points to); a real folder is removed with what it holds only when `folder` is ours to
    expect there (a partial generation), else left for the caller's O_EXCL to refuse."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except (IsADirectoryError, PermissionError):  # Linux says EISDIR, some systems EPERM
        if not folder or os.path.islink(path) or not os.path.isdir(path):
            raise
        shutil.rmtree(path)


def write_replacing(path: Path, data: bytes) -> None:
    """Write `data` to a synced temporary file beside `path` (`.NAME.tmp`, made anew) and rename
    it over `path`: a link at either name is replaced, never written through."""
    temporary = path.with_name(f".{path.name}.tmp")
    remove_leftover(temporary)
    fd = os.open(temporary, _NEW, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        temporary.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(temporary, path)


def open_lock(path: Path) -> int:
    """A descriptor on the lock file at `path` (made if missing) for flock: never a link
    followed, never a FIFO or device opened. NotOurFile for what is not a regular file."""
    try:
        fd = os.open(path, _LOCK, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise NotOurFile(LINK) from None
        if e.errno == errno.EISDIR:
            raise NotOurFile("it is a folder") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotOurFile("it is not a regular file")
    return fd


def kind(path: Path) -> str:
    """What is at `path`, in a word or two, for a message ("a symbolic link", "a folder")."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return "gone"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISREG(mode):
        return "a file"
    return "a special file"
