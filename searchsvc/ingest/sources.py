"""Reading post files: find them, pick a reader by extension, yield raw records with their place.

Readers do not validate records (records.py, at the top of the package, does); they only turn bytes into mappings
and say where each came from, so every message can name `FILE:LINE`. A broken part of a
file never hides the good records around it.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import gzip
import io
import json
import os
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, BinaryIO

import yaml

from searchsvc.ingest.listing import ListingProblem, parse_listing

FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".md": "markdown",
    ".txt": "listing",
}
SUPPORTED = " ".join(FORMATS) + " (each optionally .gz)"

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # bodies of 300k characters are real


@dataclass(frozen=True)
class Item:
    """A raw record read from `path` at `line` (1-based; None when a file is one record)."""

    path: str
    line: int | None
    data: Any

    @property
    def place(self) -> str:
        return self.path if self.line is None else f"{self.path}:{self.line}"


@dataclass(frozen=True)
class Problem:
    """Something unreadable at a place: printed as `FILE:LINE: message` or `FILE: message`."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        place = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{place}: {self.message}"


@dataclass(frozen=True)
class SourceFile:
    """A file to read: the name shown to people, its format, and its size for progress."""

    path: str
    format: str
    size: int


@dataclass(frozen=True)
class Skipped:
    """A file with an extension we do not read."""

    path: str

    def __str__(self) -> str:
        return f"{self.path}: skipped: not a post file (formats: {SUPPORTED})"


Progress = Callable[[int], None]


def discover(paths: Iterable[str]) -> Iterator[SourceFile | Skipped | Problem]:
    """Every file named, and every file below each directory named, in a stable order.

    Hidden files and directories (".git", ".DS_Store") are passed over silently.
    """
    for given in paths:
        if os.path.isdir(given):
            for root, dirs, files in os.walk(given):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith("."):
                        yield _source(os.path.join(root, name))
        elif os.path.exists(given):
            yield _source(given)
        else:
            yield Problem(given, None, "no such file or directory")


def format_of(path: str) -> str | None:
    """The reader for a file name, looking past a `.gz` ending."""
    name = path.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return FORMATS.get(os.path.splitext(name)[1])


def _source(path: str) -> SourceFile | Skipped | Problem:
    fmt = format_of(path)
    if fmt is None:
        return Skipped(path)
    try:
        size = os.path.getsize(path)
    except OSError as e:
        return Problem(path, None, f"cannot read: {e.strerror}")
    return SourceFile(path, fmt, size)


def read_source(source: SourceFile, progress: Progress | None = None) -> Iterator[Item | Problem]:
    """The raw records of one file, and a Problem for each part that cannot be read."""
    report = progress or (lambda n: None)
    try:
        if source.format == "jsonl":
            yield from _read_jsonl(source.path, report)
            return
        try:
            text = _read_text(source.path)
        except UnicodeDecodeError as e:
            yield Problem(source.path, None, f"not UTF-8 text ({_where_undecodable(e)})")
            return
        finally:
            report(source.size)
        reader = {"json": _read_json, "csv": _read_csv, "markdown": _read_markdown,
                  "listing": _read_listing}[source.format]
        yield from reader(source.path, text)
    except (OSError, EOFError, zlib.error) as e:
        yield Problem(source.path, None, f"cannot read: {_os_reason(e)}")


def _decompressed(raw: BinaryIO, path: str) -> BinaryIO:
    """The file's content: `raw` itself, or read through gzip when the name ends in .gz."""
    return gzip.open(raw, "rb") if path.lower().endswith(".gz") else raw  # type: ignore[return-value]


def _read_text(path: str) -> str:
    with open(path, "rb") as raw, _decompressed(raw, path) as f:
        return f.read().decode("utf-8-sig")


def _read_jsonl(path: str, report: Progress) -> Iterator[Item | Problem]:
    """One JSON object per line; each bad line is a problem of its own."""
    raw = open(path, "rb")
    with raw, _decompressed(raw, path) as stream:
        reported = 0
        for number, line in enumerate(stream, start=1):
            if number == 1 and line.startswith(codecs.BOM_UTF8):
                line = line[len(codecs.BOM_UTF8):]
            if number % 256 == 0:
                position = raw.tell()
                report(position - reported)
                reported = position
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as e:
                yield Problem(path, number, f"not UTF-8 text (byte 0x{line[e.start]:02x})")
                continue
            if not text.strip():
                continue
            try:
                yield Item(path, number, json.loads(text))
            except json.JSONDecodeError as e:
                yield Problem(path, number, f"invalid JSON: {e.msg} (column {e.colno})")
            except RecursionError:
                yield Problem(path, number, "invalid JSON: nested too deeply")
        report(os.path.getsize(path) - reported)


def _read_json(path: str, text: str) -> Iterator[Item | Problem]:
    """One object, or an array of objects; each element keeps the line it starts on."""
    decoder = json.JSONDecoder()
    newlines = [i for i, c in enumerate(text) if c == "\n"]

    def line_at(offset: int) -> int:
        return bisect.bisect_left(newlines, offset) + 1

    start = _skip_space(text, 0)
    try:
        if start < len(text) and text[start] == "[":
            position = _skip_space(text, start + 1)
            if position < len(text) and text[position] == "]":
                _expect_end(text, position + 1)
                return
            while True:
                value, end = decoder.raw_decode(text, position)
                yield Item(path, line_at(position), value)
                position = _skip_space(text, end)
                if position < len(text) and text[position] == ",":
                    position = _skip_space(text, position + 1)
                    continue
                if position < len(text) and text[position] == "]":
                    _expect_end(text, position + 1)
                    return
                raise json.JSONDecodeError("Expecting ',' delimiter", text, position)
        value, end = decoder.raw_decode(text, start)
        _expect_end(text, end)
        yield Item(path, line_at(start), value)
    except json.JSONDecodeError as e:
        yield Problem(path, None, f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}")
    except RecursionError:
        yield Problem(path, None, "not valid JSON: nested too deeply")


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _expect_end(text: str, position: int) -> None:
    position = _skip_space(text, position)
    if position != len(text):
        raise json.JSONDecodeError("Extra data", text, position)


def _read_csv(path: str, text: str) -> Iterator[Item | Problem]:
    """A header row, then one record a row; quoted fields may span lines."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    start = 1
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = [cell.strip() for cell in row]
                continue
            if len(row) != len(header):
                yield Problem(path, line, f"row has {len(row)} fields, the header has {len(header)}")
                continue
            # An empty cell is an absent value, as in a spreadsheet.
            yield Item(path, line, {k: (v if v != "" else None) for k, v in zip(header, row, strict=True)})
    except csv.Error as e:
        yield Problem(path, start, f"not valid CSV: {e}")
        return
    if header is None:
        yield Problem(path, None, "no header row (expected columns such as title,date,author,body)")


def _read_markdown(path: str, text: str) -> Iterator[Item | Problem]:
    """YAML front matter between `---` lines, then the Markdown body."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        yield Problem(path, 1, "no YAML front matter (the file must start with a '---' line)")
        return
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            break
    else:
        yield Problem(path, 1, "the YAML front matter has no closing '---' line")
        return
    try:
        meta = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        problem = getattr(e, "problem", None) or str(e)
        yield Problem(path, line, f"invalid YAML front matter: {problem}")
        return
    if not isinstance(meta, dict):
        yield Problem(path, 2, "the YAML front matter must be a mapping (key: value lines)")
        return
    record = {str(k): _from_yaml(k, v) for k, v in meta.items()}
    body = "\n".join(lines[end + 1:]).strip()
    if body:
        record["body"] = body
    yield Item(path, 1, record)


def _from_yaml(key: Any, value: Any) -> Any:
    """YAML types what people meant as text: `date: 2020-12-29` is a date, `title: 1984` a number."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and key in ("title", "author"):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _from_yaml(k, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_yaml(None, v) for v in value]
    return value


def _read_listing(path: str, text: str) -> Iterator[Item | Problem]:
    for found in parse_listing(text):
        if isinstance(found, ListingProblem):
            yield Problem(path, found.line, found.message)
        else:
            yield Item(path, found.line, found.data)


def _where_undecodable(error: UnicodeDecodeError) -> str:
    data = error.object
    line = data.count(b"\n", 0, error.start) + 1
    return f"byte 0x{data[error.start]:02x} at line {line}"


def _os_reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    if isinstance(error, EOFError):
        return "the compressed file ends early"
    return str(error) or type(error).__name__

