"""Checksums of a generation: every file of its current commit with its size and BLAKE2b sum.

Each generation directory `gNNNNNN/` has a manifest beside the marker, `gNNNNNN.manifest.json`.
Writing it is the commit: readers open the table of contents it names, and only after its sum
matches (so a table of contents is never unpickled unchecked). The manifest carries a sum of its
own content, so a flipped byte in it is found too.

Whoosh never rewrites a file: a commit adds segment files and a table of contents and later
deletes the old ones. A file's sum is therefore computed once, when its commit is made, and
carried over by later manifests.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from searchsvc.errors import IndexDamaged
from searchsvc.index import files as own
from searchsvc.index.files import NotOurFile

SUFFIX = ".manifest.json"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileSum:
    size: int
    blake2b: str


@dataclass(frozen=True)
class Manifest:
    """The committed state of one generation: the table of contents and every file it needs."""

    generation: str  # the generation directory, "g000001"
    toc: int  # Whoosh's table-of-contents generation, `_MAIN_<toc>.toc`
    files: dict[str, FileSum]
    committed: str | None = None  # "2026-12-01T17:13:25Z"; None in manifests written before it was kept

    @cached_property  # every search answer names it: hashed once per manifest read, not per request
    def commit_id(self) -> str:
        """Names the committed content (table of contents and every file's sum), not where it
        lives: the same on the writer and on every replica a commit is published to, so a
        balancer, a client and an operator can tell which commit answered."""
        content = {"toc": self.toc, "files": {name: s.blake2b for name, s in sorted(self.files.items())}}
        return _self_sum(content)[:16]

    def moved_to(self, generation: str) -> Manifest:
        """The same commit in another generation directory (a restore, a publish)."""
        return Manifest(generation, self.toc, self.files, self.committed)

    def to_json(self) -> dict[str, Any]:
        body = {
            "format": "searchsvc-manifest",
            "generation": self.generation,
            "toc": self.toc,
            "files": {name: {"size": s.size, "blake2b": s.blake2b} for name, s in sorted(self.files.items())},
        }
        if self.committed is not None:
            body["committed"] = self.committed
        return {**body, "checksum": _self_sum(body)}


def path_of(root: Path, generation: str) -> Path:
    return root / f"{generation}{SUFFIX}"


def file_sum(path: Path) -> FileSum:
    """Size and BLAKE2b-256 of a regular file, read in chunks (NotOurFile for a link, a FIFO)."""
    digest = hashlib.blake2b(digest_size=32)
    size = 0
    with os.fdopen(own.open_regular(path), "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return FileSum(size, digest.hexdigest())


def read(root: Path, generation: str) -> Manifest | None:
    """The generation's manifest; None when it has none (an index built before manifests);
    IndexDamaged when it cannot be read or its own sum does not match."""
    path = path_of(root, generation)
    try:
        text = own.read_small(path, own.MANIFEST_BYTES)
    except FileNotFoundError:
        return None
    except NotOurFile as e:
        raise IndexDamaged(f"{path} is damaged (not a manifest searchsvc wrote: {e.problem})") from None
    except OSError as e:
        raise IndexDamaged(f"{path} cannot be read ({e.strerror})") from None
    try:
        data = json.loads(text)
        body = {k: v for k, v in data.items() if k != "checksum"}
        if data.get("format") != "searchsvc-manifest" or data.get("checksum") != _self_sum(body):
            raise ValueError("its checksum does not match its content")
        if data["generation"] != generation:
            raise ValueError(f"it describes {data['generation']!r}")
        files = {str(name): FileSum(int(s["size"]), str(s["blake2b"])) for name, s in data["files"].items()}
        if any(not name or "/" in name or name.startswith(".") for name in files):
            raise ValueError("it names a file outside its generation")
        committed = data.get("committed")
        if committed is not None and not isinstance(committed, str):
            raise ValueError("its commit time is not a string")
        return Manifest(generation, int(data["toc"]), files, committed)
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError, RecursionError):
        raise IndexDamaged(f"{path} is damaged (not a manifest searchsvc wrote)") from None


def write(root: Path, manifest: Manifest) -> None:
    """Write the manifest durably: a synced temporary file renamed over the old one, then the
    folder synced. When this returns, the commit survives a power loss."""
    own.write_replacing(path_of(root, manifest.generation), json.dumps(manifest.to_json(), indent=1).encode("utf-8"))
    sync_folder(root)


def sync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_folder(path: Path) -> None:
    """Make the names in a folder (files created, renamed, deleted) durable."""
    sync_file(path)


def problems(folder: Path, manifest: Manifest, *, full: bool, names: Iterable[str] | None = None) -> Iterator[str]:
    """What is wrong with the files of `manifest` in `folder`: missing, of another size, or (with
    `full`) of another checksum. `names` limits the check to some of them."""
    for name in sorted(manifest.files if names is None else names):
        expected = manifest.files[name]
        path = folder / name
        try:
            if path.is_symlink() or not path.is_file():
                yield f"{path} is missing" if not path.exists() and not path.is_symlink() else f"{path} is not a file"
                continue
            size = path.stat().st_size
            if size != expected.size:
                yield f"{path} has {size:,} bytes, its commit wrote {expected.size:,}"
            elif full and file_sum(path).blake2b != expected.blake2b:
                yield f"{path} does not match its checksum (its bytes changed after its commit)"
        except NotOurFile as e:  # replaced since it was looked at
            yield f"{path} is not a file searchsvc wrote ({e.problem})"
        except OSError as e:
            yield f"{path} cannot be read ({e.strerror or e})"


def _self_sum(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.blake2b(canonical, digest_size=32).hexdigest()
