"""Markdown posts: rendered as sanitised HTML on the post page, searched and snippeted as the
text a reader sees, exported as their source. The real sample posts (.md) and plainly
synthetic posts by fictional authors."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import SAMPLE_POSTS, SEED_LISTING, Searchsvc

from searchsvc.errors import InvalidRecord
from searchsvc.markup import ALLOWED_TAGS, MAX_HTML_CHARS, MAX_SOURCE_CHARS, mark_html, plain_text, render_markdown
from searchsvc.records import record_from_mapping

GUIDE_BODY = """## Ferry guide

The *island* ferry leaves the **harbour** at dawn; see the
[harbour timetable](https://example.org/zanzibarquux/timetable.html) first.

- pack a `lantern`
- bring rope

> Tides wait for no one."""

GUIDE = f"""---
title: "Synthetic ferry guide"
date: "2021-02-01"
author: Nell Fictional
---

{GUIDE_BODY}
"""

# Plainly synthetic: every way a post could try to get script, style, frames or a foreign
# request onto the page.
HOSTILE_BODY = """Harmless opening words about kelp.

<script>scriptword()</script>

<img src=x onerror="handlerword()"> inline <span onmouseover="alert('md-over')">span</span>

[click me](javascript:alert('md-js')) and [data link](data:text/html;base64,PHNjcmlwdD4=)
<a href="jav&#x09;ascript:alert(1)">entity</a> <a href="  javascript:alert(1)">spaces</a>
<a href="data:text/html,hi">data</a>

<iframe src="https://evil.example/frame">fallbackword</iframe>

<style>.styleword { display: none }</style>

<p style="color: red" onclick="alert('md-click')">styled paragraph</p>

<div>
<a href="//evil.example/x">scheme-relative</a> <a href="http:evil">odd</a> <a href="/local">local</a>
</div>

![tracker](https://evil.example/pixel.png) <object data="x.swf"></object><embed src="x.swf">
<form action="https://evil.example"><input name=a></form>

<svg onload="alert(1)"><script>alert(2)</script></svg>
<math><mtext><style><img src=x onerror=alert(3)></style></mtext></math>

<mark>self-marked</mark> <base href="https://evil.example/"> <meta http-equiv="refresh" content="0">
<link rel=stylesheet href="https://evil.example/s.css">

[ok link](https://example.org/fine) <a href="mailto:someone@example.org">mail</a>"""

HOSTILE = f"""---
title: "Synthetic hostile Markdown"
date: "2021-02-03"
author: Mallory Fictional
---

{HOSTILE_BODY}
"""

# A JSON Lines post says its body is Markdown itself; another, Markdown-looking, says nothing.
JSONL = [
    {"id": "md-jsonl", "title": "Synthetic list of chores", "author": "Nell Fictional", "date": "2021-02-02",
     "body": "1. sweep the *porch*\n2. mend the [net](https://example.org/net-yarnwick)", "body_format": "markdown"},
    {"id": "plain-jsonl", "title": "Synthetic plain note", "author": "Nell Fictional", "date": "2021-02-04",
     "body": "Stars **literally** typed, and a [bracket](https://example.org/plainquux)."},
]


@pytest.fixture(scope="module")
def md_index(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("markdown")
    (root / "posts").mkdir()
    (root / "posts" / "guide.md").write_text(GUIDE.replace('title:', 'id: md-guide\ntitle:'), encoding="utf-8")
    (root / "posts" / "hostile.md").write_text(HOSTILE.replace('title:', 'id: md-hostile\ntitle:'),
                                               encoding="utf-8")
    (root / "posts" / "posts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in JSONL), encoding="utf-8")
    result = Searchsvc(root / "index")("ingest", SAMPLE_POSTS / "posts", root / "posts")
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    assert result.stdout == "Read 7 files: 8 new, 0 updated, 0 unchanged, 0 invalid, 0 skipped files\n"
    return root / "index"


@pytest.fixture
def md_client(md_index, client_for):
    return client_for(md_index)


def body_of(html: str) -> str:
    """The post page's body element, whole."""
    match = re.search(r'<div class="body[^"]*" dir="auto">.*?</div>\n</article>', html, re.S)
    assert match, html
    return match.group(0)[:-len("\n</article>")]


class Elements(HTMLParser):
    """Every start tag with its attributes."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_a_markdown_post_is_rendered_as_html(md_client):
    html = md_client.get("/posts/md-guide").get_data(as_text=True)
    rel = 'rel="nofollow noopener noreferrer"'
    assert body_of(html) == (
        '<div class="body markdown" dir="auto"><h3>Ferry guide</h3>\n'
        '<p>The <em>island</em> ferry leaves the <strong>harbour</strong> at dawn; see the\n'
        f'<a href="https://example.org/zanzibarquux/timetable.html" {rel}>harbour timetable</a> first.</p>\n'
        '<ul>\n<li>pack a <code>lantern</code></li>\n<li>bring rope</li>\n</ul>\n'
        '<blockquote>\n<p>Tides wait for no one.</p>\n</blockquote>\n</div>'
    )
    assert '<h1 dir="auto">Synthetic ferry guide</h1>' in html  # `##` is one level under the title's <h1>


def test_the_query_is_marked_in_the_rendered_text_only(md_client):
    html = md_client.get("/posts/md-guide?q=harbours").get_data(as_text=True)
    body = body_of(html)
    assert '<strong><mark>harbour</mark></strong>' in body
    assert '<a href="https://example.org/zanzibarquux/timetable.html" rel="nofollow noopener noreferrer">' \
           '<mark>harbour</mark> timetable</a>' in body
    assert body.count("<mark>") == 2
    # Code is text the search reads, and is marked like the rest.
    assert "<li>pack a <code><mark>lantern</mark></code></li>" in body_of(
        md_client.get("/posts/md-guide?q=lantern").get_data(as_text=True))
    # A query that is not valid shows the post unmarked, as for plain posts.
    assert "<mark>" not in body_of(md_client.get("/posts/md-guide?q=harbour+AND").get_data(as_text=True))


def test_a_hostile_markdown_post_keeps_nothing_active(md_client):
    html = md_client.get("/posts/md-hostile").get_data(as_text=True)
    body = body_of(html)
    for tag, attributes in Elements(body).tags:
        assert tag in ALLOWED_TAGS | {"div"}, tag
        for name, value in attributes.items():
            assert name in {"href", "title", "rel", "class", "dir"}, (tag, name)
            if name == "href":
                assert re.match(r"(https?://[^/]|mailto:)", value), value
    for raw in ("<script", "<img", "<iframe", "<style", "<object", "<embed", "<svg", "<math", "<form", "<input",
                "<base", "<meta", "<link", "<mark", " style=", " on", "fallbackword", "evil.example/x",
                "http:evil", 'href="/local"'):
        assert raw not in body, raw
    # Outside the body too: the page's only script is our own, and no style is inline.
    assert re.findall(r"<script\b[^>]*>", html) == ['<script src="/static/app.js" defer>']
    assert "<style" not in html and " style=" not in html
    # What is left is text and plain links: a Markdown link to a script is not a link at all, but its
    # text; an image is a link to it, not loaded.
    rel = 'rel="nofollow noopener noreferrer"'
    assert "<p>[click me](javascript:alert('md-js')) and [data link](data:text/html;base64," in body
    assert f'<a href="https://evil.example/pixel.png" {rel}>tracker</a>' in body
    assert f'<a href="https://example.org/fine" {rel}>ok link</a> <a href="mailto:someone@example.org" {rel}>' \
           'mail</a>' in body
    assert "<p>styled paragraph</p>" in body and "self-marked" in body


def test_the_api_gives_the_source_and_the_html(md_client):
    post = md_client.get("/api/posts/md-guide").get_json()
    assert post["body"] == GUIDE_BODY
    assert post["body_format"] == "markdown"
    assert post["body_html"] == body_of(md_client.get("/posts/md-guide").get_data(as_text=True))[
        len('<div class="body markdown" dir="auto">'):-len("</div>")]
    marked = md_client.get("/api/posts/md-guide?q=rope").get_json()
    assert "<li>bring <mark>rope</mark></li>" in marked["body_html"]
    assert marked["body_highlighted"].count("<mark>rope</mark>") == 1  # the source, marked
    plain = md_client.get("/api/posts/plain-jsonl").get_json()
    assert "body_html" not in plain and "body_format" not in plain


def test_plain_posts_stay_plain(md_client):
    html = md_client.get("/posts/plain-jsonl").get_data(as_text=True)
    assert body_of(html) == ('<div class="body" dir="auto">Stars **literally** typed, and a '
                             '[bracket](https://example.org/plainquux).</div>')


def search(client, q: str) -> dict:
    response = client.get("/api/search", query_string={"q": q})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_words_of_link_urls_are_not_searched_but_link_text_is(md_client):
    assert search(md_client, "zanzibarquux")["total"] == 0  # only in the guide's link URL
    assert search(md_client, "yarnwick")["total"] == 0  # only in the JSON Lines post's link URL
    assert [hit["id"] for hit in search(md_client, "timetable")["hits"]] == ["md-guide"]
    assert [hit["id"] for hit in search(md_client, "net")["hits"]] == ["md-jsonl"]
    # A plain post is searched as written, URLs and all.
    assert [hit["id"] for hit in search(md_client, "plainquux")["hits"]] == ["plain-jsonl"]
    # Nor are the hostile post's scripts, handlers, styles, frames and hidden URLs words of it.
    for word in ("scriptword", "handlerword", "styleword", "fallbackword", "swf", "pixel"):
        assert search(md_client, word)["total"] == 0, word
    assert [hit["id"] for hit in search(md_client, "kelp")["hits"]] == ["md-hostile"]


def test_snippets_are_the_text_without_markup(md_client):
    hits = search(md_client, "lantern")["hits"]
    assert [hit["id"] for hit in hits] == ["md-guide"]
    assert hits[0]["snippet"] == (
        "Ferry guide The island ferry leaves the harbour at dawn; see the harbour timetable first. pack a "
        "<mark>lantern</mark> bring rope Tides wait for no one.")
    assert hits[0]["matched_terms"] == ["lantern"]
    page = md_client.get("/?q=porch").get_data(as_text=True)
    assert "sweep the <mark>porch</mark> mend the net" in page


def test_export_gives_the_source_back_and_reads_back_unchanged(md_index, client_for, tmp_path):
    searchsvc = Searchsvc(md_index)
    exported = {post["id"]: post for post in searchsvc.export()}
    assert exported["md-guide"] == {"id": "md-guide", "title": "Synthetic ferry guide", "date": "2021-02-01",
                                    "author": "Nell Fictional", "url": None, "body": GUIDE_BODY,
                                    "body_format": "markdown"}
    assert exported["md-hostile"]["body"] == HOSTILE_BODY
    assert exported["md-jsonl"] == {**JSONL[0], "url": None}
    assert "body_format" not in exported["plain-jsonl"]
    response = client_for(md_index).get("/api/export", query_string={"q": "lantern", "format": "jsonl"})
    [line] = response.get_data(as_text=True).splitlines()
    record = json.loads(line)
    assert isinstance(record.pop("score"), float)  # the ranking an export adds
    assert record == exported["md-guide"]
    path = tmp_path / "export.jsonl"
    path.write_text("".join(json.dumps(post) + "\n" for post in exported.values()), encoding="utf-8")
    result = searchsvc("ingest", path)
    assert result.stdout == "Read 1 file: 0 new, 0 updated, 8 unchanged, 0 invalid, 0 skipped files\n"


SAMPLE_FIRST_PARAGRAPHS = {
    "2020-09-29-open-letter-to-president-macron.md": "<p>Dear Mr. Emmanuel Macron,</p>",
    "2020-10-08-gratitude-to-the-38-countries-at-the-un.md": "<p>I would like to extend my deepest gratitude",
    "2020-12-24-christmas-greetings-to-the-west.md": "<p>Since concentration camps were built in East Turkistan",
    "2020-12-29-china-vaccines-for-uyghur-separatists.md": "<p>Yesterday, Turkish Fox News reported",
}


def test_the_sample_posts_are_markdown_and_render(md_index, md_client):
    exported = {post["title"]: post for post in Searchsvc(md_index).export() if post["author"] == "Kanat"}
    assert len(exported) == 4 and len(SAMPLE_FIRST_PARAGRAPHS) == 4
    for name, first in SAMPLE_FIRST_PARAGRAPHS.items():
        source = (SAMPLE_POSTS / "posts" / name).read_text(encoding="utf-8")
        title = re.search(r'^title: "(.*)"$', source, re.M).group(1)
        post = exported[title]
        assert post["body_format"] == "markdown"
        assert post["body"] == source.split("---\n", 2)[2].strip()  # the file's text, as written
        body = body_of(md_client.get(f"/posts/{post['id']}").get_data(as_text=True))
        assert body.startswith(f'<div class="body markdown" dir="auto">{first}'), body[:200]
        assert body.count("<p>") == post["body"].count("\n\n") + 1  # each paragraph a <p>
    hits = search(md_client, "Macron")["hits"]
    assert hits[0]["title"].startswith("We are grateful for France")
    assert hits[0]["snippet"].startswith("Dear Mr. Emmanuel <mark>Macron</mark>, You have given the Uyghur people")


def test_the_seed_listing_read_with_the_sample_posts_keeps_them_markdown(searchsvc):
    """The listing shows the same posts' text, without their Markdown: the posts keep it."""
    result = searchsvc("ingest", SAMPLE_POSTS / "posts", SEED_LISTING)
    assert result.stdout == "Read 5 files: 4 new, 0 updated, 0 unchanged, 0 invalid, 0 skipped files\n"
    warnings = result.stderr.splitlines()
    assert len(warnings) == 4
    for line in warnings:
        assert re.fullmatch(rf"{re.escape(str(SEED_LISTING))}:\d+: warning: post '[0-9a-f]{{16}}' is the text of "
                            r"the Markdown post at .*/sample_posts/posts/[-\w]+\.md:1; kept the Markdown", line), line
    assert [post["body_format"] for post in searchsvc.export()] == ["markdown"] * 4
    again = searchsvc("ingest", SEED_LISTING)
    assert (again.stdout, again.stderr) == (
        "Read 1 file: 0 new, 0 updated, 4 unchanged, 0 invalid, 0 skipped files\n", "")


def test_front_matter_may_say_the_body_is_plain(searchsvc, write):
    path = write("note.md", "---\ntitle: Synthetic plain note\nbody_format: Plain\n---\n\n*not* emphasis\n")
    assert searchsvc("ingest", path).exit_code == 0
    [post] = searchsvc.export()
    assert (post["body"], post["body_format"]) == ("*not* emphasis", "plain")


def test_an_unknown_body_format_is_refused_and_the_rest_kept(searchsvc, write):
    good = {"title": "Synthetic good one", "body": "*fine*", "BODY_FORMAT": " Markdown "}
    path = write("posts.jsonl", "".join(json.dumps(r) + "\n" for r in (
        {"title": "Synthetic bad one", "body": "text", "body_format": "html"},
        {"title": "Synthetic bad two", "body": "text", "body_format": ["markdown"]},
        {"title": "Synthetic bad three", "body": "text", "body_format": "markdown", "Body_Format": "plain"},
        good,
    )))
    result = searchsvc("ingest", path)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{path}:1: 'body_format' must be 'plain' or 'markdown' (or absent, for plain text), got 'html'",
        f"{path}:2: 'body_format' must be 'plain' or 'markdown' (or absent, for plain text), got ['markdown']",
        f"{path}:3: 'body_format' is given twice ('body_format' and 'Body_Format')",
    ]
    [post] = searchsvc.export()
    assert (post["title"], post["body_format"]) == ("Synthetic good one", "markdown")


def test_a_csv_column_says_which_bodies_are_markdown(searchsvc, write):
    path = write("posts.csv", "title,body,Body_Format\nSynthetic one,**bold** words,markdown\n"
                              "Synthetic two,**stars** kept,\n")
    assert searchsvc("ingest", path).exit_code == 0
    assert searchsvc("search", "bold").stdout.count("**") == 0
    posts = {post["title"]: post for post in searchsvc.export()}
    assert posts["Synthetic one"]["body_format"] == "markdown"
    assert posts["Synthetic two"]["body_format"] is None  # an empty cell: plain text


def test_plain_text_is_what_a_reader_sees():
    assert plain_text("# Title\n\nSome *em* and a [link](https://example.org/u \"t\") &amp; more\nsame "
                      "paragraph.\n\n- one\n- two\n\n```\ncode  line\n```\n\n![alt](https://example.org/i.png)"
                      "\n\n<!-- more -->\n\n<b>raw</b> <script>gone()</script>") == (
        "Title\n\nSome em and a link & more same paragraph.\n\none\n\ntwo\n\ncode line\n\nalt\n\nraw")


def test_marks_go_around_words_of_the_html_text_only_and_the_posts_own_marks_are_dropped():
    html = render_markdown('<mark>fake</mark> run *run* [run](https://example.org/run "run") `run` AT&amp;T&nbsp;run')
    rel = 'rel="nofollow noopener noreferrer"'
    assert html == (f'<p>fake run <em>run</em> <a href="https://example.org/run" title="run" {rel}>run</a> '
                    '<code>run</code> AT&amp;T&nbsp;run</p>\n')
    # Words of tags, attributes and character references are never marked, whatever the query.
    words = re.compile("run|example|href|title|nofollow|code|amp|nbsp|p")
    assert mark_html(html, lambda text: [(m.start(), m.end()) for m in words.finditer(text)]) == (
        f'<p>fake <mark>run</mark> <em><mark>run</mark></em> <a href="https://example.org/run" title="run" {rel}>'
        '<mark>run</mark></a> <code><mark>run</mark></code> AT&amp;T&nbsp;<mark>run</mark></p>\n')


def test_a_record_with_markdown_has_the_text_as_body_text():
    record = record_from_mapping({"title": "Synthetic", "body": "[a](https://x.example/b) *c*",
                                  "body_format": "markdown"})
    assert (record.markdown, record.body_text, record.body) == (True, "a c", "[a](https://x.example/b) *c*")
    with pytest.raises(InvalidRecord, match="'body_format' must be 'plain' or 'markdown'"):
        record_from_mapping({"title": "Synthetic", "body": "b", "body_format": "rst"})


# -- the cost of a Markdown post: rendered once, at ingest, within bounds --------------------------

def test_a_markdown_post_is_rendered_at_ingest_and_shown_without_rendering_again(md_index, client_for, monkeypatch):
    """The index holds each Markdown post's HTML: the page and the API read it, and mark a
    query's words in its text, with the renderer out of reach."""
    client = client_for(md_index)
    expected = body_of(client.get("/posts/md-guide?q=rope").get_data(as_text=True))

    def no_rendering():
        raise AssertionError("Markdown rendered on a view")

    monkeypatch.setattr("searchsvc.markup._parser", no_rendering)
    assert body_of(client.get("/posts/md-guide?q=rope").get_data(as_text=True)) == expected
    assert "<li>bring <mark>rope</mark></li>" in expected
    post = client.get("/api/posts/md-guide?q=rope").get_json()
    assert post["body_html"] == expected[len('<div class="body markdown" dir="auto">'):-len("</div>")]
    assert client.get("/posts/md-hostile").status_code == 200


def prose(size: int) -> str:
    """Plainly synthetic Markdown of exactly `size` characters, opening with the word **kelpie** in bold."""
    text = "The **kelpie** swims by the synthetic pier." + " It swims on." * (size // 13 + 1)
    return text[:size - 1] + "."


def test_a_markdown_body_too_long_to_render_is_kept_as_plain_text_with_a_warning(searchsvc, write, client_for,
                                                                                  index_dir):
    """Over MAX_SOURCE_CHARS, or with HTML over MAX_HTML_CHARS (a few kilobytes of references
    to a long link), a body is not rendered: the post is kept, its page shows the Markdown as
    written with a note, and its words are searched as written."""
    amplified = f"[r]: https://example.org/{'x' * 10_000}\n\n" + ("See [r]. " * 300).strip()  # 12 KB; 3 MB of HTML
    records = [
        {"id": "md-fine", "title": "Synthetic fine one", "body": "A *kelpie* note.", "body_format": "markdown"},
        {"id": "md-long", "title": "Synthetic long one", "body": prose(MAX_SOURCE_CHARS + 1),
         "body_format": "markdown"},
        {"id": "md-bound", "title": "Synthetic bound one", "body": prose(MAX_SOURCE_CHARS), "body_format": "markdown"},
        {"id": "md-refs", "title": "Synthetic references", "body": amplified, "body_format": "markdown"},
    ]
    path = write("posts.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    result = searchsvc("ingest", path)
    assert (result.exit_code, result.stdout) == (
        0, "Read 1 file: 4 new, 0 updated, 0 unchanged, 0 invalid, 0 skipped files\n")
    assert result.stderr.splitlines() == [
        f"{path}:2: warning: the Markdown of post 'md-long' is {MAX_SOURCE_CHARS + 1:,} characters long, more than "
        f"the {MAX_SOURCE_CHARS:,} rendered; it is shown and searched as plain text",
        f"{path}:4: warning: the Markdown of post 'md-refs' would render to more than {MAX_HTML_CHARS:,} characters "
        "of HTML; it is shown and searched as plain text",
    ]
    assert {post["id"]: post["body"] for post in searchsvc.export()} == {r["id"]: r["body"] for r in records}
    client = client_for(index_dir)
    note = "<p class=\"hint\">This post's Markdown is too long to show formatted: it is shown as written.</p>"
    for post_id in ("md-long", "md-refs"):
        html = client.get(f"/posts/{post_id}").get_data(as_text=True)
        assert note in html and '<div class="body" dir="auto">' in html, post_id
        assert client.get(f"/api/posts/{post_id}").get_json()["body_html"] is None
    long_page = client.get("/posts/md-long?q=kelpie").get_data(as_text=True)
    assert body_of(long_page).startswith('<div class="body" dir="auto">The **<mark>kelpie</mark>** swims by')
    assert "<strong>" not in long_page
    # At the bound, and below it, the Markdown is rendered.
    bound = client.get("/api/posts/md-bound?q=kelpie").get_json()["body_html"]
    assert bound.startswith("<p>The <strong><mark>kelpie</mark></strong> swims by")
    assert note not in client.get("/posts/md-bound").get_data(as_text=True)
    assert client.get("/api/posts/md-fine").get_json()["body_html"] == "<p>A <em>kelpie</em> note.</p>\n"
    # Searched as written: the long post's snippet is its Markdown source.
    hits = {hit["id"]: hit for hit in search(client, "kelpie")["hits"]}
    assert set(hits) == {"md-fine", "md-long", "md-bound"}
    assert hits["md-long"]["snippet"].startswith("The **<mark>kelpie</mark>** swims")
    assert hits["md-bound"]["snippet"].startswith("The <mark>kelpie</mark> swims")


def test_the_bounds_hold_for_the_renderer_itself():
    assert render_markdown(prose(MAX_SOURCE_CHARS + 1)) is None
    assert plain_text(prose(MAX_SOURCE_CHARS + 1)) == prose(MAX_SOURCE_CHARS + 1)
    assert render_markdown(prose(MAX_SOURCE_CHARS)).startswith("<p>The <strong>kelpie</strong>")
    refs = "[r]: https://example.org/" + "x" * 1_000 + "\n\n"
    uses = MAX_HTML_CHARS // 1_000
    assert render_markdown(refs + "[r] " * uses) is None
    assert render_markdown(refs + "[r] " * (uses // 2)).count('<a href="https://example.org/xxx') == uses // 2


@pytest.mark.slow  # real helper processes: CI runs it
def test_a_markdown_body_too_long_to_render_is_told_when_written_by_a_helper_process(searchsvc, write, monkeypatch):
    monkeypatch.setattr("searchsvc.index.writer.PARALLEL_MIN_CHARS", 100_000)
    records = [{"id": f"md-{n}", "title": f"Synthetic {n}", "body": prose(60_000 if n != 7 else MAX_SOURCE_CHARS + 1),
                "body_format": "markdown"} for n in range(8)]
    path = write("posts.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    result = searchsvc("ingest", path)
    assert result.stdout == "Read 1 file: 8 new, 0 updated, 0 unchanged, 0 invalid, 0 skipped files\n"
    assert result.stderr == (f"{path}:8: warning: the Markdown of post 'md-7' is {MAX_SOURCE_CHARS + 1:,} characters "
                             f"long, more than the {MAX_SOURCE_CHARS:,} rendered; it is shown and searched as plain "
                             "text\n")
    assert len(list(searchsvc.index.glob("g*/*.seg"))) >= 2
