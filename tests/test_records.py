"""Record validation, dates and ids, as seen through `ingest` and `export`."""

from __future__ import annotations

import json

import pytest

from searchsvc.dates import parse_date
from searchsvc.errors import InvalidDate

BASE = {"title": "A fictional statement", "body": "Synthetic text."}


def ingest_one(searchsvc, write, record, *options):
    path = write("one.jsonl", json.dumps(record) + "\n")
    return path, searchsvc("ingest", *options, path)


@pytest.mark.parametrize(
    "record, reason",
    [
        ({"body": "x"}, "missing required field 'title'"),
        ({"title": "x", "body": "   \n "}, "'body' is empty"),
        ({"title": None, "body": "x"}, "missing required field 'title'"),
        ({"title": ["x"], "body": "x"}, "'title' must be text, got a list"),
        ({**BASE, "date": "2021-13-45"}, "invalid date '2021-13-45': month must be in 1..12"),
        ({**BASE, "date": "2021-02-30"}, "invalid date '2021-02-30': day is out of range for month"),
        ({**BASE, "date": "March 9"}, "invalid date 'March 9': it has no year"),
        ({**BASE, "date": "Dec 2020"}, "invalid date 'Dec 2020': it has no day"),
        ({**BASE, "date": "yesterday-ish"}, "invalid date 'yesterday-ish': not a date dateutil understands"),
        ({**BASE, "date": 20210309}, "'date' must be text, got a number"),
        ({**BASE, "date": "9999-01-01"}, "invalid date '9999-01-01': the latest year allowed is 9998"),
        ({**BASE, "body": "half \ud800 a pair"}, "the text holds '\\ud800', half of a character (a lone "
         "surrogate), which cannot be stored; fix the source's encoding"),
        ({**BASE, "source": ["\udfff"]}, "the text holds '\\udfff', half of a character (a lone "
         "surrogate), which cannot be stored; fix the source's encoding"),
        ({**BASE, "author": {"name": "x"}}, "'author' must be text, got an object"),
        ({**BASE, "url": "javascript:alert(1)"},
         "'url' must be an absolute http(s) URL, got 'javascript:alert(1)'"),
        ({**BASE, "url": "/relative/path"}, "'url' must be an absolute http(s) URL, got '/relative/path'"),
        ({**BASE, "id": "has space"},
         "'id' must be at most 200 characters, without spaces or '/', got 'has space'"),
        ({**BASE, "id": "a/b"}, "'id' must be at most 200 characters, without spaces or '/', got 'a/b'"),
        ({**BASE, "id": True}, "'id' must be text or a whole number, got a boolean"),
        ({**BASE, "id": "."}, "'id' must not be '.' or '..' (links to the post would not work), got '.'"),
        ({**BASE, "id": " .. "}, "'id' must not be '.' or '..' (links to the post would not work), got '..'"),
        ([BASE], "expected an object with title and body, got a list"),
        ("just a string", "expected an object with title and body, got str"),
    ],
)
def test_invalid_records_say_why(searchsvc, write, record, reason):
    path, result = ingest_one(searchsvc, write, record)
    assert result.exit_code == 1
    assert result.stderr == f"{path}:1: {reason}\n"
    assert "1 invalid" in result.stdout


@pytest.mark.parametrize(
    "written, stored",
    [
        ("2020-12-29", "2020-12-29"),
        ("2020-12-29T13:24", "2020-12-29T13:24:00"),
        ("2020-12-29T13:24:00+03:00", "2020-12-29T10:24:00Z"),
        ("2020-12-29T23:30:00-05:00", "2020-12-30T04:30:00Z"),
        ("2020-12-29T13:24:00.250Z", "2020-12-29T13:24:00.250000Z"),
        ("March 9, 2021", "2021-03-09"),
        ("12/29/2020 - 13:24", "2020-12-29T13:24:00"),
        ("20/11/2019", "2019-11-20"),
        ("01/02/2020", "2020-01-02"),
        ("1789-10-03", "1789-10-03"),
    ],
)
def test_dates_people_write(searchsvc, write, written, stored):
    _, result = ingest_one(searchsvc, write, {**BASE, "date": written})
    assert result.exit_code == 0, result.output
    assert searchsvc.export()[0]["date"] == stored


def test_dayfirst_option(searchsvc, write):
    _, result = ingest_one(searchsvc, write, {**BASE, "date": "01/02/2020"}, "--dayfirst")
    assert result.exit_code == 0
    assert searchsvc.export()[0]["date"] == "2020-02-01"
    # ISO dates stay year-month-day whatever --dayfirst says.
    assert parse_date("2020-12-11", dayfirst=True).isoformat() == "2020-12-11"


def test_date_precision_for_filters():
    assert parse_date("2020").isoformat() == "2020"
    assert parse_date("Dec 2020").isoformat() == "2020-12"
    assert parse_date("29 December 2020").precision == "day"
    with pytest.raises(InvalidDate, match="it has no month or day"):
        parse_date("2020", finest_required="day")


def test_undated_and_authorless_posts_are_kept(searchsvc, write):
    _, result = ingest_one(searchsvc, write, {**BASE, "date": None, "author": ""})
    assert result.exit_code == 0
    [post] = searchsvc.export()
    assert post["date"] is None and post["author"] is None
    assert searchsvc.info()["undated"] == 1


def test_extra_keys_are_kept_and_exported(searchsvc, write):
    record = {**BASE, "lang": "en", "meta_ambiguous": True, "tags": ["a", "b"]}
    _, result = ingest_one(searchsvc, write, record)
    assert result.exit_code == 0
    [post] = searchsvc.export()
    assert (post["lang"], post["meta_ambiguous"], post["tags"]) == ("en", True, ["a", "b"])


def test_text_is_normalised(searchsvc, write):
    record = {"title": "  Two\nlines\tof  title ", "author": " A.  Example ",
              "body": "Cafe\u0301 \x00text  \r\nsecond line  \r\n"}
    _, result = ingest_one(searchsvc, write, record)
    assert result.exit_code == 0
    [post] = searchsvc.export()
    assert post["title"] == "Two lines of title"
    assert post["author"] == "A. Example"
    assert post["body"] == "Caf\u00e9 text\nsecond line"  # NFC, no NUL, Unix newlines


def test_dot_ids_are_invalid_and_the_rest_of_the_batch_is_ingested(searchsvc, write):
    """/posts/.. and /posts/. are resolved by browsers to / and /posts/: no link could reach them."""
    ids = [".", "syn-ok", "..", "...", ".hidden"]
    path = write("dots.jsonl", "".join(json.dumps({**BASE, "id": i, "title": f"Synthetic {i}"}) + "\n" for i in ids))
    result = searchsvc("ingest", path)
    assert result.exit_code == 1
    assert result.stderr == (
        f"{path}:1: 'id' must not be '.' or '..' (links to the post would not work), got '.'\n"
        f"{path}:3: 'id' must not be '.' or '..' (links to the post would not work), got '..'\n")
    assert result.stdout.startswith("Read 1 file: 3 new, 0 updated, 0 unchanged, 2 invalid")
    assert sorted(p["id"] for p in searchsvc.export()) == ["...", ".hidden", "syn-ok"]


def test_ids_given_derived_from_url_or_from_content(searchsvc, write):
    records = [
        {**BASE, "id": 42},
        {**BASE, "title": "With url", "url": "https://example.org/statements/1"},
        {**BASE, "title": "Plain", "date": "2021-03-09", "author": "A. Example"},
    ]
    path = write("a.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    assert searchsvc("ingest", path).exit_code == 0
    ids = {p["title"]: p["id"] for p in searchsvc.export()}
    assert ids["A fictional statement"] == "42"
    assert len(ids["With url"]) == 16 and len(ids["Plain"]) == 16
    # The same post written another way (a listing-style date) gets the same id: no duplicate.
    again = write("b.jsonl", json.dumps({**records[2], "date": "March 9, 2021"}) + "\n")
    result = searchsvc("ingest", again)
    assert result.stdout.startswith("Read 1 file: 0 new, 0 updated, 1 unchanged")
    assert len(searchsvc.export()) == 3


def test_time_zone_offsets_that_cannot_be_converted_are_invalid_dates_found_by_hypothesis():
    from searchsvc.dates import parse_date
    from searchsvc.errors import InvalidDate

    for text in ("2020-01-01T00:00:00+9999", "0001-01-01T00:00:00+05:00"):
        with pytest.raises(InvalidDate, match="its time zone offset cannot be converted to UTC"):
            parse_date(text)


@pytest.mark.parametrize(("text", "message"), [
    ("2040 00:01", "invalid date '2040 00:01': it has an hour but no month"),
    ("March 2021 5pm", "invalid date 'March 2021 5pm': it has an hour but no day"),
])
def test_a_time_without_a_day_is_invalid_found_by_hypothesis(text, message):
    from searchsvc.dates import parse_date
    from searchsvc.errors import InvalidDate

    with pytest.raises(InvalidDate) as error:
        parse_date(text)
    assert str(error.value) == message
