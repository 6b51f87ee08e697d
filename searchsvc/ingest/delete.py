"""Removing posts by id."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from searchsvc.index.store import IndexStore
from searchsvc.index.writer import PostWriter


@dataclass
class DeleteReport:
    """Which of the ids asked for were removed, and which the index did not hold."""

    deleted: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def delete_posts(store: IndexStore, ids: Iterable[str], *, wait: float) -> DeleteReport:
    """Delete the posts with these ids in one commit; unknown ids are reported, not errors."""
    report = DeleteReport()
    wanted = list(dict.fromkeys(ids))
    store.open()  # fail early, before the lock, on a missing or foreign index
    with store.locked(wait):
        ix = store.open(full_check=True)  # its commit may merge segments: only checked bytes
        with ix.searcher() as searcher:
            for post_id in wanted:
                found = searcher.document_number(id=post_id) is not None
                (report.deleted if found else report.unknown).append(post_id)
        if report.deleted:
            writer = PostWriter(ix, timeout=wait)  # its commit is durable (index/commit.py)
            for post_id in report.deleted:
                writer.delete_by_term("id", post_id)
            writer.commit()
    return report
