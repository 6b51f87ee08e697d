"""Column names people use: the default synonyms, --field and --fields, and what the summary
line says about them. Every record here is synthetic, by fictional authors."""

from __future__ import annotations

import json

import pytest

POST_ID = "04b81898f67cec0f"  # derived from the url
POST = {"title": "Lighthouse log, week one", "date": "2020-03-02", "author": "Wren Fictional",
        "url": "https://example.org/log/1", "body": "Fog horn tested at dawn."}
# The id `ingest` derived for POST without its url before synonyms existed: an index built
# then holds it, so a post with the known names must keep it.
POST_ID_WITHOUT_URL = "c7535e379d4f00e3"


def jsonl(*records: dict) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def renamed(record: dict, old: str, new: str) -> dict:
    """`record` with its column `old` called `new`, in the same place."""
    return {(new if key == old else key): value for key, value in record.items()}


def summary(new: int = 1, columns: str = "", *, files: str = "1 file", invalid: int = 0, unchanged: int = 0) -> str:
    line = f"Read {files}: {new} new, 0 updated, {unchanged} unchanged, {invalid} invalid, 0 skipped files"
    return line + (f" (columns: {columns})" if columns else "") + "\n"


@pytest.mark.parametrize(("column", "field"), [
    ("headline", "title"), ("name", "title"), ("Headline", "title"),
    ("content", "body"), ("text", "body"),
    ("published", "date"), ("published_at", "date"), ("publishedAt", "date"), ("date_published", "date"),
    ("datePublished", "date"), ("publish_date", "date"), ("pubDate", "date"), ("pub_date", "date"),
    ("created", "date"), ("created_at", "date"),
    ("byline", "author"),
    ("link", "url"), ("permalink", "url"),
])
def test_each_synonym_is_read_as_its_field_and_said_so(searchsvc, write, column, field):
    path = write("a.jsonl", jsonl(renamed(POST, field, column)))
    result = searchsvc("ingest", path)
    assert result.exit_code == 0, result.output
    assert result.stderr == f"{path}: note: columns read as fields: {column} -> {field}\n"
    assert result.stdout == summary(columns=f"{column} -> {field}")
    assert searchsvc.export() == [{"id": POST_ID, **POST}]  # the column is not kept as well


def test_synonyms_give_the_id_of_the_known_names(searchsvc, write):
    without_url = {k: v for k, v in POST.items() if k != "url"}
    known = write("known.jsonl", jsonl(without_url))
    assert searchsvc("ingest", known).stdout == summary()
    assert [p["id"] for p in searchsvc.export()] == [POST_ID_WITHOUT_URL]
    synonyms = {"headline": POST["title"], "pubDate": POST["date"], "byline": POST["author"], "text": POST["body"]}
    result = searchsvc("ingest", write("synonyms.jsonl", jsonl(synonyms)))
    assert result.stdout == summary(0, "headline -> title, pubDate -> date, byline -> author, text -> body",
                                    unchanged=1)
    assert searchsvc.export() == [{"id": POST_ID_WITHOUT_URL, **without_url, "url": None}]


def test_the_known_field_wins_and_the_synonym_stays_an_extra_key(searchsvc, write):
    record = {**POST, "headline": "Shorter headline", "content": "A teaser."}
    result = searchsvc("ingest", write("a.jsonl", jsonl(record)))
    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.stdout == summary()
    assert searchsvc.export() == [{"id": POST_ID, **record}]


def test_the_first_synonym_in_the_table_wins(searchsvc, write):
    record = {"title": "Ferry timetable", "body": "Ferries run hourly.", "created": "2019-01-05",
              "published": "2019-02-01"}
    result = searchsvc("ingest", write("a.jsonl", jsonl(record)))
    assert result.stdout == summary(columns="published -> date")
    [post] = searchsvc.export()
    assert (post["date"], post["created"], "published" in post) == ("2019-02-01", "2019-01-05", False)


def test_explicit_mappings_beat_synonyms_and_the_records_own_column(searchsvc, write):
    record = {"title": "Site | Page title", "headline": "Tide tables revised", "name": "tide-tables",
              "body": "New tables for spring.", "published_at": "2022-04-01"}
    path = write("a.jsonl", jsonl(record))
    result = searchsvc("ingest", "--field", "title=headline", "--field", "DATE=Published_At", path)
    assert result.exit_code == 0, result.output
    assert result.stderr == (f"{path}: note: columns read as fields: headline -> title, published_at -> date; "
                             "not read: title (--field title=headline)\n")
    assert result.stdout == summary(columns="headline -> title, published_at -> date; not read: title")
    [post] = searchsvc.export()
    assert post == {"id": post["id"], "title": "Tide tables revised", "date": "2022-04-01", "author": None,
                    "url": None, "body": "New tables for spring.", "name": "tide-tables"}


def test_one_column_read_as_two_fields(searchsvc, write):
    path = write("posts.csv", "text,created_at\nShort synthetic status update,2023-07-01\n")
    result = searchsvc("ingest", "--field", "title=text", path)
    assert result.stdout == summary(columns="text -> title, text -> body, created_at -> date")
    [post] = searchsvc.export()
    assert (post["title"], post["body"], "text" in post) == ("Short synthetic status update",) * 2 + (False,)


def test_field_date_date_turns_the_dates_synonyms_off(searchsvc, write):
    record = {"title": "Harbour notes", "body": "Quiet day.", "created": "2018-05-05"}
    result = searchsvc("ingest", "--field", "date=date", write("a.jsonl", jsonl(record)))
    assert (result.exit_code, result.stderr, result.stdout) == (0, "", summary())
    [post] = searchsvc.export()
    assert (post["date"], post["created"]) == (None, "2018-05-05")


def test_a_file_mixing_names_is_noted_with_its_counts(searchsvc, write):
    mixed = write("mixed.json", json.dumps([POST, renamed(POST, "title", "headline") | {"url": None},
                                            renamed(POST, "title", "headline") | {"url": "https://example.org/2"}]))
    table = write("table.csv", "Name,Content,Link\nBuoy report,All buoys lit.,https://example.org/3\n")
    plain = write("plain.jsonl", jsonl({**POST, "url": "https://example.org/4"}))
    result = searchsvc("ingest", mixed, plain, table)
    assert result.exit_code == 0, result.output
    assert result.stderr == (f"{mixed}: note: columns read as fields: headline -> title (2 of 3 records)\n"
                             f"{table}: note: columns read as fields: Name -> title, Content -> body, Link -> url\n")
    assert result.stdout == summary(5, "headline -> title, Name -> title, Content -> body, Link -> url",
                                    files="3 files")
    assert sorted(p["title"] for p in searchsvc.export()) == ["Buoy report"] + [POST["title"]] * 4


def test_an_invalid_record_names_the_columns_it_was_read_from(searchsvc, write):
    path = write("news.csv", "headline,content,pubDate\nGood one,Text one.,2021-01-01\n"
                             "Bad date,Text two.,soon\n,Text three.,2021-01-03\n")
    result = searchsvc("ingest", path)
    assert result.exit_code == 1
    columns = "headline -> title, content -> body, pubDate -> date"
    assert result.stderr.splitlines() == [
        f"{path}:3: invalid date 'soon': not a date dateutil understands (columns: {columns})",
        f"{path}:4: missing required field 'title' (columns: {columns})",
        f"{path}: note: columns read as fields: {columns}",
    ]
    assert result.stdout == summary(columns=columns, invalid=2)
    assert [p["title"] for p in searchsvc.export()] == ["Good one"]


def test_front_matter_synonyms(searchsvc, write):
    path = write("post.md", "---\nheadline: Keeper's diary\npublishDate: 2017-11-02\nbyline: Wren Fictional\n"
                            "---\nThe lamp was trimmed twice.\n")
    result = searchsvc("ingest", path)
    assert result.stdout == summary(columns="headline -> title, publishDate -> date, byline -> author")
    [post] = searchsvc.export()
    assert (post["title"], post["date"], post["author"]) == ("Keeper's diary", "2017-11-02", "Wren Fictional")


def test_export_then_ingest_is_unchanged(searchsvc, write, tmp_path):
    source = write("news.csv", "Headline,Text,Published,Byline,Permalink\n"
                               "Gull census,Forty gulls counted.,2016-06-06,Wren Fictional,\n"
                               "Seal sighting,Two seals on the rocks.,2016-06-07,Ash Imaginary,https://example.org/s\n")
    assert searchsvc("ingest", source).exit_code == 0
    first = searchsvc.export()
    export = tmp_path / "export.jsonl"
    assert searchsvc("export", "--output", export).exit_code == 0
    again = searchsvc("ingest", export)
    assert (again.stderr, again.stdout) == ("", summary(0, unchanged=2))
    assert searchsvc("ingest", source).stdout == summary(
        0, "Headline -> title, Text -> body, Published -> date, Byline -> author, Permalink -> url", unchanged=2)
    assert searchsvc.export() == first
    # The columns were read as fields: searched as the title and the author.
    hits = json.loads(searchsvc("search", "title:gull", "--json").stdout)["hits"]
    assert [(h["title"], h["author"]) for h in hits] == [("Gull census", "Wren Fictional")]
    assert json.loads(searchsvc("search", "--author", "Ash Imaginary", "--json").stdout)["total"] == 1


def test_a_mapping_file(searchsvc, write, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("# our CMS export\n\n  title = Story Headline\nauthor=writer\ndate = when\n", encoding="utf-8")
    path = write("cms.csv", "Story Headline,writer,when,body\nMoorings checked,Ash Imaginary,2015-02-02,All tight.\n")
    result = searchsvc("ingest", "--fields", names, "--field", "date=body", path)  # an option overrides the file
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (f"{path}:2: invalid date 'All tight.': not a date dateutil understands "
                                             "(columns: Story Headline -> title, writer -> author, body -> date)")
    result = searchsvc("ingest", "--fields", names, path)
    assert result.exit_code == 0, result.output
    assert result.stdout == summary(columns="Story Headline -> title, writer -> author, when -> date")
    [post] = searchsvc.export()
    assert (post["title"], post["author"], post["date"], "when" in post) == (
        "Moorings checked", "Ash Imaginary", "2015-02-02", False)


@pytest.mark.parametrize(("text", "line", "message"), [
    ("title = headline\ndate published\n", 2,
     "expected FIELD=COLUMN (such as title=headline), got 'date published'"),
    ("# names\nheadline = title\n", 2, "'headline' is not a field; the fields are id, title, date, author, url, body"),
    ("title = headline\n\ntitle = name\n", 3, "title is mapped twice (also at {names}:1)"),
    ("title =\n", 1, "expected FIELD=COLUMN (such as title=headline), got 'title ='"),
])
def test_a_bad_line_of_a_mapping_file_is_a_usage_error_naming_it(searchsvc, write, tmp_path, index_dir, text, line,
                                                                  message):
    names = tmp_path / "names.txt"
    names.write_text(text, encoding="utf-8")
    result = searchsvc("ingest", "--fields", names, write("a.jsonl", jsonl(POST)))
    assert result.exit_code == 2
    assert result.stderr.endswith(
        f"Error: Invalid value for '--fields': {names}:{line}: {message.format(names=names)}\n")
    assert not index_dir.exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--field", "titel=headline"],
     "Invalid value for '--field': 'titel' is not a field; the fields are id, title, date, author, url, body"),
    (["--field", "headline"], "Invalid value for '--field': expected FIELD=COLUMN (such as title=headline), "
                              "got 'headline'"),
    (["--field", "title=a", "--field", "Title=b"],
     "Invalid value for '--field': title is mapped twice: --field title=a and --field Title=b"),
])
def test_a_bad_field_option_is_a_usage_error(searchsvc, write, index_dir, args, message):
    result = searchsvc("ingest", *args, write("a.jsonl", jsonl(POST)))
    assert result.exit_code == 2
    assert result.stderr.startswith("Usage: cli ingest [OPTIONS] PATHS...\n")
    assert result.stderr.endswith(f"Error: {message}\n")
    assert not index_dir.exists()


def test_a_column_no_record_has_is_noted(searchsvc, write):
    result = searchsvc("ingest", "--field", "title=headlne", write("a.jsonl", jsonl(POST)))
    assert result.exit_code == 0
    assert result.stderr == "note: no record has a column 'headlne' (--field title=headlne)\n"
    assert result.stdout == summary()


def test_a_source_ingested_before_synonyms_can_be_read_as_it_was(searchsvc, write):
    # Without synonyms, this record was undated, without author or url, with an id derived from
    # its title alone; its other columns were extra keys.
    record = {"title": POST["title"], "body": POST["body"], "published": "2020-03-02", "byline": "Wren Fictional",
              "link": "https://example.org/log/1"}
    path = write("old.jsonl", jsonl(record))
    result = searchsvc("ingest", "--field", "date=date", "--field", "author=author", "--field", "url=url", path)
    assert (result.exit_code, result.stderr, result.stdout) == (0, "", summary())
    assert searchsvc.export() == [{"id": "5d22d82a1beb8386", "title": POST["title"], "date": None, "author": None,
                                   "url": None, "body": POST["body"], "published": "2020-03-02",
                                   "byline": "Wren Fictional", "link": "https://example.org/log/1"}]
