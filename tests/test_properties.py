"""Property-based tests: any input gives a result or one of our clean errors, never a crash."""

from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from searchsvc.dates import ParsedDate, parse_date
from searchsvc.errors import BadRequest, InvalidDate, InvalidRecord
from searchsvc.ingest.batch import IngestReport, read_batch
from searchsvc.records import Record, record_from_mapping
from searchsvc.search.query import parse_query
from searchsvc.search.request import SearchRequest, request_from_params

# Derandomized: CI runs the same examples every time (a new random find must not block a
# landing by chance). To explore: HYPOTHESIS_EXPLORE=5000 python -m pytest tests/test_properties.py
EXPLORE = int(os.environ.get("HYPOTHESIS_EXPLORE", "0"))
SETTINGS = settings(max_examples=EXPLORE or 300, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                    derandomize=not EXPLORE)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)
date_like = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"\s*\d{1,4}[-/. ]\d{1,2}[-/. ]\d{1,4}( \d{1,2}:\d{2}(:\d{2})?)?( ?[+-]\d{2}:?\d{2}|Z)?\s*"),
    st.from_regex(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2}/\d{2}/\d{4} - \d{2}:\d{2}"),
    st.datetimes().map(lambda d: d.isoformat()),
)


@SETTINGS
@given(text=date_like, dayfirst=st.booleans(), finest=st.sampled_from(["year", "month", "day", "minute"]))
def test_any_date_text_parses_or_is_invalid(text, dayfirst, finest):
    try:
        parsed = parse_date(text, dayfirst=dayfirst, finest_required=finest)
    except InvalidDate as e:
        assert str(e)
        return
    assert isinstance(parsed, ParsedDate)
    assert parsed.value.tzinfo is None  # naive UTC or as written, never aware
    # The canonical text (what export writes) reads back as the same date and text.
    again = parse_date(parsed.isoformat(), finest_required="year")
    assert (again.value, again.isoformat()) == (parsed.value, parsed.isoformat())


record_keys = st.sampled_from(["id", "title", "body", "date", "author", "url", "lang", "tags", "Title", ""])


@SETTINGS
@given(data=st.one_of(json_values, st.dictionaries(record_keys, json_values | date_like, max_size=8)),
       dayfirst=st.booleans())
def test_any_mapping_is_a_record_or_an_invalid_record(data, dayfirst):
    try:
        record = record_from_mapping(data, dayfirst=dayfirst)
    except InvalidRecord as e:
        assert e.reason
        return
    assert isinstance(record, Record)
    assert record.title.strip() and record.body.strip() and record.id


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(content=st.one_of(st.binary(max_size=400), st.text(max_size=400).map(lambda t: t.encode("utf-8"))),
       suffix=st.sampled_from([".jsonl", ".json", ".csv", ".md", ".txt", ".jsonl.gz", ".csv.gz"]))
def test_any_file_reads_into_records_and_located_problems(content, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"posts{suffix}"
        path.write_bytes(gzip.compress(content) if suffix.endswith(".gz") else content)
        report = IngestReport()
        batch = read_batch([str(path)], report)
    assert all(isinstance(r, Record) for r in batch.records.values())
    # Every problem names the file (and, where there is one, the line).
    assert all(line.startswith(str(path)) for line in report.problems)


@SETTINGS
@given(q=st.text(max_size=80) | st.lists(st.sampled_from(
    ['"', "(", ")", "AND", "OR", "NOT", "-", "*", "~", "title:", "author:", "uyghur", "x*", "a~3", "2020"]),
    max_size=10).map(" ".join))
def test_any_query_text_parses_or_is_a_bad_query(q):
    try:
        query = parse_query(q)
    except BadRequest as e:
        assert e.code == "bad_query" and e.param == "q"
        return
    assert query is not None


@SETTINGS
@given(params=st.dictionaries(
    st.sampled_from(["q", "from", "to", "author", "sort", "page", "per_page", "op", "x"]),
    st.text(max_size=30) | date_like | st.integers().map(str), max_size=7))
def test_any_search_parameters_are_a_request_or_a_bad_request(params):
    try:
        request = request_from_params(params)
    except BadRequest as e:
        assert e.param is None or e.param in params or e.param in ("from", "to")
        return
    assert isinstance(request, SearchRequest)
