"""A page of hits: each matching post's stored fields, its title highlighted and a snippet cut
from its body around the query's words."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet

from whoosh import query as wq
from whoosh.searching import Searcher

from searchsvc.index.analysis import LANGUAGES, text_analyzer
from searchsvc.index.schema import LANGUAGE_FIELDS, stored_body_text, stored_language, stored_title
from searchsvc.search.deadline import Deadline
from searchsvc.search.request import SearchRequest
from searchsvc.search.results import Hit
from searchsvc.search.snippets import highlight, match_spans, snippet

# The index's analysis of each language: a word is marked when its term matched.
ANALYZERS = {language: text_analyzer(language) for language in LANGUAGES}
ANALYZER = ANALYZERS["en"]

# The query's index terms by analysis language: a post is highlighted with its own language's.
Terms = Mapping[str, AbstractSet[str]]


def query_terms(searcher: Searcher, query: wq.Query) -> dict[str, set[str]]:
    """The index terms of each language's title and body fields that `query` can match,
    prefixes and fuzzy terms expanded (what highlighting looks for)."""
    found: dict[str, set[str]] = {language: set() for language in LANGUAGES}
    if isinstance(query, wq.Every):
        return found
    language_of = {field: language for language, fields in LANGUAGE_FIELDS.items() for field in fields}
    reader = searcher.reader()
    schema = reader.schema
    # Not Whoosh's Query.existing_terms: its loop variable overwrites its `fieldname` argument,
    # so after a first leaf in `text` it skipped every leaf of another field (`text_tr`).
    for leaf in query.leaves():
        for field, text in leaf.expanded_terms(reader, phrases=True):
            if field not in language_of:
                continue
            try:
                term = schema[field].to_bytes(text)
            except ValueError:
                continue
            if (field, term) in reader:
                found[language_of[field]].add(term.decode("utf-8"))
    return found


def page_hits(searcher: Searcher, terms: Terms, ranked: list[tuple[int, float | None]],
              request: SearchRequest, deadline: Deadline) -> list[Hit]:
    """Hits for this page of `ranked` (docnum, score) pairs; `terms` are the query's index
    terms. Whoosh records matched terms only for score-sorted searches; the words the
    highlighter finds in the title and body are the matched terms in every order."""
    start = (request.page - 1) * request.per_page
    hits = []
    for docnum, score in ranked[start:start + request.per_page]:
        deadline.check()  # a hundred long posts to highlight is work too
        hits.append(make_hit(searcher, docnum, score, terms, deadline))
    return hits


def make_hit(searcher: Searcher, docnum: int, score: float | None, terms: Terms,
             deadline: Deadline | None = None) -> Hit:
    """A hit with its title highlighted and its snippet, by the analysis of the post's language
    (`terms` by language, as `query_terms` gives them); SearchTimeout past `deadline` (one
    body of megabytes took seconds to highlight, past a request's limit)."""
    deadline = deadline or Deadline(None)
    stored = searcher.stored_fields(docnum)
    language = stored_language(stored)
    title = stored_title(stored)
    wanted = terms.get(language, set())
    title_spans = match_spans(title, wanted, ANALYZERS[language], deadline)
    body = stored_body_text(stored)  # a Markdown post's words, not its markup
    body_spans = match_spans(body, wanted, ANALYZERS[language], deadline)
    return Hit(
        id=stored["id"],
        title=title,
        date=stored.get("date_text"),
        author=stored.get("author"),
        url=stored.get("url"),
        score=score,
        title_highlighted=highlight(title, title_spans),
        snippet=snippet(body, body_spans, deadline=deadline),
        matched_terms=tuple(sorted({term for _, _, term in title_spans + body_spans})),
    )
