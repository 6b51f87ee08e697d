"""Answering a search: the request, the query language, the open index (engine), ranking, filters,
facets, snippets and "did you mean", into one SearchResult."""
