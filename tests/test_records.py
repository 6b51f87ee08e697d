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


# -- issue 22: values JSON cannot hold, years, control characters, bad rows --------------------
# Issue 22's findings about records and files, each reproduced as the review found it: a value
# JSON cannot hold, a year before 1, control characters rewritten in ids and titles, and one bad
# CSV row or JSON element that dropped every valid record after it.

POST = {"title": "Fictional statement one", "body": "Plainly synthetic text.", "author": "Dana Placeholder"}


def jsonl(*records: dict | str) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


def titles(searchsvc) -> list[str]:
    return sorted(post["title"] for post in searchsvc.export())


@pytest.mark.parametrize("written, shown", [("NaN", "NaN"), ("Infinity", "Infinity"), ("-Infinity", "-Infinity"),
                                            ("1e400", "Infinity"), ("[1, -1e999]", "-Infinity")])
def test_nan_and_infinities_are_invalid_records(searchsvc, write, written, shown):
    """Python's json reads them, JSON cannot write them: stored, /api/posts/ID and the export were not JSON."""
    path = write("a.jsonl", jsonl(POST, '{"title": "Bad number", "body": "b", "x": ' + written + "}",
                                  {**POST, "title": "Fictional statement two"}))
    result = searchsvc("ingest", path)
    assert result.exit_code == 1
    assert result.stderr == (f"{path}:2: 'x' holds {shown}, a number JSON cannot represent (NaN, an infinity, "
                             "or a number too large for a double, such as 1e400)\n")
    assert titles(searchsvc) == ["Fictional statement one", "Fictional statement two"]
    export = searchsvc("export").stdout
    assert "NaN" not in export and "Infinity" not in export


@pytest.mark.parametrize("date", ["-0001-01-01", "-2020-05-04", "\u22120044-03-15", " - 1 Jan 2020"])
def test_a_negative_year_is_an_invalid_date_not_year_one(searchsvc, write, date):
    path = write("a.jsonl", jsonl({**POST, "date": date}, {**POST, "title": "Fictional statement two"}))
    result = searchsvc("ingest", path)
    assert result.exit_code == 1
    assert result.stderr == (f"{path}:1: invalid date {date.strip()!r}: a negative year (before year 1) "
                             "cannot be stored\n")
    assert titles(searchsvc) == ["Fictional statement two"]


def test_a_negative_year_in_a_search_filter_is_a_clear_error(searchsvc, write):
    searchsvc("ingest", write("a.jsonl", jsonl({**POST, "date": "2020-01-02"})))
    result = searchsvc("search", "--from", "-0001-01-01", "synthetic")
    assert result.exit_code == 1
    assert "a negative year (before year 1) cannot be stored" in result.stderr


@pytest.mark.parametrize("field, value, position", [
    ("id", "syn\x00one", 4), ("id", "\x1b[31mred", 1), ("title", "Title\x00with NUL", 6),
    ("title", "Title \x1b[2J clears a terminal", 7), ("author", "Dana\x07Placeholder", 5),
    ("url", "https://example.org/a\x00b", 22), ("title", "Smart \x92quote\x92", 7),
])
def test_control_characters_in_one_line_fields_are_invalid_not_removed(searchsvc, write, field, value, position):
    """NUL and ESC were silently removed: "syn\\x00one" and "synone" were then one post."""
    path = write("a.jsonl", jsonl({**POST, field: value}, {**POST, "title": "Fictional statement two"}))
    result = searchsvc("ingest", path)
    assert result.exit_code == 1
    code = ord(value[position - 1])
    hint = (" (C1 controls are usually Windows-1252 text read as Latin-1: fix the source's encoding)"
            if code >= 0x80 else "")
    assert result.stderr == (f"{path}:1: '{field}' holds the control character U+{code:04X} at position "
                             f"{position}, which is not text{hint}\n")
    assert titles(searchsvc) == ["Fictional statement two"]


def test_tabs_and_newlines_in_a_title_still_fold_to_spaces_and_a_body_keeps_its_text(searchsvc, write):
    result = searchsvc("ingest", write("a.jsonl", jsonl({"title": "Two\r\nlines\tof title", "body": "a\x0cb\x00c"})))
    assert result.exit_code == 0, result.stderr
    [post] = searchsvc.export()
    assert (post["title"], post["body"]) == ("Two lines of title", "abc")


def test_one_too_deep_json_element_is_one_problem_and_the_rest_is_read(searchsvc, write):
    deep = "[" * 100_000 + "]" * 100_000
    long_number = "1" * 5000
    path = write("a.json", "[\n" + ",\n".join([
        json.dumps(POST),
        '{"title": "Deep", "body": "b", "x": ' + deep + "}",
        json.dumps({**POST, "title": "Fictional statement two"}),
        '{"title": "Long", "body": "b", "n": ' + long_number + "}",
        json.dumps({**POST, "title": "Fictional statement three", "text": "a ] and a } in a \\\" string"}),
    ]) + "\n]\n")
    result = searchsvc("ingest", path)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{path}:3: not valid JSON: nested too deeply",
        f"{path}:5: not valid JSON: a number of more than 4300 digits",
    ]
    assert titles(searchsvc) == ["Fictional statement one", "Fictional statement three", "Fictional statement two"]


def test_one_csv_row_of_a_million_fields_is_one_problem_and_the_rest_is_read(searchsvc, write):
    path = write("a.csv", "title,body\nOne,Body\n\"Two, quoted\",\"a body\nover lines with a \"\"quote\"\"\"\n"
                          + "x" + "," * 1_000_001 + "\nThree,Body\n"
                          + "Four,\"a body whose second line is wide\n" + "," * 1_000_001 + "\"\nFive,Body\n")
    result = searchsvc("ingest", path)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{path}:5: too large: line 5 has more than 1,000,000 fields; the row is not read",
        f"{path}:7: too large: line 8 has more than 1,000,000 fields; the row is not read",
    ]
    assert titles(searchsvc) == ["Five", "One", "Three", "Two, quoted"]


def test_a_csv_header_of_a_million_fields_stops_that_file_only(searchsvc, write):
    wide = write("a.csv", "," * 1_000_001 + "\nOne,Body\n")
    fine = write("b.jsonl", jsonl(POST))
    result = searchsvc("ingest", wide, fine)
    assert result.exit_code == 1
    assert result.stderr == (f"{wide}:1: too large: line 1 has more than 1,000,000 fields; the header row is not "
                             "read, nor the file\n")
    assert titles(searchsvc) == ["Fictional statement one"]


@pytest.mark.parametrize("written, stored", [
    ("2021-03-04 10:00 CET", "2021-03-04T09:00:00Z"),          # was stored as 10:00, the zone dropped
    ("Thu, 04 Mar 2021 23:30:00 EST", "2021-03-05T04:30:00Z"),  # RFC 822's names, in every format
    ("2021-03-04 10:00 UTC+3", "2021-03-04T07:00:00Z"),        # was 13:00Z: dateutil reads UTC+3 as -03:00
    ("2021-03-04 10:00 GMT-05:00", "2021-03-04T15:00:00Z"),
    ("2021-03-04T10:00:00+05:30", "2021-03-04T04:30:00Z"),
    ("2021-03-04 10:00", "2021-03-04T10:00:00"),                # no zone: kept as written
])
def test_zone_names_and_utc_offsets_are_read_as_people_write_them(searchsvc, write, written, stored):
    result = searchsvc("ingest", write("a.jsonl", jsonl({**POST, "date": written})))
    assert result.exit_code == 0, result.stderr
    [post] = searchsvc.export()
    assert post["date"] == stored


@pytest.mark.parametrize("zone", ["IST", "BST", "XYZ"])
def test_a_zone_name_of_several_zones_or_none_is_an_invalid_date(searchsvc, write, zone):
    """IST is India's, Israel's or Ireland's: before, the time was kept as if no zone were written."""
    date = f"Thu, 04 Mar 2021 10:00:00 {zone}"
    path = write("a.jsonl", jsonl({**POST, "date": date}))
    result = searchsvc("ingest", path)
    assert result.exit_code == 1
    assert result.stderr == (f"{path}:1: invalid date {date!r}: the time zone {zone!r} is not one searchsvc reads "
                             "(several zones share the name, or it is not a zone); write its offset, +05:30\n")


@pytest.mark.parametrize("depth, kept", [(99, True), (101, False), (980, False), (5000, False)])
def test_a_record_nested_too_deeply_is_one_invalid_record(searchsvc, write, depth, kept):
    """The second review round: JSON's reader took 980 levels and its writer did not, so the whole
    ingest failed as a bug and the valid record beside it was lost."""
    deep = '{"title": "Synthetic deep post", "body": "b", "nest": ' + "[" * depth + "]" * depth + "}"
    path = write("a.jsonl", jsonl(POST, deep))
    result = searchsvc("ingest", path)
    if kept:
        assert result.exit_code == 0, result.stderr
        assert titles(searchsvc) == ["Fictional statement one", "Synthetic deep post"]
    else:
        assert result.exit_code == 1
        assert result.stderr.splitlines()[0].startswith(f"{path}:2: ")
        assert "nested too deeply" in result.stderr
        assert titles(searchsvc) == ["Fictional statement one"]


@pytest.mark.parametrize("written, stored", [("Jan 1, 0050", "0050-01-01"), ("1 March 0099", "0099-03-01"),
                                             ("Mon, 01 Jan 0001 10:00:00 EST", "0001-01-01T15:00:00Z"),
                                             ("Jan 1, 2020 0930", "2020-01-01T09:30:00")])
def test_a_year_written_with_leading_zeros_is_kept_as_written(searchsvc, write, written, stored):
    """The second review round: dateutil moved "Jan 1, 0050" to 2050 and "1 March 0099" to 1999."""
    result = searchsvc("ingest", write("a.jsonl", jsonl({**POST, "date": written})))
    assert result.exit_code == 0, result.stderr
    assert searchsvc.export()[0]["date"] == stored
