"""A durable commit: what one `ingest` or `delete` promises once it returns.

1. Whoosh writes the new segment files and the table of contents (`_MAIN_<n>.toc`, written to a
   temporary name and renamed).
2. Every file the commit needs that an earlier commit did not write is synced (fsync), and
   so is the generation folder, so their names survive too.
3. The manifest (manifest.py), naming the table of contents and every file with its checksum,
   is written to a temporary file, synced, renamed over the old one, and the index folder is
   synced. This rename is the commit: before it, readers and the next writer see the previous
   commit whole; after it, the new one.
4. Files no commit needs any more (older tables of contents, merged segments) are deleted.

A crash or power loss at any point leaves the previous commit or the new one, never a mix: the
files of an unfinished commit are removed by the next writer (store.IndexStore.locked).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from whoosh.index import TOC, clean_files

from searchsvc.dates import utc_timestamp
from searchsvc.index import manifest as manifests
from searchsvc.index.toc import INDEX_NAME, PinnedIndex, toc_name

SEGMENT_FILE = re.compile(rf"^({INDEX_NAME}_[0-9a-z]+)\.")


def commit(ix: PinnedIndex, schema: Any, segments: list[Any], toc: int) -> manifests.Manifest:
    """Commit `segments` as table of contents `toc` of the generation `ix` lives in, durably."""
    folder = Path(ix.storage.folder)
    TOC(schema, segments, toc).write(ix.storage, INDEX_NAME)
    wanted = {segment.segment_id() for segment in segments}
    names = [toc_name(toc)] + sorted(
        p.name for p in folder.iterdir() if (m := SEGMENT_FILE.match(p.name)) and m[1] in wanted
    )
    earlier = ix.manifest.files if ix.manifest is not None else {}
    files = {}
    for name in names:
        path = folder / name
        known = earlier.get(name)
        if known is not None and path.stat().st_size == known.size:
            files[name] = known  # written and synced by an earlier commit; Whoosh never rewrites a file
        else:
            manifests.sync_file(path)
            files[name] = manifests.file_sum(path)
    manifests.sync_folder(folder)
    written = manifests.Manifest(ix.name, toc, files, committed=utc_timestamp())
    manifests.write(ix.root, written)
    ix.manifest, ix.toc_generation = written, toc
    clean_files(ix.storage, INDEX_NAME, toc, segments)
    return written
