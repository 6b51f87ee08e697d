"""Named exceptions of the core, each with the HTTP status an edge should answer with.

The CLI turns every `SearchsvcError` into `Error: <message>` and exit 1 (cli/commands.Group);
the web side turns it into the one JSON error shape, or an HTML page (web/errors.py). Nothing
else should reach a user.
"""

from __future__ import annotations


class SearchsvcError(Exception):
    """Base of every error the core raises on purpose."""

    status = 500
    code = "error"


class BadSetting(SearchsvcError):
    """A configuration value (an option or SEARCHSVC_* variable) that cannot be used."""

    code = "bad_setting"


class IndexMissing(SearchsvcError):
    """There is no index at the configured location yet."""

    status = 503
    code = "index_missing"


class NotAnIndex(SearchsvcError):
    """The directory holds something that searchsvc did not create; we refuse to open it."""

    status = 503
    code = "not_an_index"


class IndexVersionMismatch(SearchsvcError):
    """The index was built with another schema version and must be rebuilt."""

    status = 503
    code = "index_version"


class IndexBusy(SearchsvcError):
    """Another process holds the index's write lock for longer than we may wait."""

    status = 503
    code = "index_busy"


class DiskFull(SearchsvcError):
    """The disk filled up while the index was being written; the last commit is intact."""

    status = 507
    code = "disk_full"


class InvalidRecord(SearchsvcError):
    """A post record fails validation; `reason` says why, without the place."""

    status = 400
    code = "invalid_record"

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class InvalidDate(InvalidRecord):
    """A date string that is not a real, complete date."""

    code = "bad_date"


class BadRequest(SearchsvcError):
    """A request parameter is invalid; `param` names it and `code` says how."""

    status = 400

    def __init__(self, message: str, *, code: str = "bad_request", param: str | None = None):
        super().__init__(message)
        self.code = code
        self.param = param


class BadQuery(BadRequest):
    """The query text cannot be parsed as the user meant it."""

    def __init__(self, message: str):
        super().__init__(message, code="bad_query", param="q")


class SearchTimeout(SearchsvcError):
    """A search ran past its time limit and was stopped."""

    status = 503
    code = "search_timeout"


class RateLimited(SearchsvcError):
    """A client sent more requests than the configured rate allows."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class TooManyExports(SearchsvcError):
    """As many exports as a worker process allows are streaming; `retry_after` is in seconds."""

    status = 503
    code = "too_many_exports"

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class IndexDamaged(SearchsvcError):
    """The index directory is ours but cannot be read (a truncated or missing file)."""

    status = 503
    code = "index_damaged"


class PostNotFound(SearchsvcError):
    """No post has the id asked for."""

    status = 404
    code = "not_found"
