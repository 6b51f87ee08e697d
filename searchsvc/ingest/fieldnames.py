"""Column names people use for our fields: `headline` for the title, `pubDate` for the date.

A record's columns are renamed to the known fields (records.KNOWN_FIELDS) before it is
validated, so records.py sees only the names it knows, and a record that already uses them is
read exactly as before (same fields, same derived id). Two sources of names:

- explicit ones (`--field title=headline`, or a mapping file), matched like the known fields
  (case-insensitively); they win over synonyms, and over the record's own `title` column;
- SYNONYMS, used only where a record lacks the field itself: a record with both `title` and
  `headline` keeps `headline` as an extra key, since picking one would be a guess.

Every renaming is reported (`Reading`), so the summary can say which columns were read as
which field: nothing is guessed silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from searchsvc.records import KNOWN_FIELDS

# In order of preference: a record with both `published` and `created` is dated by `published`.
# Matched ignoring case, "_", "-" and spaces (`published_at`, `publishedAt` and `Published At`
# are one name). Only names that mean the field wherever they appear: `description` (a
# summary), `updated` (not when it was published), `authors` (usually a list) are not here.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "title": ("headline", "name"),
    "body": ("content", "text"),
    "date": ("published", "published_at", "date_published", "publish_date", "pubDate", "created", "created_at"),
    "author": ("byline",),
    "url": ("link", "permalink"),
}

# A mapping file is a few lines; anything larger is not one.
MAX_MAPPING_FILE_BYTES = 100_000

_UNSPACED = str.maketrans("", "", "_- ")


def _fold(name: str) -> str:
    return name.strip().lower().translate(_UNSPACED)


# folded synonym -> (field, its place in the field's order)
_SYNONYM_OF = {_fold(s): (target, rank) for target, names in SYNONYMS.items() for rank, s in enumerate(names)}
assert not _SYNONYM_OF.keys() & set(KNOWN_FIELDS), "a known field cannot be another's synonym"


class FieldMapError(ValueError):
    """A `--field` value or a line of a mapping file that does not name a field and a column."""


@dataclass(frozen=True)
class Mapped:
    """`--field FIELD=COLUMN` or a mapping file's line: the field is read from the column;
    `origin` says where it was given (`--field title=headline`, `names.txt:3`)."""

    target: str
    source: str
    origin: str


# (column as the record spells it, the field it was read as), or (column, None): a column
# left out because an explicit mapping reads that field from another column.
Reading = tuple[str, str | None]


class FieldNames:
    """How the columns of every record of a run are read as fields."""

    def __init__(self, explicit: Iterable[Mapped] = ()):
        self.explicit = {m.target: m for m in explicit}
        self._sources = {m.target: m.source.strip().lower() for m in self.explicit.values()}

    def read(self, data: Any) -> tuple[Any, tuple[Reading, ...]]:
        """`data` with its columns renamed to the fields they are read as, and what was renamed.

        Anything that is not a mapping, and a record whose columns are all read as themselves,
        is returned as it is (records.py says what is wrong with it).
        """
        if not isinstance(data, Mapping):
            return data, ()
        if not self._sources and all(target in data for target in SYNONYMS):
            return data, ()  # every field under its own name, as in an export: nothing to look for
        first: dict[str, Any] = {}  # a name as records.py matches it -> the first key so named
        for key in data:
            first.setdefault(str(key).strip().lower(), key)
        renamed: dict[str, Any] = {}  # field -> the key it is read from
        left_out: list[Any] = []
        for target, source in self._sources.items():
            key = first.get(source)
            if key is None or source == target:
                continue  # the record is read as it is (`--field date=date` turns the synonyms off)
            renamed[target] = key
            left_out += [k for k in data if str(k).strip().lower() == target]
        missing = [t for t in SYNONYMS if t not in first and t not in self._sources]
        if missing:
            renamed.update(_synonyms(data, missing))
        if not renamed:
            return data, ()
        consumed = {key for key in renamed.values() if str(key).strip().lower() not in KNOWN_FIELDS}
        out: dict[Any, Any] = {target: data[key] for target, key in renamed.items()}
        for key, value in data.items():
            if key not in consumed and key not in left_out:
                out[key] = value
        readings = [(str(key), target) for target, key in renamed.items()]
        return out, (*readings, *((str(key), None) for key in left_out))


def _synonyms(data: Mapping[Any, Any], missing: list[str]) -> dict[str, Any]:
    """field -> the key of its most preferred synonym in `data`, for the `missing` fields."""
    best: dict[str, tuple[int, Any]] = {}
    for key in data:
        found = _SYNONYM_OF.get(_fold(str(key)))
        if found is not None and found[0] in missing:
            target, rank = found
            if target not in best or rank < best[target][0]:
                best[target] = (rank, key)
    return {target: key for target, (_, key) in best.items()}


def parse_mapping(text: str, origin: str) -> Mapped:
    """`FIELD=COLUMN` (spaces around either allowed), as given at `origin`; FieldMapError if not."""
    target, equals, source = text.partition("=")
    target, source = target.strip(), source.strip()
    if not equals or not target or not source:
        raise FieldMapError(f"expected FIELD=COLUMN (such as title=headline), got {text.strip()!r}")
    if target.lower() not in KNOWN_FIELDS:
        raise FieldMapError(f"{target!r} is not a field; the fields are {', '.join(KNOWN_FIELDS)}")
    return Mapped(target.lower(), source, origin)


def read_mapping_file(path: str) -> list[Mapped]:
    """The mappings of a file of `FIELD = COLUMN` lines; blank lines and lines starting with `#`
    are passed over. FieldMapError naming `FILE:LINE` for a line that is not a mapping, or
    maps a field a second time."""
    with open(path, "rb") as f:
        data = f.read(MAX_MAPPING_FILE_BYTES + 1)
    if len(data) > MAX_MAPPING_FILE_BYTES:
        raise FieldMapError(f"{path}: more than {MAX_MAPPING_FILE_BYTES:,} bytes: not a mapping file "
                            "(one FIELD = COLUMN a line)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise FieldMapError(f"{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x})") from None
    found: dict[str, Mapped] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        place = f"{path}:{number}"
        try:
            mapped = parse_mapping(line, place)
        except FieldMapError as e:
            raise FieldMapError(f"{place}: {e}") from None
        if mapped.target in found:
            raise FieldMapError(f"{place}: {mapped.target} is mapped twice (also at {found[mapped.target].origin})")
        found[mapped.target] = mapped
    return list(found.values())


def field_names(from_file: Iterable[Mapped], from_options: Iterable[Mapped]) -> FieldNames:
    """The mappings of a run: an option overrides the file's line for the same field.
    FieldMapError when two options map the same field."""
    mapped = {m.target: m for m in from_file}
    given: dict[str, Mapped] = {}
    for m in from_options:
        if m.target in given:
            raise FieldMapError(f"{m.target} is mapped twice: {given[m.target].origin} and {m.origin}")
        given[m.target] = mapped[m.target] = m
    return FieldNames(mapped.values())
