"""Streaming every match of a search as CSV or JSON Lines, with its provenance in headers."""

from __future__ import annotations

import csv
import io
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence

from flask import Response, stream_with_context

from searchsvc.dates import utc_timestamp
from searchsvc.errors import BadRequest, TooManyExports
from searchsvc.index.schema import SCHEMA_VERSION
from searchsvc.search.engine import Engine
from searchsvc.search.request import SearchRequest, request_from_params
from searchsvc.search.run import iter_matches

FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}
CSV_COLUMNS = ("id", "title", "date", "author", "url", "score", "body")
# OWASP's list of characters that make a spreadsheet read a cell as a formula
# (=HYPERLINK(...) in a title would send the sheet's data to another site when opened).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
EXPORT_RETRY_AFTER = 30  # seconds, in the Retry-After of a refused export


class ExportSlots:
    """How many exports may stream at once in this process. Each holds a pool thread for as
    long as its client reads (one that stops reading, up to SEARCHSVC_SEND_TIMEOUT), so without
    a bound a few clients that never read would take every thread from searches and /healthz."""

    def __init__(self, limit: int):
        self.limit = limit
        self._free = threading.BoundedSemaphore(limit)

    def take(self) -> Callable[[], None]:
        """One slot, or TooManyExports at once; call the returned function (again is harmless)
        to give the slot back."""
        if not self._free.acquire(blocking=False):
            raise TooManyExports(f"this server process is already streaming as many exports as it allows "
                                 f"({self.limit}); try again in {EXPORT_RETRY_AFTER} seconds",
                                 retry_after=EXPORT_RETRY_AFTER)
        given_back = False

        def give_back() -> None:
            nonlocal given_back
            if not given_back:
                given_back = True
                self._free.release()

        return give_back


def export_response(engine: Engine, params: Mapping[str, Sequence[str]], slots: ExportSlots) -> Response:
    """Every post matching the search in `params` (no page limit), in its order.

    Raises TooManyExports when `slots` has none free; the slot taken is given back when the
    stream ends, or when the response is closed (the client went away, or the stream failed).
    """
    fmt = (params.get("format") or ["jsonl"])[-1]
    if fmt not in FORMATS:
        raise BadRequest(f"'format' must be csv or jsonl, got {fmt!r}", code="bad_format", param="format")
    search_request = request_from_params(params)
    give_back = slots.take()
    try:
        response = _streamed(engine, search_request, fmt, give_back)
    except BaseException:
        give_back()
        raise
    # The WSGI server closes the response however the stream ends; a generator's own
    # finally does not run when it is closed before it started.
    response.call_on_close(give_back)
    return response


def _streamed(engine: Engine, search_request: SearchRequest, fmt: str, at_end: Callable[[], None]) -> Response:
    with engine.reading():  # the commit named in the headers is the one the matches come from
        total, understood, matches = iter_matches(engine, search_request)
        generation, (commit, _) = engine.generation(), engine.commit()
    exported_at = utc_timestamp()
    if fmt == "csv":
        body = _csv_rows(matches)
    else:
        body = (json.dumps({**record.to_json(), "score": score}, ensure_ascii=False) + "\n"
                for record, score in matches)
    response = Response(stream_with_context(_then(body, at_end)), mimetype=FORMATS[fmt].split(";")[0])
    response.headers["Content-Type"] = FORMATS[fmt]
    filters = {k: v for k, v in search_request.to_json().items() if k not in ("q", "page", "per_page")}
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{_filename(search_request.q, exported_at, fmt)}"'
    )
    # Header values must be ASCII: JSON with \\u escapes keeps every character recoverable.
    response.headers["X-Searchsvc-Query"] = json.dumps(understood)
    response.headers["X-Searchsvc-Filters"] = json.dumps(filters)
    response.headers["X-Searchsvc-Count"] = str(total)
    response.headers["X-Searchsvc-Exported-At"] = exported_at
    response.headers["X-Searchsvc-Index-Version"] = f"schema {SCHEMA_VERSION}, {generation}"
    if commit is not None:
        response.headers["X-Searchsvc-Commit"] = commit
    return response


def _then(chunks: Iterator[str], at_end: Callable[[], None]) -> Iterator[str]:
    try:
        yield from chunks
    finally:
        at_end()


def _csv_rows(matches: Iterator) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield "\ufeff"  # spreadsheets read UTF-8 CSV correctly only with a BOM
    writer.writerow(CSV_COLUMNS)
    yield flush()
    for record, score in matches:
        data = record.to_json()
        text = {name: spreadsheet_safe(data[name] or "") for name in ("id", "title", "author", "url", "body")}
        writer.writerow([text["id"], text["title"], data["date"] or "", text["author"], text["url"],
                         "" if score is None else score, text["body"]])
        yield flush()


def spreadsheet_safe(cell: str) -> str:
    """The cell with a ' in front when it starts like a formula, as OWASP advises for CSV: the
    spreadsheet shows the text as written instead of running it."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def _filename(q: str, exported_at: str, fmt: str) -> str:
    """searchsvc-uyghur-camps-2026-11-24.csv: what, and when, in the name."""
    slug = re.sub(r"[^a-z0-9]+", "-", q.lower()).strip("-")[:60] or "all-posts"
    return f"searchsvc-{slug}-{exported_at[:10]}.{fmt}"
