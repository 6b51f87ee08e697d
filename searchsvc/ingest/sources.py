"""Reading post files: find them, pick a reader by extension, yield raw records with their place.

Readers do not validate records (records.py, at the top of the package, does); they only turn bytes into mappings
and say where each came from, so every message can name `FILE:LINE`. A broken part of a
file never hides the good records around it.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import re
import stat
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import yaml

from searchsvc.ingest.bounded import DEFAULT_LIMITS, BoundedInput, Limits, TooLarge
from searchsvc.ingest.listing import MAX_LISTING_BYTES, ListingProblem, parse_listing
from searchsvc.records import BODY_FORMAT, MARKDOWN, leaves
from searchsvc.settings import show_size

FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".md": "markdown",
    ".txt": "listing",
    ".rss": "feed",
    ".atom": "feed",
    ".xml": "feed",
    ".html": "html",
    ".htm": "html",
}
SUPPORTED = " ".join(FORMATS) + " (each optionally .gz)"

# Bodies of 300k characters are real; a row is bounded by the file's bound (bounded.Limits).
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass(frozen=True)
class Item:
    """A raw record read from `path` at `line` (1-based; None when a file is one record).

    `teaser`: its body may be only the start of the post (a listing's, a feed's summary), so it
    never replaces a longer body of the same post (ingest/batch.py). `site`: the web site whose
    answer it was read from (`addresses.site` of the address after redirects); None for a file
    the operator ingests. A record read from the web is a post of that site only (batch.add_item),
    or of its `aliases` (a start URL's own non-public server by another name) and its `www.` twin.
    """

    path: str
    line: int | None
    data: Any
    teaser: bool = False
    site: str | None = None
    aliases: frozenset[str] = frozenset()

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


@dataclass(frozen=True)
class Notice:
    """A folder passed over on purpose (a warning, not an error): `FILE: message`."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


Progress = Callable[[int], None]


def discover(paths: Iterable[str]) -> Iterator[SourceFile | Skipped | Notice | Problem]:
    """Every file named, and every file below each directory named, in a stable order.

    Hidden files and directories (".git", ".DS_Store") are passed over silently. Symbolic
    links to folders are followed, and each folder is read once (a link back up the tree
    would loop forever): a folder reached again is a Notice. A broken link is a Problem.
    """
    seen: dict[tuple[int, int], str] = {}
    for given in paths:
        if os.path.isdir(given):
            yield from _walk(given, seen)
        elif os.path.exists(given):
            yield _source(given)
        elif os.path.islink(given):
            yield _broken_link(given)
        else:
            yield Problem(given, None, "no such file or directory")


def _walk(top: str, seen: dict[tuple[int, int], str]) -> Iterator[SourceFile | Skipped | Notice | Problem]:
    again = _visit(top, seen)
    if again is not None:
        yield again
        return
    unreadable: list[OSError] = []  # os.walk's onerror: folders it could not list
    for root, dirs, files in os.walk(top, onerror=unreadable.append, followlinks=True):
        yield from _unreadable(unreadable)
        kept = []
        # Real folders before links to them, so a folder is read (and named) where it is.
        for name in sorted((d for d in dirs if not d.startswith(".")),
                           key=lambda d: (os.path.islink(os.path.join(root, d)), d)):
            again = _visit(os.path.join(root, name), seen)
            if again is None:
                kept.append(name)
            else:
                yield again
        dirs[:] = kept
        for name in sorted(files):
            if not name.startswith("."):
                path = os.path.join(root, name)
                yield _broken_link(path) if not os.path.exists(path) else _source(path)
    yield from _unreadable(unreadable)


def _visit(folder: str, seen: dict[tuple[int, int], str]) -> Notice | None:
    """None the first time a folder is reached (by any path), else why it is passed over."""
    try:
        info = os.stat(folder)
    except OSError:
        return None  # os.walk reports it when it fails to list it
    first = seen.get((info.st_dev, info.st_ino))
    if first is None:
        seen[(info.st_dev, info.st_ino)] = folder
        return None
    if folder.startswith(first.rstrip(os.sep) + os.sep):
        return Notice(folder, f"skipped: a symbolic link loop (this is {first}, a folder it is in)")
    return Notice(folder, f"skipped: already read as {first}")


def _unreadable(errors: list[OSError]) -> Iterator[Problem]:
    while errors:
        error = errors.pop(0)
        yield Problem(str(error.filename), None, f"cannot read: {error.strerror}")


def _broken_link(path: str) -> Problem:
    try:
        target = os.readlink(path)
    except OSError:
        return Problem(path, None, "no such file or directory")
    return Problem(path, None, f"broken symbolic link: {target} does not exist")


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
        st = os.stat(path)
    except OSError as e:
        return Problem(path, None, f"cannot read: {e.strerror}")
    if not stat.S_ISREG(st.st_mode):
        # A FIFO or a device (/dev/zero) would block the ingest or never end.
        return Problem(path, None, "cannot read: not a regular file (a pipe, device or socket)")
    return SourceFile(path, fmt, st.st_size)


def read_source(
    source: SourceFile, progress: Progress | None = None, limits: Limits = DEFAULT_LIMITS
) -> Iterator[Item | Problem]:
    """The raw records of one file, and a Problem for each part that cannot be read.

    JSON Lines is read a line at a time; the other formats are read whole, so a file of
    theirs is at most `limits.max_record_bytes` (once decompressed).
    """
    report = progress or (lambda n: None)
    try:
        with open(source.path, "rb") as raw:
            stream = BoundedInput(raw, source.path, limits)
            try:
                if source.format == "jsonl":
                    yield from _read_jsonl(source.path, stream, report)
                    return
                try:
                    data = stream.read_whole(*_whole_file_bound(source.format, limits))
                finally:
                    report(source.size)
            finally:
                stream.close()
    except TooLarge as e:
        yield Problem(source.path, None, str(e))
        return
    except (OSError, EOFError, zlib.error) as e:
        yield Problem(source.path, None, f"cannot read: {_os_reason(e)}")
        return
    if source.format in BYTE_READERS:
        # Feeds and pages say their own encoding (an XML declaration, a <meta charset>).
        yield from BYTE_READERS[source.format](source.path, bytes(data))
        return
    try:
        text, partly_utf8 = _decoded(data, source.format)
    except UnicodeDecodeError as e:
        yield Problem(source.path, None, f"not UTF-8 text ({_where_undecodable(e)})")
        return
    del data  # the text alone is in memory while the records are read
    for found in READERS[source.format](source.path, text):
        if partly_utf8 and isinstance(found, Item) and (byte := undecodable_byte(found.data)) is not None:
            found = Problem(found.path, found.line, f"not UTF-8 text (byte 0x{byte:02x})")
        yield found


def _whole_file_bound(fmt: str, limits: Limits) -> tuple[int, str]:
    """How much of a file of `fmt` may be read whole, and how to say so."""
    if fmt == "listing" and MAX_LISTING_BYTES < limits.max_record_bytes:
        return MAX_LISTING_BYTES, f"{show_size(MAX_LISTING_BYTES)} for a listing page"
    return limits.max_record_bytes, limits.record_size()


def _decoded(data: bytearray, fmt: str) -> tuple[str, bool]:
    """The text, and whether some of it was not UTF-8.

    A file of several records is read with its stray bytes kept as stand-ins
    (surrogateescape), so they spoil only the records holding them; a Markdown file is one
    record, and such bytes make it unreadable (UnicodeDecodeError).
    """
    try:
        return data.decode("utf-8-sig"), False
    except UnicodeDecodeError:
        if fmt == "markdown":
            raise
    return data.decode("utf-8-sig", "surrogateescape"), True


# Stand-ins for the bytes that are not UTF-8 (surrogateescape): U+DC80..U+DCFF for 0x80..0xFF.
_ESCAPED = re.compile("[\udc80-\udcff]")


def undecodable_byte(data: Any) -> int | None:
    """The first byte that was not UTF-8 in a record's keys and values, if any."""
    for leaf in leaves(data):
        if isinstance(leaf, str) and (escaped := _ESCAPED.search(leaf)):
            return ord(escaped[0]) - 0xDC00
    return None


def _read_jsonl(path: str, stream: BoundedInput, report: Progress) -> Iterator[Item | Problem]:
    """One JSON object per line; each bad line is a problem of its own. A line longer than a
    record may be is skipped without being read whole; a .gz file that turns out to be a
    decompression bomb is stopped, and the records before are kept."""
    reported = 0
    number = 0
    try:
        for number, line in enumerate(stream.lines(), start=1):
            if number % 256 == 0:
                position = stream.raw.tell()
                report(position - reported)
                reported = position
            if line is None:
                yield Problem(path, number, f"too large: the line is longer than {stream.limits.record_size()}")
                continue
            found = _parse_line(path, number, line)
            del line  # a large record is in memory once, as its parsed value, while it is validated
            if found is not None:
                yield found
    except TooLarge as e:
        yield Problem(path, number + 1, str(e))
    report(os.path.getsize(path) - reported)


def _parse_line(path: str, number: int, line: bytes | bytearray) -> Item | Problem | None:
    if number == 1 and line.startswith(codecs.BOM_UTF8):
        line = line[len(codecs.BOM_UTF8):]
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        return Problem(path, number, f"not UTF-8 text (byte 0x{line[e.start]:02x})")
    if not text.strip():
        return None
    if _json_values(text) > MAX_JSON_VALUES:
        return Problem(path, number, f"too large: {TOO_MANY_VALUES} in one record")
    try:
        return Item(path, number, json.loads(text))
    except json.JSONDecodeError as e:
        return Problem(path, number, f"invalid JSON: {e.msg} (column {e.colno})")
    except ValueError:
        return Problem(path, number, f"invalid JSON: {_LONG_NUMBER}")
    except RecursionError:
        return Problem(path, number, "invalid JSON: nested too deeply")


# Python refuses to convert longer whole numbers (a quadratic conversion: a denial of service).
_LONG_NUMBER = f"a number of more than {sys.get_int_max_str_digits()} digits"
# Strings, lists and objects in one JSON record, or in a JSON file read whole: a post holds a
# dozen or two. Counted in the text before it is parsed, since each takes up to 28 times its
# text as a Python object ("[]," is 3 bytes, a list 56 and its place in a list 8 more): at
# most some 64 MB, however the JSON is made.
MAX_JSON_VALUES = 1_000_000
TOO_MANY_VALUES = f"more than {MAX_JSON_VALUES:,} strings, lists and objects"


def _json_values(text: str) -> int:
    """About how many strings, lists and objects a JSON text holds (a quote in a string is \\")."""
    return (text.count('"') - text.count('\\"')) // 2 + text.count("[") + text.count("{")


def _read_json(path: str, text: str) -> Iterator[Item | Problem]:
    """One object, or an array of objects; each element keeps the line it starts on."""
    counted, lines = 0, 1

    def line_at(offset: int) -> int:
        # Elements come in order, so the newlines are counted once, as we go: a list of
        # every newline's offset took 2 GB for 50 MB of newlines.
        nonlocal counted, lines
        lines += text.count("\n", counted, offset)
        counted = offset
        return lines

    if _json_values(text) > MAX_JSON_VALUES:
        yield Problem(path, None, f"too large to read whole: {TOO_MANY_VALUES}; write it as JSON Lines, "
                                  "which is read a line at a time")
        return
    decoder = json.JSONDecoder()
    start = position = _skip_space(text, 0)
    try:
        if start < len(text) and text[start] == "[":
            position = _skip_space(text, start + 1)
            if position < len(text) and text[position] == "]":
                _expect_end(text, position + 1)
                return
            while True:
                try:
                    value, end = decoder.raw_decode(text, position)
                except (RecursionError, ValueError) as e:
                    if isinstance(e, json.JSONDecodeError):
                        raise
                    # One element nested too deeply, or with a number too long to read, is that
                    # element's problem: the elements after it are still read.
                    end = _value_end(text, position)
                    if end is None:
                        raise
                    yield Problem(path, line_at(position), "not valid JSON: " + (
                        "nested too deeply" if isinstance(e, RecursionError) else _LONG_NUMBER))
                else:
                    yield Item(path, line_at(position), value)
                    del value
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
    except ValueError:
        yield Problem(path, line_at(position), f"not valid JSON: {_LONG_NUMBER}")
    except RecursionError:
        yield Problem(path, None, "not valid JSON: nested too deeply")


_SPACE = re.compile(r"[ \t\r\n]*")
# What a JSON value's end depends on: strings (with their escapes) and brackets.
_JSON_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]|[,\]}]', re.DOTALL)


def _value_end(text: str, position: int) -> int | None:
    """Where the JSON value at `position` ends, found by its brackets alone in one pass (the
    decoder could not read it: too deep, a number too long), or None if they do not balance."""
    depth = 0
    for match in _JSON_STRUCTURE.finditer(text, position):
        token = match[0]
        if token in "[{":
            depth += 1
        elif token in "]}" and depth:
            depth -= 1
            if not depth:
                return match.end()
        elif depth == 0 and token in ",]}":
            return match.start()  # a scalar element: it ends before the next comma or bracket
    return None


def _skip_space(text: str, position: int) -> int:
    return _SPACE.match(text, position).end()  # type: ignore[union-attr] - it matches the empty string


def _expect_end(text: str, position: int) -> None:
    position = _skip_space(text, position)
    if position != len(text):
        raise json.JSONDecodeError("Extra data", text, position)


def _read_csv(path: str, text: str) -> Iterator[Item | Problem]:
    """A header row, then one record a row; quoted fields may span lines."""
    lines = _CsvLines(text)
    reader = csv.reader(lines)
    header: list[str] | None = None
    start = 1
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if lines.too_wide:
                what = "the header row is not read, nor the file" if header is None else "the row is not read"
                yield Problem(path, line, f"too large: line {lines.too_wide[0]} has more than {MAX_CSV_FIELDS:,} "
                                          f"fields; {what}")
                if header is None:
                    return
                lines.too_wide.clear()
                continue
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = [cell.strip() for cell in row]
                if (byte := undecodable_byte(header)) is not None:
                    yield Problem(path, line, f"not UTF-8 text (byte 0x{byte:02x}) in the header row")
                    return
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


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


# Fields in one line of a CSV file: the csv module makes a row of them before we see it, each
# up to 20 times its text ("ab," is 3 bytes, a str 51 and its place 8). No post has a line of a
# million commas, even in its text.
MAX_CSV_FIELDS = 1_000_000


class _CsvLines:
    """The lines of `text` with their endings (\\n, \\r\\n or \\r), one at a time: what
    io.StringIO(text, newline="") gives the csv module, without a second copy of the file in
    memory (StringIO keeps four bytes a character).

    A line of more than MAX_CSV_FIELDS commas is not given to the csv module: an empty line (a
    quote, if it had an odd number of them, so a quoted field stays open or closed as it
    was) stands in for it, and its number is kept in `too_wide` for the reader to make its row a
    problem and read on."""

    def __init__(self, text: str):
        self._lines = _LINE.finditer(text)
        self._number = 0
        self.too_wide: list[int] = []

    def __iter__(self) -> _CsvLines:
        return self

    def __next__(self) -> str:
        line = next(self._lines)[0]
        self._number += 1
        if line.count(",") >= MAX_CSV_FIELDS:
            self.too_wide.append(self._number)
            return '"' * (line.count('"') % 2) + "\n"
        return line


# The front matter is for a title, a date, an author, tags: this is far more than any. A
# bound of its own, because YAML takes some 100 times its text in memory (a node per value).
MAX_FRONT_MATTER = 1_000_000
# A closing line of the front matter: "---" or "...", spaces around allowed.
_FRONT_MATTER_END = re.compile(r"^[^\S\n]*(?:---|\.\.\.)[^\S\n]*$", re.MULTILINE)


def _read_markdown(path: str, text: str) -> Iterator[Item | Problem]:
    """YAML front matter between `---` lines, then the Markdown body: `body_format` "markdown"
    unless the front matter gives one (`body_format: plain` for a body that is plain text)."""
    first = text.find("\n")
    if (text if first < 0 else text[:first]).strip() != "---":
        yield Problem(path, 1, "no YAML front matter (the file must start with a '---' line)")
        return
    # Searched, not split into lines: a list of every line took 8 bytes a line, and more.
    end = _FRONT_MATTER_END.search(text, first + 1) if first >= 0 else None
    if end is None:
        yield Problem(path, 1, "the YAML front matter has no closing '---' line")
        return
    if end.start() - first > MAX_FRONT_MATTER:
        yield Problem(path, 1, f"the YAML front matter is longer than {MAX_FRONT_MATTER // 10**6} MB: it is for "
                               "the title, date, author and such (the post's text goes below it)")
        return
    try:
        # Without the newline before the closing line, so an error at its end names its line.
        meta = yaml.load(text[first + 1:max(first + 1, end.start() - 1)], Loader=_FrontMatterLoader)
        if isinstance(meta, dict):
            record = {str(k): _from_yaml(k, v) for k, v in meta.items()}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        problem = getattr(e, "problem", None) or str(e)
        yield Problem(path, line, f"invalid YAML front matter: {problem}")
        return
    except ValueError:
        yield Problem(path, 2, f"invalid YAML front matter: {_LONG_NUMBER}")
        return
    except RecursionError:
        yield Problem(path, 2, "invalid YAML front matter: nested too deeply")
        return
    if not isinstance(meta, dict):
        yield Problem(path, 2, "the YAML front matter must be a mapping (key: value lines)")
        return
    body = text[end.end():].strip()
    if body:
        record["body"] = body
    if not any(key.strip().lower() == BODY_FORMAT for key in record):
        record[BODY_FORMAT] = MARKDOWN
    yield Item(path, 1, record)


class _FrontMatterLoader(yaml.SafeLoader):
    """YAML's safe loader without aliases: `*name` repeats a value by reference, so a few lines
    of them nest into billions of values once copied out ("billion laughs")."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not read in front matter",
                                              event.start_mark)
        return super().compose_node(parent, index)


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
            yield Item(path, found.line, found.data, teaser=True)


def _read_feed(path: str, content: bytes) -> Iterator[Item | Problem]:
    from searchsvc.ingest.feeds import NotAFeed, looks_like_sitemap, read_feed  # feedparser: only where read

    if looks_like_sitemap(content):
        yield Problem(path, None, "a sitemap lists pages but holds no posts: `searchsvc follow URL` reads the "
                                  "pages of a sitemap on the web")
        return
    try:
        for entry in read_feed(content):
            yield Item(path, entry.line, entry.data, teaser=entry.teaser)
    except NotAFeed as e:
        yield Problem(path, None, str(e))


def _read_html(path: str, content: bytes) -> Iterator[Item | Problem]:
    """One post, or a listing's teasers (each at the line its block starts on)."""
    from searchsvc.ingest.pages import NotAPage, read_page  # lxml, trafilatura: only where a page is read

    try:
        page = read_page(content)
    except NotAPage as e:
        yield Problem(path, None, str(e))
        return
    for record in page.records:
        yield Item(path, record.line, record.data, teaser=record.teaser)


BYTE_READERS: dict[str, Callable[[str, bytes], Iterator[Item | Problem]]] = {"feed": _read_feed, "html": _read_html}

READERS: dict[str, Callable[[str, str], Iterator[Item | Problem]]] = {
    "json": _read_json, "csv": _read_csv, "markdown": _read_markdown, "listing": _read_listing,
}


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

