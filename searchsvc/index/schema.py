"""The index schema, and the mapping between a Record and the document stored for it.

SCHEMA_VERSION changes whenever the fields or their analysis change; an index built
with another version must be rebuilt (`searchsvc ingest --rebuild`).
"""

from __future__ import annotations

import json
from typing import Any

from whoosh import columns, fields

from searchsvc.dates import parse_date
from searchsvc.index.analysis import text_analyzer, word_analyzer
from searchsvc.index.fasttext import FastText
from searchsvc.records import Record

# 6: Turkish posts in text_tr and title_tr, Turkish stems; a Markdown post's `text` is its rendered words,
# kept as `body_text`, and its HTML as `body_html`; 5: Snowball 3 stems by PyStemmer (analysis.py);
# 4: positions as raw uint32, postings arrays
SCHEMA_VERSION = 6

# The ranked fields of each analysis language (analysis.LANGUAGES): title and body, and the title
# again. A post is indexed into its language's fields only, so English posts are ranked on
# exactly the terms and statistics they had before Turkish posts had fields of their own.
LANGUAGE_FIELDS = {"en": ("text", "title"), "tr": ("text_tr", "title_tr")}
# What the query language searches when no field is named: every language's fields.
DEFAULT_FIELDS = tuple(name for fields in LANGUAGE_FIELDS.values() for name in fields)
# The fields `title:` searches.
TITLE_FIELDS = tuple(title for _, title in LANGUAGE_FIELDS.values())
# Fields a query may name: `title:`, `author:`.
QUERY_FIELDS = ("title", "author")
# Unstemmed words for "did you mean" (written by writer.PostWriter, one posting a segment).
SPELL_FIELD = "spell"


def build_schema() -> fields.Schema:
    """The fields of every document.

    `text` (title and body together) carries the ranking: one combined field ranked
    better on SciFact than separate ones. `title` is indexed again so a query can boost
    or name it. `body` is only stored. `spell` keeps unstemmed words for "did you mean".
    A Markdown post indexes its text as a reader sees it (`Record.body_text`: no link URLs,
    no markup), stored as `body_text` so a hit's snippet is cut from it without rendering
    the Markdown again, and stores its HTML as `body_html`, rendered once, here, for every
    view of the post (neither, when it is too long to render: markup.py); `body` keeps the
    source, which export writes.
    A Turkish post has `text_tr` and `title_tr` instead (Turkish stems; its title is
    stored in `title_tr`) and `lang` "tr", which says which analysis highlights it.
    """
    analyzer = text_analyzer()
    turkish = text_analyzer("tr")
    return fields.Schema(
        id=fields.ID(stored=True, unique=True, sortable=True),
        # A word that analyses to several terms (Chinese bigrams, "China's") is a phrase.
        title=FastText(stored=True, analyzer=analyzer, multitoken_query="phrase"),
        text=FastText(analyzer=analyzer, multitoken_query="phrase"),
        title_tr=FastText(stored=True, analyzer=turkish, multitoken_query="phrase"),
        text_tr=FastText(analyzer=turkish, multitoken_query="phrase"),
        lang=fields.STORED(),
        body=fields.STORED(),
        body_text=fields.STORED(),
        body_html=fields.STORED(),
        spell=FastText(analyzer=word_analyzer(), phrase=False),
        author=FastText(stored=True, analyzer=word_analyzer()),
        author_key=fields.ID(sortable=True),
        date=fields.DATETIME(stored=True, sortable=True),
        date_text=fields.STORED(),
        url=fields.STORED(),
        extra=fields.STORED(),
        fingerprint=fields.COLUMN(columns.VarBytesColumn()),
    )


def language_of(record: Record) -> str:
    """The analysis language of a post: "tr" when its `lang` is Turkish ("tr", "TR", "tr-TR"),
    else "en" (English stems; other scripts are matched by word)."""
    lang = record.extra.get("lang")
    if isinstance(lang, str) and lang.strip().lower().replace("_", "-").split("-")[0] == "tr":
        return "tr"
    return "en"


def document_from_record(record: Record) -> dict[str, Any]:
    """The Whoosh document for a record; absent optional values are left out."""
    words = record.title + "\n" + record.body_text  # one object: the analysis reuses its words
    language = language_of(record)
    text_field, title_field = LANGUAGE_FIELDS[language]
    doc: dict[str, Any] = {
        "id": record.id,
        title_field: record.title,
        text_field: words,
        "body": record.body,
        "spell": words,
        "fingerprint": record.fingerprint,
    }
    if record.body_html is not None:
        doc["body_html"] = record.body_html
        doc["body_text"] = record.body_text
    if language != "en":
        doc["lang"] = language
    if record.author is not None:
        doc["author"] = record.author
        doc["author_key"] = record.author
    if record.date is not None:
        doc["date"] = record.date.value
        doc["date_text"] = record.date.isoformat()
    if record.url is not None:
        doc["url"] = record.url
    if record.extra:
        doc["extra"] = json.dumps(record.extra, ensure_ascii=False)
    return doc


def stored_body_text(stored: dict[str, Any]) -> str:
    """The text of a stored post's body as a reader sees it (`Record.body_text`), without rendering."""
    return stored["body_text"] if "body_text" in stored else stored["body"]


def record_from_stored(stored: dict[str, Any]) -> Record:
    """The Record a stored document was made from (its exact export form), with a Markdown
    body's HTML and text as stored: nothing is rendered again."""
    date_text = stored.get("date_text")
    record = Record(
        id=stored["id"],
        title=stored_title(stored),
        body=stored["body"],
        date=parse_date(date_text) if date_text else None,
        author=stored.get("author"),
        url=stored.get("url"),
        extra=json.loads(stored["extra"]) if stored.get("extra") else {},
    )
    if record.markdown:
        # The values of Record's cached properties, as they were when the post was written.
        record.__dict__.update(body_html=stored.get("body_html"), body_text=stored_body_text(stored))
    return record


def stored_language(stored: dict[str, Any]) -> str:
    """The analysis language of a stored post (analysis.LANGUAGES)."""
    return stored.get("lang") or "en"


def stored_title(stored: dict[str, Any]) -> str:
    """The title of a stored post, from its language's title field."""
    return stored[LANGUAGE_FIELDS[stored_language(stored)][1]]
