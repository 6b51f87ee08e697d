"""`searchsvc check`: every byte of the current generation against its manifest, as Lucene's
CheckIndex and SQLite's `PRAGMA integrity_check` do for theirs."""

from __future__ import annotations

import time
from dataclasses import dataclass

from searchsvc.errors import SearchsvcError
from searchsvc.index import manifest as manifests
from searchsvc.index.store import IndexStore

REPAIR = ("repair it: `searchsvc restore SNAPSHOT` from a snapshot (`searchsvc snapshot`), or rebuild it from your "
          "files with `searchsvc ingest --rebuild PATH...` (`searchsvc export` reads the posts of an index "
          "that is whole)")


@dataclass(frozen=True)
class CheckResult:
    location: str
    generation: str
    files: int
    bytes: int
    seconds: float
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def check(store: IndexStore) -> CheckResult:
    """Check the marker, the current generation's manifest and every file of its commit, byte
    for byte; then open it as a search would, and read every stored document and term Whoosh
    unpickles (the sums have no key: a forged file with its sums recomputed passes them).
    Raises IndexMissing or NotAnIndex when there is no index of ours to check."""
    started = time.perf_counter()
    marker = store.marker()
    found = store.problems(marker.generation, full=True)
    files = size = 0
    if not found:
        manifest = manifests.read(store.root, marker.generation)
        assert manifest is not None
        files, size = len(manifest.files), sum(s.size for s in manifest.files.values())
        try:
            ix = store.open(check_version=False)  # the table of contents, and every segment opened once
            store.read_every_pickle(ix)  # and what a search unpickles later: a forged file never runs
        except SearchsvcError as e:  # bytes as committed, yet Whoosh cannot read them
            found = [str(e)]
    return CheckResult(str(store.root.resolve()), marker.generation, files, size,
                       round(time.perf_counter() - started, 3), tuple(found))
