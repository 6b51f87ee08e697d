"""The query language: checked by us, parsed by Whoosh, and described back to the user.

    uyghur camps            both words (AND is the default)
    "concentration camps"   an exact phrase
    "united states"~3       each word within 3 positions after the one before
    a OR b, a NOT b, -b     boolean; parentheses group
    title:word author:name  fields
    camp*  genocde~         prefix, fuzzy (~2 for two edits)

Whoosh's parser never fails: it turns a stray quote or parenthesis into words and
returns a different query from the one the user meant. We check the syntax first and
raise BadQuery saying what is wrong, so a typo is a 400 and never a silent wrong result.
"""

from __future__ import annotations

import copy
import functools
import itertools
import re
from collections.abc import Callable
from typing import Any

from whoosh import matching, qparser
from whoosh import query as wq
from whoosh.fields import Schema

from searchsvc.errors import BadQuery
from searchsvc.index.analysis import word_analyzer
from searchsvc.index.schema import (
    DEFAULT_FIELDS,
    LANGUAGE_FIELDS,
    QUERY_FIELDS,
    SPELL_FIELD,
    TITLE_FIELDS,
    build_schema,
)
from searchsvc.search.deadline import Deadline
from searchsvc.search.phrases import ExactPhrase
from searchsvc.search.spelling import MAX_WORD_LENGTH, spelling_index

# Title words are also in `text`; this extra weight puts a title match above a body match.
# 0.1 ranked best on SciFact train (nDCG@10 0.7055); larger boosts count the title twice over
# and rank worse (1.0: 0.665, 2.0: 0.618 on 200 claims): benchmarks/README.md has the runs.
TITLE_BOOST = 0.1
# Bounds on queries that are expensive by construction (a worker must never be stuck):
MAX_QUERY_LENGTH = 1000
MAX_WORDS = 64
MAX_FUZZY_EDITS = 2
# The longest fuzzy word (spelling.MAX_WORD_LENGTH: longer than any real word of our corpora).
MAX_FUZZY_LENGTH = MAX_WORD_LENGTH
# How many index words one `prefix*` or `word~` may stand for.
MAX_EXPANSIONS = 500

# The query language's operator words, and its lexemes: also what "did you mean" respells.
OPERATORS = {"AND", "OR", "NOT", "ANDNOT"}
# A bare word, a quoted phrase, a parenthesis, or a field prefix like `title:`.
LEXEME = re.compile(r'[-+]?(?:\w+:)?"[^"]*"(?:~\w*)?|[()]|[^\s()"]+')
# A phrase's slop, `"a b"~3`: each word within 3 positions after the one before.
_SLOP = re.compile(r'"~(?P<slop>\w*)$')
# A slop wider than any sentence reads as "both words in the post": AND says that.
MAX_SLOP = 100
_FIELD = re.compile(r"^(?P<field>\w+):(?P<rest>.*)$")
# A word "did you mean" may respell: letters only, not a field name, `prefix*` or `fuzzy~`.
_PLAIN_WORD = re.compile(r"(?<!\w)[^\W\d_]+(?![\w*~:])")
_SPELLING = word_analyzer()


@functools.cache
def parser(operator: str = "and") -> qparser.QueryParser:
    """The Whoosh parser for our schema, built once per process and operator: bare words are
    joined by `operator`. Parsing keeps no state in it, so threads share it."""
    schema = build_schema()
    fields = {name: schema[name] for name in (*DEFAULT_FIELDS, *QUERY_FIELDS)}
    group = qparser.OrGroup if operator == "or" else qparser.AndGroup
    made = qparser.QueryParser(DEFAULT_FIELDS[0], Schema(**fields), group=group, phraseclass=ExactPhrase)
    made.replace_plugin(qparser.MultifieldPlugin(DEFAULT_FIELDS, fieldboosts=dict.fromkeys(TITLE_FIELDS, TITLE_BOOST)))
    made.add_plugin(_TitlesPlugin())
    made.add_plugin(_WordFuzzyPlugin())
    made.remove_plugin_class(qparser.BoostPlugin)
    made.remove_plugin_class(qparser.RangePlugin)
    # Only the operators we document: Whoosh's REQUIRE and ANDMAYBE made `REQUIRE war` a
    # silently different search. Here they are plain words.
    made.replace_plugin(qparser.OperatorsPlugin(AndMaybe=None, Require=None))
    return made


class _TitlesPlugin(qparser.Plugin):
    """`title:word` searches the title of every language (TITLE_FIELDS), each field analysing
    the word its own way: after Whoosh gives nodes their named field (priority 100), before
    MultifieldPlugin gives the unnamed ones the default fields (110)."""

    def filters(self, parser: qparser.QueryParser) -> list[tuple[Callable[..., Any], int]]:
        return [(self.do_titles, 105)]

    def do_titles(self, parser: qparser.QueryParser, group: Any) -> Any:
        for i, node in enumerate(group):
            if isinstance(node, qparser.syntax.GroupNode):
                group[i] = self.do_titles(parser, node)
            elif node.has_fieldname and node.fieldname == TITLE_FIELDS[0]:
                copies = []
                for name in TITLE_FIELDS:
                    copied = copy.copy(node)
                    copied.set_fieldname(name, override=True)
                    copies.append(copied)
                group[i] = qparser.syntax.OrGroup(copies)
        return group


def parse_query(text: str, operator: str = "and") -> wq.Query:
    """The Whoosh query for `text`, bare words joined by `operator` ("and" or "or");
    BadQuery if it is malformed or has nothing to search."""
    if len(text) > MAX_QUERY_LENGTH:
        raise BadQuery(f"the query is longer than {MAX_QUERY_LENGTH} characters")
    prepared = check_syntax(text)
    try:
        query = parser(operator).parse(prepared)
    except BadQuery:
        raise
    except Exception:  # Whoosh's parser failing on an input we did not foresee
        raise BadQuery("the query could not be understood; check its quotes, parentheses and operators") from None
    query = query.accept(_word_prefixes).accept(_every_post)
    if isinstance(query, wq.Not):  # only exclusions: everything except them
        query = wq.AndNot(wq.Every(), query.query)
    if query is wq.NullQuery or isinstance(query, type(wq.NullQuery)):
        raise BadQuery("the query has no words to search for")
    for leaf in query.leaves():
        if isinstance(leaf, wq.FuzzyTerm) and len(leaf.text) > MAX_FUZZY_LENGTH:
            raise BadQuery(f"'{leaf.text[:20]}…~{leaf.maxdist}': the word is too long for a fuzzy search "
                           f"({len(leaf.text)} letters; at most {MAX_FUZZY_LENGTH})")
        if isinstance(leaf, wq.FuzzyTerm) and leaf.maxdist > MAX_FUZZY_EDITS:
            raise BadQuery(f"'{leaf.text}~{leaf.maxdist}': fuzzy words allow at most {MAX_FUZZY_EDITS} edits")
    return query


class _ScoredExpansion:
    """The matcher of a word standing for several index words: their OR, each word scored by
    BM25, times the query's boost, in every segment.

    Whoosh's MultiTerm.matcher drops the boost when a segment holds one of the words, and when
    it holds three or more in a segment of at most 5,000 posts scores each match 1 (an
    unweighted preloaded OR): the same post scored 6.67 or 1.0 for `pres*` depending on the
    segment it was written to. search/vectors.py scores expansions the same way as this."""

    def matcher(self, searcher: Any, context: Any = None) -> Any:
        words = [word for word in self._btexts(searcher.reader()) if word]  # type: ignore[attr-defined]
        if not words:
            return matching.NullMatcher()
        field = self.field()  # type: ignore[attr-defined]
        if len(words) == 1:
            return wq.Term(field, words[0], boost=self.boost).matcher(searcher, context)  # type: ignore[attr-defined]
        return wq.Or([wq.Term(field, word) for word in words],
                     boost=self.boost).matcher(searcher, context)  # type: ignore[attr-defined]


class WordPrefix(_ScoredExpansion, wq.Prefix):
    """`emergen*` finds "emergency": a prefix of the words people type, not only of the
    stems in the index ("emergency" is indexed as "emerg", which "emergen" does not begin).

    The index words are the stems starting with the prefix plus the stems of every
    unstemmed word (the spelling field) starting with it.
    """

    def _btexts(self, ixreader: Any) -> Any:
        found = set(ixreader.expand_prefix(self.fieldname, self.text))
        term_of = ixreader.schema[self.fieldname].term_function()  # a FastText field: text, title
        for word in ixreader.expand_prefix(SPELL_FIELD, self.text):
            term = term_of(word.decode("utf-8")).encode("utf-8")
            if (self.fieldname, term) in ixreader:
                found.add(term)
        return sorted(found)


def _every_post(q: wq.Query) -> wq.Query:
    """A bare `*` is every post, not every term of a field: Whoosh's Every("text") read the
    postings of every word of the index (6.7 s for `q=*`); Every() lists the documents."""
    return wq.Every() if isinstance(q, wq.Every) else q


def _word_prefixes(q: wq.Query) -> wq.Query:
    if type(q) is wq.Prefix and q.fieldname in DEFAULT_FIELDS:
        return WordPrefix(q.fieldname, q.text, boost=q.boost, constantscore=q.constantscore)
    return q


class WordFuzzy(_ScoredExpansion, wq.FuzzyTerm):
    """`goverment~` finds "government": the words people type within the edit distance,
    not the stems in the index (Whoosh made `gover~` of it, which finds giver, grover, over).

    `text` is the folded, unstemmed word. Its words are the spelling words within the
    distance (spelling.SpellingIndex: found by letter pairs, not by comparing every word);
    its index words are their stems, where the field has them.
    """

    def words(self, ixreader: Any) -> list[str]:
        """The spelling words it stands for: at most MAX_EXPANSIONS + 1."""
        return spelling_index(ixreader).within(self.text, int(self.maxdist), self.prefixlength, MAX_EXPANSIONS)

    def _btexts(self, ixreader: Any) -> Any:
        term_of = ixreader.schema[self.fieldname].term_function()  # a FastText field: text, title
        found = set()
        for word in self.words(ixreader):
            term = term_of(word).encode("utf-8")
            if (self.fieldname, term) in ixreader:
                found.add(term)
        return sorted(found)


class _WordFuzzyPlugin(qparser.FuzzyTermPlugin):
    """Whoosh's `word~` syntax, making a WordFuzzy of a word in a default field."""

    class FuzzyTermNode(qparser.FuzzyTermPlugin.FuzzyTermNode):
        def query(self, parser: qparser.QueryParser) -> wq.Query:
            q = super().query(parser)  # Whoosh's FuzzyTerm of the stem, its checks and boost
            if type(q) is not wq.FuzzyTerm or q.fieldname not in DEFAULT_FIELDS:
                return q
            words = [token.text for token in _SPELLING(self.text)]
            if len(words) != 1:
                # Whoosh would compare the stem with every word of the index (1.4 s a word).
                raise BadQuery(f"'{_fuzzy(self.text, q.maxdist)}': a fuzzy word must be one word, without ' or -")
            return WordFuzzy(q.fieldname, words[0], boost=q.boost, maxdist=q.maxdist,
                             prefixlength=q.prefixlength, constantscore=q.constantscore)


def check_expansions(query: wq.Query, reader: Any, deadline: Deadline) -> None:
    """BadQuery if a prefix or fuzzy word stands for more than MAX_EXPANSIONS index words:
    `a*` would otherwise search tens of thousands of terms at once."""
    for leaf in query.leaves():
        deadline.check()
        if isinstance(leaf, (wq.Prefix, wq.FuzzyTerm, wq.Wildcard)):
            words = leaf.words(reader) if isinstance(leaf, WordFuzzy) else leaf._btexts(reader)
            expanded = itertools.islice(words, MAX_EXPANSIONS + 1)
            if sum(1 for _ in expanded) > MAX_EXPANSIONS:
                shown = f"{leaf.text}*" if isinstance(leaf, wq.Prefix) else _fuzzy(leaf.text, leaf.maxdist)
                raise BadQuery(f"'{shown}' matches more than {MAX_EXPANSIONS} different words; make it longer")


def respell_words(text: str, respell: Callable[[str], str | None]) -> str:
    """`text` with each plain word replaced by `respell(word)` where that gives a word; the
    operators, field names, `prefix*`, `fuzzy~` and author names stay as they are."""

    def lexeme(match: re.Match[str]) -> str:
        found = match.group()
        field = _FIELD.match(found.lstrip("+-"))
        if found in OPERATORS or (field and field["field"].lower() not in DEFAULT_FIELDS):
            return found
        return _PLAIN_WORD.sub(lambda word: respell(word.group()) or word.group(), found)

    return LEXEME.sub(lexeme, text)


def check_syntax(text: str) -> str:
    """Raise BadQuery for unbalanced quotes or parentheses, dangling operators, empty fields.

    Returns the text with `-word` written as `NOT word` (Whoosh's own minus handling
    breaks "Covid-19" and fails inside parentheses) and `+word` as `word`.
    """
    if text.count('"') % 2:
        raise BadQuery('the query has an opening " without a closing one')
    lexemes = LEXEME.findall(text)
    words = sum(1 for lexeme in lexemes if lexeme not in OPERATORS and lexeme not in ("(", ")"))
    if words > MAX_WORDS:
        raise BadQuery(f"the query has {words} words; at most {MAX_WORDS} are allowed")
    depth = 0
    out: list[str] = []
    previous = None  # the kind of the last lexeme: "(", ")", "op", "not", "word", "field"
    for lexeme in lexemes:
        if previous == "field" and lexeme != "(":
            raise BadQuery(f"'{out[-1]}' needs a word after it")
        if lexeme == "(":
            depth += 1
            kind = "("
        elif lexeme == ")":
            depth -= 1
            if depth < 0:
                raise BadQuery("the query has a ')' without a '(' before it")
            if previous == "(":
                raise BadQuery("the query has empty parentheses '()'")
            if previous in ("op", "not"):
                raise BadQuery(f"'{out[-1]}' needs a word after it")
            kind = ")"
        elif lexeme in OPERATORS:
            kind = "not" if lexeme == "NOT" else "op"
            if kind == "op" and previous in (None, "(", "op", "not"):
                raise BadQuery(f"'{lexeme}' needs a word on each side")
        else:
            kind = "word"
            field = _FIELD.match(lexeme)
            if field and field["field"].lower() in QUERY_FIELDS and not field["rest"]:
                kind = "field"  # `title:(a OR b)`: a parenthesis must follow
            slop = _SLOP.search(lexeme)
            if slop and not (slop["slop"].isdigit() and 1 <= int(slop["slop"]) <= MAX_SLOP):
                raise BadQuery(f"'{lexeme}': a phrase's ~ takes a number of positions from 1 to {MAX_SLOP} "
                               '("united states"~3: each word within 3 positions after the one before)')
            lexeme = lexeme if slop else _only_trailing_star(lexeme)
            if not lexeme:
                continue
            if lexeme.startswith("-") and len(lexeme) > 1:
                out.append("NOT")
                lexeme = lexeme[1:]
            elif lexeme.startswith("+") and len(lexeme) > 1:
                lexeme = lexeme[1:]
        out.append(lexeme)
        previous = kind
    if depth > 0:
        raise BadQuery("the query has a '(' that is never closed")
    if any(a == b == "NOT" for a, b in zip(out, out[1:], strict=False)):
        raise BadQuery("the query has 'NOT' twice in a row (or 'NOT -word'): use one")
    if previous in ("op", "not", "field"):
        raise BadQuery(f"'{out[-1]}' needs a word after it")
    return " ".join(out).replace(": (", ":(")


def _only_trailing_star(word: str) -> str:
    """`?` and inner or leading `*` are punctuation, not wildcards: only `prefix*` is syntax
    (a leading wildcard would scan every term of the index)."""
    if word == "*":
        return word
    trailing = word.endswith("*") and len(word.rstrip("*")) > 0
    core = word.replace("?", "").replace("*", "")
    return core + "*" if trailing and core else core


def describe(query: wq.Query) -> str:
    """The query as understood, in the query language: analysed words, fields named only
    when they are not the default ("uyghur AND title:camp")."""
    return _describe(query, top=True)


def _describe(q: wq.Query, top: bool = False) -> str:
    if isinstance(q, wq.Or):
        parts = list(dict.fromkeys(_collapse_default_fields(q.subqueries)))  # `*` is in both fields
        if len(parts) == 1:
            return parts[0]
        text = " OR ".join(parts)
        return text if top else f"({text})"
    if isinstance(q, wq.AndNot):
        text = f"{_describe(q.a)} AND NOT {_describe(q.b)}"
        return text if top else f"({text})"
    if isinstance(q, wq.And):
        text = " AND ".join(_describe(s) for s in q.subqueries)
        return text if top else f"({text})"
    if isinstance(q, wq.Not):
        return f"NOT {_describe(q.query)}"
    if isinstance(q, wq.Every):
        return "*"
    return _field_prefix(q) + _leaf(q)


def _collapse_default_fields(subqueries: list[wq.Query]) -> list[str]:
    """Whoosh expands each word over every default field, and `title:` over every language's
    title (TITLE_FIELDS); show it once, as analysed for English posts (a Turkish post's field
    holds the word's Turkish stem, which is not shown)."""
    parts: list[str] = []
    i = 0
    while i < len(subqueries):
        for fields in (DEFAULT_FIELDS, TITLE_FIELDS):
            group = subqueries[i:i + len(fields)]
            shown = _same_word_over(group, fields)
            if shown is not None:
                parts.append(_describe_without_field(shown) if fields == DEFAULT_FIELDS else _describe(shown))
                i += len(fields)
                break
        else:
            parts.append(_describe(subqueries[i]))
            i += 1
    return parts


def _same_word_over(group: list[wq.Query], fields: tuple[str, ...]) -> wq.Query | None:
    """The part of `group` to show when it is one word over `fields` (the part of the first
    field), else None."""
    named = {_fields_of(q): q for q in group}
    if len(group) != len(fields) or sorted(named) != sorted(fields) or len({type(q) for q in group}) != 1:
        return None
    english = {_describe_without_field(q) for name, q in named.items() if name in LANGUAGE_FIELDS["en"]}
    return named[fields[0]] if len(english) == 1 else None


def _fields_of(q: wq.Query) -> str:
    if hasattr(q, "fieldname"):
        return str(q.fieldname)
    return ",".join(sorted({_fields_of(s) for s in q.children()}))


def _describe_without_field(q: wq.Query) -> str:
    if isinstance(q, wq.And):
        return " AND ".join(_leaf(s) for s in q.subqueries)
    return _leaf(q)


def _field_prefix(q: wq.Query) -> str:
    field = getattr(q, "fieldname", None)
    return "" if field in DEFAULT_FIELDS[:1] else f"{field}:"


def _leaf(q: wq.Query) -> str:
    if isinstance(q, wq.Phrase):
        return '"' + " ".join(q.words) + '"' + (f"~{q.slop}" if q.slop != 1 else "")
    if isinstance(q, wq.Every):
        return "*"
    if isinstance(q, wq.FuzzyTerm):
        return _fuzzy(q.text, q.maxdist)
    if isinstance(q, wq.Prefix):
        return f"{q.text}*"
    if isinstance(q, (wq.Wildcard, wq.Term)):
        return str(q.text)
    if isinstance(q, wq.And):
        return "(" + " AND ".join(_describe(s) for s in q.subqueries) + ")"
    return str(q)


def _fuzzy(word: str, maxdist: int) -> str:
    """A fuzzy word as typed: `word~` for one edit, `word~2` for two."""
    return f"{word}~" + (str(maxdist) if maxdist != 1 else "")
