"""What an index holds: counts, date range, authors, size, version."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from whoosh.util.times import long_to_datetime

from searchsvc.dates import utc_timestamp
from searchsvc.index.columns import UNDATED, live_columns
from searchsvc.index.schema import SCHEMA_VERSION
from searchsvc.index.store import IndexStore


@dataclass(frozen=True)
class Contents:
    """What an index version holds: shown by `searchsvc info` and above an empty search."""

    posts: int
    undated: int
    first: datetime | None  # the earliest and the latest post's date
    last: datetime | None
    authors: dict[str, int]  # name -> posts, most posts first, ties by name

    def author_names(self) -> list[str]:
        """The authors in alphabetical order, whatever their case (the search form's list)."""
        return sorted(self.authors, key=str.casefold)


def contents(reader: Any) -> Contents:
    """Read the contents from the sortable columns (no stored bodies are loaded)."""
    rows = live_columns(reader, "date", "author_key")
    dates = [date for _, date, _ in rows if date != UNDATED]
    authors = Counter(author for _, _, author in rows if author)
    return Contents(
        posts=len(rows),
        undated=len(rows) - len(dates),
        first=long_to_datetime(min(dates)) if dates else None,
        last=long_to_datetime(max(dates)) if dates else None,
        authors=dict(sorted(authors.items(), key=lambda kv: (-kv[1], kv[0]))),
    )


@dataclass(frozen=True)
class IndexInfo:
    """A summary of one index, rendered by `searchsvc info` as text or JSON."""

    location: str
    generation: str
    schema_version: int
    posts: int
    undated: int
    first_date: str | None
    last_date: str | None
    authors: dict[str, int]
    size_bytes: int
    last_update: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "generation": self.generation,
            "schema_version": self.schema_version,
            "current_schema_version": SCHEMA_VERSION,
            "posts": self.posts,
            "undated": self.undated,
            "date_range": {"first": self.first_date, "last": self.last_date},
            "authors": self.authors,
            "size_bytes": self.size_bytes,
            "last_update": self.last_update,
        }


def index_info(store: IndexStore) -> IndexInfo:
    """Read the summary from the sortable columns (no stored bodies are loaded)."""
    marker = store.marker()
    ix = store.open(full_check=True)  # what it reports comes from bytes as their commit wrote them
    with ix.reader() as reader:
        held = contents(reader)
    updated = store.last_update()
    return IndexInfo(
        location=str(store.root.resolve()),
        generation=marker.generation,
        schema_version=marker.schema_version,
        posts=held.posts,
        undated=held.undated,
        first_date=held.first.isoformat() if held.first else None,
        last_date=held.last.isoformat() if held.last else None,
        authors=held.authors,
        size_bytes=store.disk_size(),
        last_update=utc_timestamp(updated) if updated else None,
    )
