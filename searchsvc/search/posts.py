"""One post at a time: looking it up by id, marking a query's words in all of it, the posts
most like it, and what the whole archive holds."""

from __future__ import annotations

from markupsafe import Markup
from whoosh.searching import Searcher

from searchsvc.errors import PostNotFound
from searchsvc.index.info import Contents, contents
from searchsvc.index.schema import record_from_stored, stored_body_text
from searchsvc.markup import render_markdown
from searchsvc.records import Record
from searchsvc.search.deadline import Deadline
from searchsvc.search.engine import Engine
from searchsvc.search.hits import ANALYZER, make_hit, query_terms
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


def highlighted_post(engine: Engine, record: Record, q: str) -> tuple[Highlighted, Highlighted]:
    """The title and the whole body with the words of query `q` marked."""
    deadline = Deadline(engine.search_timeout)
    with engine.reading() as searcher:
        terms = _terms(searcher, q, deadline)
        return (highlight(record.title, match_spans(record.title, terms, ANALYZER, deadline)),
                highlight(record.body, match_spans(record.body, terms, ANALYZER, deadline)))


def rendered_body(engine: Engine, record: Record, q: str) -> Markup:
    """A Markdown post's body as sanitised HTML (markup.render_markdown), the words of query
    `q` marked in its text; SearchTimeout past the search time limit."""
    deadline = Deadline(engine.search_timeout)
    with engine.reading() as searcher:
        terms = _terms(searcher, q, deadline)
        if terms:  # rendered under the lock, as every highlighting is (the stemmer is one per process)
            return Markup(render_markdown(record.body, lambda text: [
                (start, end) for start, end, _ in match_spans(text, terms, ANALYZER, deadline)]))
    return Markup(render_markdown(record.body))


def _terms(searcher: Searcher, q: str, deadline: Deadline) -> set[str]:
    """The index terms query `q` can match (none for an empty `q`); BadRequest for a bad `q`."""
    terms: set[str] = set()
    if q.strip():
        query = parse_query(q)
        check_expansions(query, searcher.reader(), deadline)  # `w1*` marked 5 MB of a body
        terms = query_terms(searcher, query)
    deadline.check()
    return terms


def similar_posts(engine: Engine, post_id: str, limit: int = 10) -> list[Hit]:
    """Posts most like this one (Whoosh's key-term "more like this" over title and body)."""
    with engine.reading() as searcher:
        docnum = _docnum(searcher, post_id)
        stored = searcher.stored_fields(docnum)
        text = stored["title"] + "\n" + stored_body_text(stored)  # the words `text` indexed
        results = searcher.more_like(docnum, "text", text=text, top=limit)
        return [make_hit(searcher, h.docnum, round(h.score, 4), set()) for h in results]


def archive_contents(engine: Engine) -> Contents:
    """What the archive holds (posts, dates, authors), read once per index version."""
    with engine.reading() as searcher:
        found = engine.kept("contents")
        if found is None:
            found = contents(searcher.reader())
            engine.keep("contents", found)
        return found
