"""Each input format, as people actually have it: what is read, and what is reported where."""

from __future__ import annotations

import gzip
import json

from conftest import SEED_LISTING

POST = {"title": "Fictional statement one", "date": "2021-03-09", "author": "A. Example",
        "body": "Synthetic body text about water rights."}
POST2 = {"title": "Fictional statement two", "date": "2021-03-10", "author": "B. Example",
         "body": "Synthetic body text about river pollution."}


def jsonl(*records: dict) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def titles(searchsvc) -> list[str]:
    return sorted(post["title"] for post in searchsvc.export())


def test_jsonl_reads_every_line_and_names_bad_lines(searchsvc, write):
    path = write("posts.jsonl", jsonl(POST) + "{not json\n\n" + jsonl({"title": "No body"}, POST2))
    result = searchsvc("ingest", path)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{path}:2: invalid JSON: Expecting property name enclosed in double quotes (column 2)",
        f"{path}:4: missing required field 'body'",
    ]
    assert result.stdout == "Read 1 file: 2 new, 0 updated, 0 unchanged, 2 invalid, 0 skipped files\n"
    assert titles(searchsvc) == ["Fictional statement one", "Fictional statement two"]


def test_ndjson_extension_is_json_lines(searchsvc, write):
    result = searchsvc("ingest", write("a.ndjson", jsonl(POST, POST2)))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert titles(searchsvc) == ["Fictional statement one", "Fictional statement two"]


def test_json_single_object(searchsvc, write):
    result = searchsvc("ingest", write("one.json", json.dumps(POST, indent=2)))
    assert result.exit_code == 0, result.output
    assert titles(searchsvc) == ["Fictional statement one"]


def test_json_array_reports_each_element_at_its_line(searchsvc, write):
    text = "[\n" + json.dumps(POST) + ",\n" + '{"title": 7, "body": "x"},\n' + json.dumps(POST2) + "\n]\n"
    path = write("many.json", text)
    result = searchsvc("ingest", path)
    assert result.exit_code == 1
    assert result.stderr == f"{path}:3: 'title' must be text, got a number\n"
    assert titles(searchsvc) == ["Fictional statement one", "Fictional statement two"]


def test_json_that_does_not_parse_is_a_file_error(searchsvc, write):
    path = write("broken.json", '{"title": "x",\n "body": }\n')
    good = write("good.json", json.dumps(POST))
    result = searchsvc("ingest", path, good)
    assert result.exit_code == 1
    assert result.stderr == f"{path}: not valid JSON: Expecting value at line 2 column 10\n"
    assert titles(searchsvc) == ["Fictional statement one"]


def test_empty_json_array_is_fine(searchsvc, write):
    result = searchsvc("ingest", write("none.json", "[ ]"))
    assert result.exit_code == 0
    assert result.stdout.startswith("Read 1 file: 0 new,")


def test_csv_with_bom_crlf_and_multiline_quoted_fields(searchsvc, write):
    content = (
        "\ufeffTitle,Date,Author,Body\r\n"
        '"Fictional, with comma",2021-03-09,A. Example,"First paragraph.\r\n\r\nSecond ""quoted"" one."\r\n'
        "No date here,,,Body of an undated post\r\n"
        "Bad date,2021-13-45,A. Example,Body\r\n"
    )
    path = write("posts.csv", content.encode("utf-8"))
    result = searchsvc("ingest", path)
    assert result.exit_code == 1
    # The multi-line record spans lines 2-4, so the bad row is on line 6.
    assert result.stderr == f"{path}:6: invalid date '2021-13-45': month must be in 1..12\n"
    posts = {p["title"]: p for p in searchsvc.export()}
    assert posts["Fictional, with comma"]["body"] == 'First paragraph.\n\nSecond "quoted" one.'
    assert posts["Fictional, with comma"]["date"] == "2021-03-09"
    assert posts["No date here"]["date"] is None
    assert posts["No date here"]["author"] is None


def test_csv_row_with_wrong_field_count(searchsvc, write):
    path = write("posts.csv", "title,body\nOne,Body one\nTwo,Body,extra\nThree,Body three\n")
    result = searchsvc("ingest", path)
    assert result.exit_code == 1
    assert result.stderr == f"{path}:3: row has 3 fields, the header has 2\n"
    assert titles(searchsvc) == ["One", "Three"]


def test_markdown_front_matter_and_body(searchsvc, write):
    path = write("post.md", "---\ntitle: 1984\ndate: 2021-03-09\nauthor: A. Example\n"
                            "tags: [water, rivers]\n---\n\n# Heading\n\nSome *Markdown* text.\n")
    result = searchsvc("ingest", path)
    assert result.exit_code == 0, result.output
    [post] = searchsvc.export()
    assert post["title"] == "1984"
    assert post["date"] == "2021-03-09"
    assert post["body"] == "# Heading\n\nSome *Markdown* text."
    assert post["tags"] == ["water", "rivers"]


def test_markdown_errors_name_file_and_line(searchsvc, write):
    no_front = write("a.md", "Just text\n")
    bad_yaml = write("b.md", "---\ntitle: x\nauthor: [unclosed\n---\nbody\n")
    unclosed = write("c.md", "---\ntitle: x\n")
    result = searchsvc("ingest", no_front, bad_yaml, unclosed)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{no_front}:1: no YAML front matter (the file must start with a '---' line)",
        f"{bad_yaml}:3: invalid YAML front matter: expected ',' or ']', but got '<stream end>'",
        f"{unclosed}:1: the YAML front matter has no closing '---' line",
    ]


def test_listing_page_of_the_seed(searchsvc):
    result = searchsvc("ingest", SEED_LISTING)
    assert result.exit_code == 0, result.output
    posts = searchsvc.export()
    assert [(p["date"], p["author"], p["title"]) for p in posts] == [
        ("2020-09-29T16:04:00", "Kanat", "We are grateful for France in the Most Difficult Time of "
         "Our History: An Open Letter to the French President, Emmanuel Macron"),
        ("2020-10-08T17:31:00", "Kanat", "My Gratitude to the 38 Countries Which Made Joint "
         "Statement and Defended Justice for Uyghurs During the UN Meeting"),
        ("2020-12-24T12:58:00", "Kanat", "Rebiya Kadeer: Congratulations to our friends and "
         "colleagues in the West at Christmastime!"),
        ("2020-12-29T13:24:00", "Kanat", "Rebiya Kadeer: China’s Attempt to Exchange Vaccines "
         "for Uyghur “Separatists” Must Be Condemned"),
    ]
    assert posts[1]["body"].startswith("I would like to extend my deepest gratitude")
    assert posts[1]["body"].endswith("Their statement reflects commitment to truth and justice.")
    assert "\n\nTheir statement on the ongoing atrocities" in posts[1]["body"]
    # Page chrome is not a post and not part of one.
    assert all("Subscribe to" not in p["body"] for p in posts)
    assert all(p["title"] != "East Turkestan & the Uyghurs" for p in posts)


def test_listing_date_line_without_title(searchsvc, write):
    path = write("page.txt", "Sa, 12/29/2020 - 13:24 -- Kanat\nBody\n\nTitle\nPer, 12/24/2020 - 12:58 -- Kanat\nText\n")
    result = searchsvc("ingest", path)
    assert result.exit_code == 1
    assert result.stderr == f"{path}:1: date line without a title above it\n"
    assert titles(searchsvc) == ["Title"]


def test_gzip_compressed_files(searchsvc, write):
    a = write("a.jsonl.gz", gzip.compress(jsonl(POST).encode()))
    b = write("b.csv.gz", gzip.compress(b"title,body\nFrom CSV,Compressed body\n"))
    result = searchsvc("ingest", a, b)
    assert result.exit_code == 0, result.output
    assert titles(searchsvc) == ["Fictional statement one", "From CSV"]


def test_corrupt_gzip_is_a_file_error(searchsvc, write):
    path = write("bad.jsonl.gz", b"this is not gzip data")
    truncated = write("cut.json.gz", gzip.compress(json.dumps(POST).encode())[:-12])
    result = searchsvc("ingest", path, truncated)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{path}: cannot read: Not a gzipped file (b'th')",
        f"{truncated}: cannot read: the compressed file ends early",
    ]


def test_not_utf8(searchsvc, write):
    rows = write("latin1.csv", "title,body\nCaf\xe9,Body\nPlain,Body\n".encode("latin-1"))
    lines = write("latin1.jsonl", jsonl(POST).encode() + '{"title": "Caf\xe9", "body": "b"}\n'.encode("latin-1"))
    header = write("header.csv", "title,b\xf6dy\nOne,Body\n".encode("latin-1"))
    markdown = write("latin1.md", "---\ntitle: Caf\xe9\n---\nBody\n".encode("latin-1"))
    result = searchsvc("ingest", rows, lines, header, markdown)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{rows}:2: not UTF-8 text (byte 0xe9)",
        f"{lines}:2: not UTF-8 text (byte 0xe9)",
        f"{header}:1: not UTF-8 text (byte 0xf6) in the header row",
        f"{markdown}: not UTF-8 text (byte 0xe9 at line 2)",
    ]
    assert titles(searchsvc) == ["Fictional statement one", "Plain"]


def test_bytes_that_are_not_utf8_spoil_only_their_record(searchsvc, write):
    """A file of many records keeps every record without such bytes (a Markdown file is one record)."""
    array = write("many.json", b'[\n{"title": "Caf\xe9", "body": "x"},\n' + json.dumps(POST).encode() + b"\n]")
    page = write("page.txt", "Blog\n\nCaf\xe9 news\nSa, 12/29/2020 - 13:24 -- A. Example\nBody one\n\n"
                             "Plain news\nSa, 12/30/2020 - 13:24 -- A. Example\nBody two\n".encode("latin-1"))
    # A lone surrogate written as UTF-8 bytes (ED BF BF) is not UTF-8 either.
    surrogate = write("surrogate.csv", b"title,body\nOne,\xed\xbf\xbf\nTwo,Body\n")
    result = searchsvc("ingest", array, page, surrogate)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{array}:2: not UTF-8 text (byte 0xe9)",
        f"{page}:3: not UTF-8 text (byte 0xe9)",
        f"{surrogate}:2: not UTF-8 text (byte 0xed)",
    ]
    assert titles(searchsvc) == ["Fictional statement one", "Plain news", "Two"]


LONE_SURROGATE = ("the text holds '\\udfff', half of a character (a lone surrogate), which cannot be stored; "
                  "fix the source's encoding")


def test_a_lone_surrogate_is_one_invalid_record_in_every_format(searchsvc, write):
    """Escaped in JSON or YAML ("\\udfff"), in any field, key or nested value; the title and author
    are hashed into the id, which used to fail with 'UnicodeEncodeError (a bug)' and lose the run."""
    escaped = "\\udfff"
    bad = [
        write("title.jsonl", jsonl(POST) + '{"title": "A' + escaped + '", "body": "b"}\n'),
        write("author.jsonl", '{"title": "A", "body": "b", "author": "' + escaped + '"}\n'),
        write("url.jsonl", '{"title": "A", "body": "b", "url": "https://example.org/' + escaped + '"}\n'),
        write("key.jsonl", '{"title": "A", "body": "b", "' + escaped + '": 1}\n'),
        write("nested.jsonl", '{"title": "A", "body": "b", "meta": {"tags": ["' + escaped + '"]}}\n'),
        write("array.json", "[\n" + json.dumps(POST2) + ',\n{"title": "' + escaped + '", "body": "b"}\n]'),
        write("front.md", '---\ntitle: "A' + escaped + '"\n---\nBody\n'),
        write("front-key.md", '---\ntitle: A\n"' + escaped + '": 1\n---\nBody\n'),
    ]
    result = searchsvc("ingest", *bad)
    assert result.exit_code == 1
    places = zip(bad, [2, 1, 1, 1, 1, 3, 1, 1], strict=True)
    assert result.stderr.splitlines() == [f"{path}:{line}: {LONE_SURROGATE}" for path, line in places]
    assert result.stdout == "Read 8 files: 2 new, 0 updated, 0 unchanged, 8 invalid, 0 skipped files\n"
    assert titles(searchsvc) == ["Fictional statement one", "Fictional statement two"]


def test_numbers_too_long_to_convert_are_one_invalid_record(searchsvc, write):
    huge = "1" * 5000
    lines = write("a.jsonl", '{"title": "A", "body": "b", "n": ' + huge + "}\n" + jsonl(POST))
    array = write("b.json", "[\n" + json.dumps(POST2) + ',\n{"n": ' + huge + "}\n]")
    front = write("c.md", f"---\ntitle: A\nn: {huge}\n---\nBody\n")
    result = searchsvc("ingest", lines, array, front)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{lines}:1: invalid JSON: a number of more than 4300 digits",
        f"{array}:3: not valid JSON: a number of more than 4300 digits",
        f"{front}:2: invalid YAML front matter: a number of more than 4300 digits",
    ]
    assert titles(searchsvc) == ["Fictional statement one", "Fictional statement two"]


def test_yaml_values_json_cannot_hold_are_an_invalid_record(searchsvc, write):
    path = write("post.md", "---\ntitle: A\nscan: !!binary aGVsbG8=\n---\nBody\n")
    result = searchsvc("ingest", path)
    assert result.exit_code == 1
    assert result.stderr == (f"{path}:1: 'scan' holds binary data, which a post cannot store (only text, "
                             "numbers, true/false, null, lists and objects)\n")


def test_directories_are_read_recursively_and_other_files_skipped(searchsvc, write, tmp_path):
    write("a.jsonl", jsonl(POST))
    write("nested/deeper/b.json", json.dumps(POST2))
    pdf = write("nested/report.pdf", b"%PDF-1.4")
    write(".hidden/c.jsonl", jsonl({"title": "hidden", "body": "x"}))
    write(".DS_Store", b"\0\0")
    result = searchsvc("ingest", tmp_path / "posts")
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"{pdf}: skipped: not a post file (formats: .jsonl .ndjson .json .csv .md .txt .rss .atom .xml .html "
        ".htm (each optionally .gz))\n"
    )
    assert result.stdout == "Read 2 files: 2 new, 0 updated, 0 unchanged, 0 invalid, 1 skipped files\n"
    assert titles(searchsvc) == ["Fictional statement one", "Fictional statement two"]


def test_missing_path_is_reported_and_the_rest_ingested(searchsvc, write, tmp_path):
    missing = str(tmp_path / "nowhere.jsonl")
    result = searchsvc("ingest", missing, write("a.jsonl", jsonl(POST)))
    assert result.exit_code == 1
    assert result.stderr == f"{missing}: no such file or directory\n"
    assert titles(searchsvc) == ["Fictional statement one"]


def test_symbolic_links_to_folders_are_followed_each_folder_once(searchsvc, write, tmp_path):
    """A symlinked folder used to be passed over without a word (and a --rebuild then dropped its posts)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "b.jsonl").write_text(jsonl(POST2), encoding="utf-8")
    write("a.jsonl", jsonl(POST))
    posts = tmp_path / "posts"
    (posts / "linked").symlink_to(elsewhere)
    (posts / "real").mkdir()
    (posts / "real" / "up").symlink_to(posts)  # a loop: posts/real/up/real/up/...
    (posts / "same").symlink_to(posts / "real")
    result = searchsvc("ingest", posts)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"{posts}/same: skipped: already read as {posts}/real",
        f"{posts}/real/up: skipped: a symbolic link loop (this is {posts}, a folder it is in)",
    ]
    assert result.stdout == "Read 2 files: 2 new, 0 updated, 0 unchanged, 0 invalid, 0 skipped files\n"
    assert titles(searchsvc) == ["Fictional statement one", "Fictional statement two"]


def test_a_broken_symbolic_link_is_a_problem_naming_it(searchsvc, write, tmp_path):
    write("a.jsonl", jsonl(POST))
    posts = tmp_path / "posts"
    (posts / "gone.jsonl").symlink_to(tmp_path / "moved.jsonl")
    (posts / "gone-folder").symlink_to(tmp_path / "moved")
    result = searchsvc("ingest", posts, posts / "gone.jsonl")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{posts}/gone-folder: broken symbolic link: {tmp_path}/moved does not exist",
        f"{posts}/gone.jsonl: broken symbolic link: {tmp_path}/moved.jsonl does not exist",
        f"{posts}/gone.jsonl: broken symbolic link: {tmp_path}/moved.jsonl does not exist",
    ]
    assert titles(searchsvc) == ["Fictional statement one"]
