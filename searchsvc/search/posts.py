"""One post at a time: looking it up by id, marking a query's words in all of it, the posts
most like it, and what the whole archive holds."""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup
from whoosh.searching import Searcher

from searchsvc.errors import PostNotFound
from searchsvc.index.info import Contents, contents
from searchsvc.index.schema import LANGUAGE_FIELDS, language_of, record_from_stored, stored_body_text
from searchsvc.markup import clean_stored, mark_html
from searchsvc.records import Record
from searchsvc.search.deadline import Deadline
from searchsvc.search.engine import Engine
from searchsvc.search.hits import ANALYZERS, make_hit, query_terms
from searchsvc.search.query import check_expansions, parse_query
from searchsvc.search.results import Hit
from searchsvc.search.snippets import Highlighted, highlight, match_spans


def get_post(engine: Engine, post_id: str) -> Record:
    """The stored post; PostNotFound if there is none."""
    with engine.reading() as searcher:
        return record_from_stored(searcher.stored_fields(_docnum(searcher, post_id)))


def _docnum(searcher: Searcher, post_id: str) -> int:
    docnum = searcher.document_number(id=post_id)
    if docnum is None:
        raise PostNotFound(f"no post with id {post_id!r}")
    return docnum


@dataclass(frozen=True)
class MarkedPost:
    """A post as shown, the words of a query marked: its title, its body as text (None when not
    asked for and the body is rendered HTML), its rendered Markdown (None for a plain body, or one
    too long to render)."""

    title: Highlighted
    body: Highlighted | None
    html: Markup | None


def marked_post(engine: Engine, record: Record, q: str, *, text_body: bool = True) -> MarkedPost:
    """The post with the words of query `q` marked by the analysis of its language: the query read
    once, under one hold of the engine. A Markdown body is the sanitised HTML the index stores
    (`Record.body_html`, rendered once at ingest), marked in its text (markup.mark_html: no
    rendering, linear in the HTML); its text is marked too only if `text_body` (the API's
    `body_highlighted`). SearchTimeout past the search time limit."""
    deadline = Deadline(engine.search_timeout)
    stored_html = None if record.body_html is None else clean_stored(record.body_html)  # not under the lock
    language = language_of(record)
    analyzer = ANALYZERS[language]
    # Marked under the lock, as every highlighting is (one stemmer a process).
    with engine.reading(deadline=deadline) as searcher:
        terms = _terms(searcher, q, deadline).get(language, set())

        def spans(text: str) -> list[tuple[int, int, str]]:
            return match_spans(text, terms, analyzer, deadline)

        title = highlight(record.title, spans(record.title))
        html = stored_html
        if html is not None:
            html = Markup(mark_html(html, lambda text: [(start, end) for start, end, _ in spans(text)])
                          if terms else html)
        body = highlight(record.body, spans(record.body)) if text_body or html is None else None
    return MarkedPost(title, body, html)


def _terms(searcher: Searcher, q: str, deadline: Deadline) -> dict[str, set[str]]:
    """The index terms query `q` can match, by language (none for an empty `q`); BadRequest for a bad `q`."""
    terms: dict[str, set[str]] = {}
    if q.strip():
        query = parse_query(q)
        check_expansions(query, searcher.reader(), deadline)  # `w1*` marked 5 MB of a body
        terms = query_terms(searcher, query)
    deadline.check()
    return terms


def similar_posts(engine: Engine, post_id: str, limit: int = 10) -> list[Hit]:
    """Posts most like this one (Whoosh's key-term "more like this" over title and body), in
    its language."""
    with engine.reading() as searcher:
        docnum = _docnum(searcher, post_id)
        stored = searcher.stored_fields(docnum)
        record = record_from_stored(stored)
        # Its own language's field: posts in the same language, on the same analysis.
        field = LANGUAGE_FIELDS[language_of(record)][0]
        text = record.title + "\n" + stored_body_text(stored)  # the words the field indexed
        results = searcher.more_like(docnum, field, text=text, top=limit)
        return [make_hit(searcher, h.docnum, round(h.score, 4), {}) for h in results]


def archive_contents(engine: Engine) -> Contents:
    """What the archive holds (posts, dates, authors), read once per index version."""
    with engine.reading() as searcher:
        found = engine.kept("contents")
        if found is None:
            found = contents(searcher.reader())
            engine.keep("contents", found)
        return found
