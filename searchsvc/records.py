"""A post record: validated from whatever mapping a reader produced, and written back out.

The record format (also what `export` writes) is a JSON object with `id`, `title`,
`date`, `author`, `url`, `body`, and any extra keys the source carried. One extra key has a
meaning: `body_format`, "markdown" for a body in Markdown (absent, null, "" or "plain": plain text).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from itertools import chain
from typing import Any
from urllib.parse import urlsplit

from searchsvc.dates import LATEST_YEAR, ParsedDate, parse_date
from searchsvc.errors import InvalidRecord
from searchsvc.markup import html_text, render_markdown

KNOWN_FIELDS = ("id", "title", "date", "author", "url", "body")
# `/api/export` writes each match as its record plus "score", the search's ranking (a
# number, or null when sorted by date). Read back in, that is not post data: storing it
# would make every post of a re-ingested export "updated", with a stale number in it.
EXPORT_RANKING = "score"
MAX_ID_LENGTH = 200
# An extra key, not a known field: absent means plain text, so every record without it (every
# export before it existed) reads and fingerprints as before, and export writes it back as given.
BODY_FORMAT = "body_format"
MARKDOWN = "markdown"
BODY_FORMATS = ("plain", MARKDOWN)

# C0/C1 control characters other than tab and newline: never meaningful in a post. A body's are
# dropped (text pasted from PDFs and terminals carries form feeds and escapes); in an id, a
# title, an author or a url they make the record invalid: silently removed, a NUL made two
# different ids one, and an ESC in a title is a terminal escape when `search` prints it.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_LINE_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # tab, CR and LF fold to spaces
_SPACES = re.compile(r"\s+")
# Half of a UTF-16 pair ("\ud800" in JSON or YAML escapes): not a character, so no UTF-8
# encoder can write it, not the id's hash, the fingerprint, nor the index.
_SURROGATE = re.compile("[\ud800-\udfff]")
# Lists and objects inside one another in a record: JSON's parser reads about 990 and its writer
# (a fingerprint, the stored extras, an export) recursed past its limit at 980, failing the whole
# ingest. No post's data nests like that.
MAX_DEPTH = 100
# What a post stores and exports is JSON: values of other types (YAML's !!binary, !!set)
# cannot be written back out.
_JSON_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Record:
    """One post, validated. `date` is None for undated posts."""

    id: str
    title: str
    body: str
    date: ParsedDate | None = None
    author: str | None = None
    url: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The record format, as `export` writes it (extra keys after the known ones)."""
        data: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "date": self.date.isoformat() if self.date else None,
            "author": self.author,
            "url": self.url,
            "body": self.body,
        }
        data.update(self.extra)
        return data

    @property
    def markdown(self) -> bool:
        """Whether the body is Markdown (`body_format` "markdown"), shown rendered and searched as its text."""
        return self.extra.get(BODY_FORMAT) == MARKDOWN

    @cached_property
    def body_html(self) -> str | None:
        """A Markdown body as sanitised HTML (markup.render_markdown), rendered once: the index
        stores it, and a stored post has it without rendering (`index.schema.record_from_stored`).
        None for a plain body, and for a Markdown one too long to render (`rendered` is False),
        which is shown and searched as plain text."""
        return render_markdown(self.body) if self.markdown else None

    @property
    def rendered(self) -> bool:
        """Whether the body is Markdown rendered as HTML (`body_html`), not too long to render."""
        return self.body_html is not None

    @cached_property
    def body_text(self) -> str:
        """The body's words as a reader sees them: what is indexed and what snippets are cut from."""
        html = self.body_html
        return self.body if html is None else html_text(html)

    @cached_property
    def fingerprint(self) -> bytes:
        """A digest of everything stored for this post: equal digests mean nothing changed."""
        canonical = json.dumps(self.to_json(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).digest()


def record_from_mapping(data: Any, *, dayfirst: bool = False, site: str | None = None) -> Record:
    """Validate one raw record; raise InvalidRecord saying what is wrong.

    Known keys match case-insensitively ("Title" in a CSV header is `title`), and so does
    `body_format`, kept as an extra under that name with its value in lower case;
    unknown keys are kept as extras, except an export's ranking (`EXPORT_RANKING`).
    `site`: the web site the record was read from (None for a file), part of an id derived
    without a url, so that no other site's record (nor a file's) can have it.
    """
    if not isinstance(data, Mapping):
        raise InvalidRecord(f"expected an object with title and body, got {_kind(data)}")
    _check_storable(data)
    known: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    extra: dict[str, Any] = {}
    format_key: str | None = None
    for key, value in data.items():
        name = str(key).strip().lower()
        if key == EXPORT_RANKING and is_export_ranking(value):
            continue
        if name in KNOWN_FIELDS and name in known:
            # Kept as an extra, it would be written over the field on export: which one is meant?
            raise InvalidRecord(f"{spelled[name]!r} and {str(key)!r} are both the field '{name}' (names are "
                                "matched ignoring case): keep one")
        if name in KNOWN_FIELDS:
            known[name] = value
            spelled[name] = str(key)
        elif name == BODY_FORMAT:
            if format_key is not None:
                raise InvalidRecord(f"'{BODY_FORMAT}' is given twice ({format_key!r} and {str(key)!r})")
            format_key = str(key)
            extra[BODY_FORMAT] = _body_format(value)
        else:
            extra[str(key)] = value

    title = _required_text(known, "title", one_line=True)
    body = _required_text(known, "body", one_line=False)
    author = _optional_text(known, "author")
    url = _optional_text(known, "url")
    if url is not None:
        try:
            parts = urlsplit(url)
        except ValueError:  # "http://[oops/": an unclosed IPv6 bracket
            raise InvalidRecord(f"'url' must be an absolute http(s) URL, got {url!r}") from None
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise InvalidRecord(f"'url' must be an absolute http(s) URL, got {url!r}")
    date = None
    raw_date = known.get("date")
    if raw_date is not None and not (isinstance(raw_date, str) and not raw_date.strip()):
        if not isinstance(raw_date, str):
            raise InvalidRecord(f"'date' must be text, got {_kind(raw_date)}")
        date = parse_date(raw_date, dayfirst=dayfirst, finest_required="day")
        if date.value.year > LATEST_YEAR:
            raise InvalidRecord(f"invalid date {raw_date!r}: the latest year allowed is {LATEST_YEAR}")

    post_id = _record_id(known.get("id"), url, title, date, author, site)
    return Record(post_id, title, body, date, author, url, extra)


def _body_format(value: Any) -> Any:
    """`body_format` as stored: "markdown" or "plain" (any case), or left as given when empty."""
    if value is None or value == "":
        return value
    if isinstance(value, str) and value.strip().lower() in BODY_FORMATS:
        return value.strip().lower()
    formats = " or ".join(repr(name) for name in BODY_FORMATS)
    raise InvalidRecord(f"'{BODY_FORMAT}' must be {formats} (or absent, for plain text), got {value!r}")


def has_export_ranking(data: Any) -> bool:
    """Whether `data` carries an export's ranking, which `record_from_mapping` leaves out."""
    return isinstance(data, Mapping) and EXPORT_RANKING in data and is_export_ranking(data[EXPORT_RANKING])


def is_export_ranking(value: Any) -> bool:
    """A top-level "score" that is null or a number; a score given as text or a list is post data."""
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _check_storable(data: Mapping[str, Any]) -> None:
    """Every key and value, however deeply nested, can be written as JSON in UTF-8.

    Checked before anything is derived from the record (its id hashes the title), so a lone
    surrogate anywhere is this one reason, never an encoding error later.
    """
    for key, value in data.items():
        for leaf in leaves(key, value, max_depth=MAX_DEPTH):
            if isinstance(leaf, str):
                bad = _SURROGATE.search(leaf)
                if bad:
                    raise InvalidRecord(f"the text holds {bad[0]!r}, half of a character (a lone surrogate), "
                                        "which cannot be stored; fix the source's encoding")
            elif isinstance(leaf, float) and not math.isfinite(leaf):
                # JSON has no NaN or infinity: written back out, the post and every export of it
                # would not be JSON (JSON.parse fails), and 1e400 reads as infinity.
                written = "NaN" if leaf != leaf else "Infinity" if leaf > 0 else "-Infinity"
                raise InvalidRecord(f"{str(key)!r} holds {written}, a number JSON cannot represent (NaN, an "
                                    "infinity, or a number too large for a double, such as 1e400)")
            elif not isinstance(leaf, _JSON_SCALARS):
                raise InvalidRecord(f"{str(key)!r} holds {_kind(leaf)}, which a post cannot store (only text, "
                                    "numbers, true/false, null, lists and objects)")


def leaves(*values: Any, max_depth: int | None = None) -> Iterator[Any]:
    """Every key and every value that is not a list or an object, in `values` and within them,
    in order. A stack of iterators: not recursion (JSON nests as deeply as its parser allows),
    nor a list of everything (a record may hold millions of values). InvalidRecord past
    `max_depth` lists and objects inside one another."""
    stack: list[Iterator[Any]] = [iter(values)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, (Mapping, list, tuple)) and max_depth is not None and len(stack) > max_depth:
                raise InvalidRecord(f"nested too deeply: more than {max_depth} lists and objects inside one "
                                    "another")
            if isinstance(value, Mapping):
                stack.append(chain.from_iterable(value.items()))
                break
            if isinstance(value, (list, tuple)):
                stack.append(iter(value))
                break
            yield value
        else:
            stack.pop()


def _record_id(
    raw: Any, url: str | None, title: str, date: ParsedDate | None, author: str | None, site: str | None = None
) -> str:
    """The given id, else one derived from the url, else from title, date and author (and the web
    site it was read from: a feed entry without a link on one site is never another site's post).

    Derived ids are stable, so ingesting the same post again never duplicates it.
    """
    if raw is not None and not (isinstance(raw, str) and not raw.strip()):
        if isinstance(raw, bool) or not isinstance(raw, (str, int)):
            raise InvalidRecord(f"'id' must be text or a whole number, got {_kind(raw)}")
        _check_line(str(raw), "id")
        post_id = _clean(str(raw)).strip()
        # Ids are path segments of URLs (/api/posts/<id>): no spaces, no slashes.
        if len(post_id) > MAX_ID_LENGTH or _SPACES.search(post_id) or "/" in post_id:
            raise InvalidRecord(
                f"'id' must be at most {MAX_ID_LENGTH} characters, without spaces or '/', got {post_id!r}"
            )
        # Browsers, proxies and feed readers resolve /posts/.. to / and /posts/. to /posts/.
        if post_id in (".", ".."):
            raise InvalidRecord(f"'id' must not be '.' or '..' (links to the post would not work), got {post_id!r}")
        return post_id
    if url is not None:
        basis = ["url", url]
    else:
        basis = ["post", title, date.isoformat() if date else None, author]
        if site is not None:
            basis.append(site)
    digest = hashlib.sha256(json.dumps(basis, ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()[:16]


def _required_text(known: Mapping[str, Any], name: str, *, one_line: bool) -> str:
    if name not in known or known[name] is None:
        raise InvalidRecord(f"missing required field '{name}'")
    value = known[name]
    if not isinstance(value, str):
        raise InvalidRecord(f"'{name}' must be text, got {_kind(value)}")
    if one_line:
        _check_line(value, name)
    text = _normalise(value, one_line=one_line)
    if not text:
        raise InvalidRecord(f"'{name}' is empty")
    return text


def _optional_text(known: Mapping[str, Any], name: str) -> str | None:
    value = known.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRecord(f"'{name}' must be text, got {_kind(value)}")
    _check_line(value, name)
    return _normalise(value, one_line=True) or None


def _normalise(text: str, *, one_line: bool) -> str:
    """NFC, no control characters, Unix newlines; titles and authors on one line."""
    text = _clean(text.replace("\r\n", "\n").replace("\r", "\n"))
    if one_line:
        return _SPACES.sub(" ", text).strip()
    return "\n".join(line.rstrip() for line in text.strip().split("\n"))


def _check_line(text: str, name: str) -> None:
    """A one-line field (id, title, author, url) holds no control character: named, not removed."""
    bad = _LINE_CONTROL.search(text)
    if bad:
        code = ord(bad[0])
        hint = (" (C1 controls are usually Windows-1252 text read as Latin-1: fix the source's encoding)"
                if 0x80 <= code <= 0x9f else "")
        raise InvalidRecord(f"'{name}' holds the control character U+{code:04X} at position {bad.start() + 1}, "
                            f"which is not text{hint}")


def _clean(text: str) -> str:
    return unicodedata.normalize("NFC", _CONTROL.sub("", text))


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, bytes):
        return "binary data"
    return type(value).__name__
