"""The `searchsvc` command: parses options, calls the core, prints results. Nothing more."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from searchsvc import settings
from searchsvc.cli.terminal import format_result
from searchsvc.errors import IndexDamaged, SearchsvcError
from searchsvc.index.check import REPAIR
from searchsvc.index.check import check as check_index
from searchsvc.index.dump import iter_records, write_jsonl
from searchsvc.index.info import index_info
from searchsvc.index.publish import publish as publish_local
from searchsvc.index.remote import is_remote, publish_remote
from searchsvc.index.snapshot import restore as restore_snapshot
from searchsvc.index.snapshot import snapshot as take_snapshot
from searchsvc.index.store import IndexStore
from searchsvc.ingest.batch import KEPT_LINES, Batch, IngestReport, fingerprints, read_batch, read_web, write_batch
from searchsvc.ingest.bounded import Limits
from searchsvc.ingest.delete import delete_posts
from searchsvc.ingest.fetch import DEFAULT_DELAY, DEFAULT_TIMEOUT, USER_AGENT, Fetcher
from searchsvc.ingest.fieldnames import (
    SYNONYMS,
    FieldMapError,
    FieldNames,
    Mapped,
    field_names,
    parse_mapping,
    read_mapping_file,
)
from searchsvc.ingest.follow import DEFAULT_MAX_PAGES, STATE_FILE, Crawl, FetchState, is_url
from searchsvc.search.engine import Engine
from searchsvc.search.request import DEFAULT_PER_PAGE, SORTS, request_from_params
from searchsvc.search.run import search as run_search

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Group(click.Group):
    """Turns the core's named errors (and OS errors) into `Error: ...`, exit 1, no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SearchsvcError as e:
            raise click.ClickException(str(e)) from None
        except BrokenPipeError:
            # `searchsvc search ... | head` is normal use, not an error: the reader has all it wanted.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return None
        except OSError as e:
            where = f" ({e.filename})" if e.filename else ""
            raise click.ClickException(f"{e.strerror or e}{where}") from None
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as e:
            # A bug of ours: say so plainly; SEARCHSVC_DEBUG=1 shows the traceback.
            if os.environ.get("SEARCHSVC_DEBUG"):
                raise
            raise click.ClickException(
                f"unexpected {type(e).__name__}: {e} (a bug: please report it; "
                "SEARCHSVC_DEBUG=1 shows the traceback)"
            ) from None


def index_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--index",
        "index_dir",
        envvar=settings.INDEX.envvar,
        default=settings.INDEX.default,
        show_default=True,
        type=click.Path(file_okay=False),
        help=f"{settings.INDEX.help} Environment: {settings.INDEX.envvar}.",
    )(f)


def wait_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--wait",
        envvar=settings.WAIT.envvar,
        default=settings.WAIT.default,
        show_default=True,
        type=click.FloatRange(min=0),
        metavar="SECONDS",
        help=settings.WAIT.help,
    )(f)


@click.group(cls=Group, context_settings=CONTEXT)
@click.version_option(package_name="searchsvc", message="%(prog)s %(version)s")
def cli() -> None:
    """Full-text search over public statements.

    \b
    Example:
        searchsvc ingest sample_posts/
        searchsvc info
    """


INGEST_HELP = f"""Add or update the posts in PATHS: files and directories (read recursively;
    symbolic links to folders are followed, each folder read once), and http(s) URLs of feeds
    and pages (fetched politely: see `searchsvc follow --help`).

    Formats by extension: .jsonl .ndjson .json .csv .md (YAML front matter) .txt (the
    blog listing format) .rss .atom .xml (RSS and Atom feeds) .html .htm (a post's page, or a
    listing of teasers), each optionally gzip-compressed (.gz). Each record needs a title and a body; date, author,
    url and id are optional; columns named like headline, content, pubDate, byline or link are
    read as them where a record lacks the field itself, and the summary line says so. Invalid
    records are reported as FILE:LINE: reason on stderr
    and the valid ones are still ingested; the exit code is then 1. So is a record, or a file
    read whole (all but JSON Lines), of more than {settings.MAX_RECORD_BYTES.envvar}
    ({settings.MAX_RECORD_BYTES.default}), and a .gz file inflating more than
    {settings.MAX_GZIP_RATIO.envvar} ({settings.MAX_GZIP_RATIO.default}) times its size.

    A teaser (a listing's, a feed's summary) never replaces a longer body of the same post: the
    summary line counts the teasers kept aside.

    \b
    Example:
        searchsvc ingest sample_posts/
        searchsvc ingest --rebuild archive.jsonl.gz
        searchsvc ingest --field title=headline --field date=published_at news.csv
        searchsvc ingest https://example.org/statements/rss.xml
    """

FOLLOW_HELP = f"""Fetch each URL (a feed, a sitemap or a blog's listing page) and the post pages it
    links to, and add their posts; a listing's next pages are followed too. Only pages on the
    URL's own site are fetched, at most --max-pages.

    Not fetched, each said as URL: not fetched: reason: an address that URL parsers read
    differently (a backslash, user@ before the host, a control character, an IPv4 address not
    written a.b.c.d), and one at a loopback, private or link-local address other than a start
    URL's own server (--allow-private fetches those). A start URL redirecting to another site
    has that page read, not that site crawled.

    \b
    Politely: robots.txt is obeyed (as RFC 9309 reads it: one that cannot be read allows
    nothing), each site is sent one request at a time, --delay seconds apart (more if its
    robots.txt asks for a Crawl-delay), with a User-Agent naming searchsvc. Each answer's ETag
    and Last-Modified are kept in the index folder ({STATE_FILE}), so the next run asks for
    each page conditionally and a page that did not change is not downloaded again.

    A page that cannot be fetched is reported as URL: reason (exit code 1), and every post
    that did arrive is indexed; a post whose page failed keeps the teaser its listing or feed
    gave.

    \b
    Example:
        searchsvc follow https://example.org/statements
        searchsvc follow --delay 5 https://example.org/sitemap.xml
    """


def web_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--delay", type=click.FloatRange(min=0), default=DEFAULT_DELAY, show_default=True,
                     metavar="SECONDS", help="Seconds between two requests to one site."),
        click.option("--timeout", type=click.FloatRange(min=0.1), default=DEFAULT_TIMEOUT, show_default=True,
                     metavar="SECONDS", help="Seconds a page may take to arrive in full (and CPU seconds to read it)."),
        click.option("--user-agent", default=USER_AGENT, show_default=False, metavar="TEXT",
                     help="The User-Agent header (default: searchsvc's name and version); add a contact address."),
        click.option("--max-pages", type=click.IntRange(min=1), default=DEFAULT_MAX_PAGES, show_default=True,
                     help="Stop a crawl after this many URLs."),
        click.option("--allow-private", is_flag=True,
                     help="Also fetch from loopback, private and link-local addresses (to crawl an intranet); "
                          "by default only a start URL's own server may have one."),
    ]):
        f = option(f)
    return f


class FieldParam(click.ParamType):
    """`FIELD=COLUMN`: the field is read from that column."""

    name = "FIELD=COLUMN"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Mapped:
        if isinstance(value, Mapped):
            return value
        try:
            return parse_mapping(value, f"--field {value.strip()}")
        except FieldMapError as e:
            self.fail(str(e), param, ctx)


class FieldsFileParam(click.Path):
    """A file of `FIELD = COLUMN` lines, read into its mappings."""

    def __init__(self) -> None:
        super().__init__(exists=True, dir_okay=False)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> list[Mapped]:
        path = super().convert(value, param, ctx)
        try:
            return read_mapping_file(path)
        except FieldMapError as e:
            self.fail(str(e), param, ctx)
        except OSError as e:
            self.fail(f"{path}: cannot read: {e.strerror}", param, ctx)


_SYNONYM_HELP = "; ".join(f"{', '.join(names)} for {target}" for target, names in SYNONYMS.items())


@cli.command(help=INGEST_HELP)
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@index_option
@click.option("--rebuild", is_flag=True,
              help="Build a fresh index from PATHS beside the current one and swap it in when "
                   "complete; posts not in PATHS are dropped.")
@click.option("--strict", is_flag=True,
              help="All or nothing: write nothing if any record is invalid or any URL failed.")
@click.option("--dayfirst", is_flag=True,
              help="Read ambiguous dates like 01/02/2020 as day first (default: month first).")
@click.option("--field", "field_options", multiple=True, type=FieldParam(),
              help="Read FIELD (id, title, date, author, url, body) from COLUMN (matched ignoring case) "
                   "rather than from the record's own FIELD column or a synonym; repeatable. "
                   f"The synonyms, used where a record lacks the field: {_SYNONYM_HELP}. "
                   "--field date=date reads the date from 'date' alone (no synonyms).")
@click.option("--fields", "fields_file", type=FieldsFileParam(), metavar="FILE",
              help="Read the --field mappings from FILE: one FIELD = COLUMN a line, # comments. "
                   "A --field overrides the file's line for its field.")
@click.option("--follow", is_flag=True, help="For URLs: also fetch the post pages they link to (as `follow`).")
@web_options
@wait_option
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def ingest(paths: tuple[str, ...], field_options: tuple[Mapped, ...], fields_file: list[Mapped] | None,
           **options: Any) -> None:
    try:
        fields = field_names(fields_file or [], field_options)
    except FieldMapError as e:
        raise click.BadParameter(str(e), param_hint="'--field'") from None
    _ingest(paths, fields=fields, **options)


@cli.command(help=FOLLOW_HELP)
@click.argument("urls", nargs=-1, required=True)
@index_option
@click.option("--rebuild", is_flag=True,
              help="Build a fresh index from what is fetched; posts no longer found are dropped (those of "
                   "pages answered 304 Not Modified, and teasers of pages that failed, are kept).")
@click.option("--strict", is_flag=True, help="All or nothing: write nothing if any page failed or post is invalid.")
@click.option("--dayfirst", is_flag=True,
              help="Read ambiguous dates like 01/02/2020 as day first (default: month first).")
@web_options
@wait_option
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def follow(urls: tuple[str, ...], **options: Any) -> None:
    for url in urls:
        if not is_url(url):
            raise click.BadParameter(f"{url!r} is not an http(s) URL", param_hint="URLS")
    _ingest(urls, follow=True, **options)


def _ingest(paths: tuple[str, ...], index_dir: str, rebuild: bool, strict: bool, dayfirst: bool, wait: float,
            quiet: bool, follow: bool, delay: float, timeout: float, user_agent: str, max_pages: int,
            allow_private: bool, fields: FieldNames | None = None) -> None:
    store = IndexStore(index_dir)
    limits = Limits.from_environ()
    report = IngestReport()
    show_bar = not quiet and sys.stderr.isatty()
    # "ftp://...", "http://exa mple.org/": addresses, each a problem of its own, not missing files.
    urls = [p for p in paths if is_url(p) or "://" in p]
    files = [p for p in paths if p not in urls]
    # Behind a progress bar, lines wait for its end; at most KEPT_LINES of them.
    held: list[str] = []
    held_over = 0

    def hold(line: str) -> None:
        nonlocal held_over
        if len(held) < KEPT_LINES:
            held.append(line)
        else:
            held_over += 1

    say = hold if show_bar else _to_stderr
    bar: Any = None

    def start_bar(sources: list[Any]) -> None:
        nonlocal bar
        if show_bar:
            total = sum(s.size for s in sources)
            bar = click.progressbar(length=total, label="Reading", file=sys.stderr)
            bar.__enter__()

    batch = Batch()
    state = FetchState(store.root / STATE_FILE if urls else None)
    if state.problem:
        say(state.problem)
    try:
        if files or not urls:
            batch = read_batch(files, report, dayfirst=dayfirst, notify=say,
                               progress=(lambda n: bar.update(n)) if show_bar else None,
                               on_sources=start_bar, limits=limits, fields=fields)
        if bar is not None:
            bar.__exit__(None, None, None)
            bar = None
        if urls:
            known = _fingerprints(store) if state.known or state.teasers else {}
            batch.stored_teasers = state.stored_teasers(known)
            fetcher = Fetcher(user_agent=user_agent, delay=delay, timeout=timeout, allow_private=allow_private)
            crawl = Crawl(fetcher, state, follow=follow, known=known, max_pages=max_pages)
            if show_bar:
                bar = click.progressbar(length=len(urls), label="Fetching", file=sys.stderr)
                bar.__enter__()

                def on_url(url: str, queued: int) -> None:
                    bar.length = max(bar.length, bar.pos + 1 + queued)
                    bar.update(1)

                crawl.on_url = on_url
            try:
                read_web(batch, crawl, urls, report, dayfirst=dayfirst, notify=say)
            finally:
                crawl.fetcher.close()
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    for line in held:
        _to_stderr(line)
    if held_over:
        _to_stderr(f"... and {held_over} more lines (--quiet shows them all, as they come)")

    if strict and not report.ok:
        failed = f", {report.fetch_errors} failed to fetch" if report.fetch_errors else ""
        raise click.ClickException(f"{report.invalid} invalid{failed}; nothing was written (--strict)")
    if show_bar:
        click.echo("Writing index...", err=True)
    write_batch(store, batch, report, rebuild=rebuild, wait=wait, notify=_to_stderr)
    if urls and (problem := state.save(batch.ids_by_source(), batch.failed_sources, _fingerprints(store),
                                       written=batch.records.keys(), teasers=batch.teasers)):
        _to_stderr(f"warning: {problem}")
    click.echo(report.summary(rebuild=rebuild))
    if not report.ok:
        sys.exit(1)


def _fingerprints(store: IndexStore) -> dict[str, bytes]:
    """id -> fingerprint of every post the index holds (what a page answered 304 stands for);
    none if it cannot be read."""
    if store.is_empty():
        return {}
    try:
        return fingerprints(store.open())
    except SearchsvcError:
        return {}


@cli.command()
@index_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def info(index_dir: str, as_json: bool) -> None:
    """Show what the index holds: posts, dates, authors, location, size, version.

    \b
    Example:
        searchsvc info --json
    """
    summary = index_info(IndexStore(index_dir))
    if as_json:
        click.echo(json.dumps(summary.to_json(), indent=2, ensure_ascii=False))
        return
    authors = ", ".join(f"{name} ({n})" for name, n in list(summary.authors.items())[:10])
    if len(summary.authors) > 10:
        authors += f", and {len(summary.authors) - 10} more"
    dates = (f"{summary.first_date[:10]} to {summary.last_date[:10]}"
             if summary.first_date and summary.last_date else "none")
    rows = [
        ("Index", f"{summary.location} (generation {summary.generation})"),
        ("Schema version", str(summary.schema_version)),
        ("Posts", f"{summary.posts} ({summary.undated} undated)"),
        ("Dates", dates),
        ("Authors", f"{len(summary.authors)}" + (f": {authors}" if authors else "")),
        ("Size", _human_size(summary.size_bytes)),
        ("Last update", summary.last_update or "never"),
    ]
    for label, value in rows:
        click.echo(f"{label + ':':<16}{value}")


@cli.command()
@index_option
def check(index_dir: str) -> None:
    """Verify every byte of the index against the checksums its commits wrote.

    Exit code 0 when it is whole; 1 naming each damaged file, with how to repair it.

    \b
    Example:
        searchsvc check --index /srv/searchsvc/index
    """
    result = check_index(IndexStore(index_dir))
    if result.ok:
        click.echo(f"OK: {result.location} (generation {result.generation}): {result.files} files, "
                   f"{_human_size(result.bytes)} verified in {result.seconds:.2f} s")
        return
    for problem in result.problems:
        _to_stderr(f"damaged: {problem}")
    raise click.ClickException(f"the index at {result.location} is damaged; {REPAIR}")


@cli.command()
@index_option
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write to this file (default: standard output).")
def export(index_dir: str, output: str | None) -> None:
    """Write every stored post as JSON Lines, in the format `ingest` reads.

    `export` then `ingest --rebuild` reproduces the index exactly, also across
    schema versions.

    \b
    Example:
        searchsvc export --output posts.jsonl
        searchsvc ingest --rebuild posts.jsonl
    """
    store = IndexStore(index_dir)
    records = iter_records(store)
    if output is None:
        write_jsonl(records, sys.stdout)  # `| head` ends it quietly (Group.invoke)
        return
    # Write beside the target and rename: a failed export never leaves half a file.
    directory = os.path.dirname(os.path.abspath(output))
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".export-", suffix=".jsonl")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            count = write_jsonl(records, f)
        os.replace(temporary, output)
    except BaseException:
        os.unlink(temporary)
        raise
    click.echo(f"Exported {count} posts to {output}", err=True)


@cli.command()
@click.argument("ids", nargs=-1, required=True)
@index_option
@wait_option
def delete(ids: tuple[str, ...], index_dir: str, wait: float) -> None:
    """Remove the posts with these IDS. Unknown ids are reported; the exit code is then 1.

    \b
    Example:
        searchsvc delete 3f2a9c0d1e4b5a67
    """
    report = delete_posts(IndexStore(index_dir), ids, wait=wait)
    for post_id in report.unknown:
        _to_stderr(f"not found: {post_id}")
    click.echo(f"Deleted {len(report.deleted)} post{'' if len(report.deleted) == 1 else 's'}, "
               f"{len(report.unknown)} not found")
    if report.unknown:
        sys.exit(1)


@cli.command()
@click.argument("dest", type=click.Path(file_okay=False))
@index_option
@click.option("--copy", is_flag=True, help="Copy every file, even where hard links are possible (a snapshot on "
                                           "another disk is a backup; hard links share the bytes they name).")
def snapshot(dest: str, index_dir: str, copy: bool) -> None:
    """Copy the current index into DEST, consistent and checked, while servers and ingests run.

    Files are hard-linked where the file system allows: instant, and immune to later commits
    deleting them, but not to damage of the disk they share. DEST is itself an index: search it
    with --index DEST, verify it with `searchsvc check --index DEST`, bring it back with
    `searchsvc restore DEST`.

    \b
    Example:
        searchsvc snapshot /backups/searchsvc-2026-12-01
        rsync -a /backups/searchsvc-2026-12-01 backup-host:/srv/
    """
    result = take_snapshot(IndexStore(index_dir), Path(dest), copy=copy)
    how = f"{result.linked} hard-linked, {result.files - result.linked} copied"
    click.echo(f"Snapshot of generation {result.generation} in {result.location}: {result.files} files "
               f"({how}), {_human_size(result.bytes)}, checked in {result.seconds:.2f} s")


@cli.command()
@click.argument("source", type=click.Path(file_okay=False, exists=True))
@index_option
@wait_option
def restore(source: str, index_dir: str, wait: float) -> None:
    """Make the snapshot SOURCE the current index, after checking every byte of it.

    The snapshot is copied in as a new generation and switched to at once; running servers
    answer from it at their next request. The generation it replaces is kept until the next
    rebuild or restore.

    \b
    Example:
        searchsvc restore /backups/searchsvc-2026-12-01
    """
    name = restore_snapshot(IndexStore(index_dir), Path(source), wait=wait)
    click.echo(f"Restored {source} as generation {name} of {index_dir}")


@cli.command()
@click.argument("dests", nargs=-1, required=True, metavar="DEST...")
@index_option
@wait_option
@click.option("--copy", is_flag=True, help="Copy the files a local DEST lacks even where they could be hard-linked "
                                           "from this index.")
@click.option("--force", is_flag=True, help="Publish to a local DEST even if it serves the commit already: every "
                                            "byte checked again, and a damaged file taken from this index.")
@click.option("--watch", is_flag=True, help="Keep running, and publish again after each commit.")
@click.option("--interval", default=2.0, show_default=True, type=click.FloatRange(min=0.1), metavar="SECONDS",
              help="With --watch: how often to look for a new commit.")
@click.option("--ssh", default="ssh", show_default=True, metavar="COMMAND",
              help="How rsync and the remote publish reach a host:path DEST.")
@click.option("--remote-searchsvc", default="searchsvc", show_default=True, metavar="COMMAND",
              help="The searchsvc command on a host:path DEST.")
def publish(dests: tuple[str, ...], index_dir: str, wait: float, copy: bool, force: bool, watch: bool,
            interval: float, ssh: str, remote_searchsvc: str) -> None:
    """Ship the current commit to read replicas: each DEST is an index folder, here or host:path.

    Only files a DEST lacks are written (hard links on the same file system; over rsync and
    ssh to another host). Each DEST checks every byte, then switches to the commit at once, as
    a rebuild does; its servers answer from it at their next request, and the generation it
    replaces is kept for requests in flight. A publish killed at any moment leaves each DEST
    serving its old commit. Every replica's /healthz names the commit it serves.

    \b
    Example:
        searchsvc publish /srv/replica-a /srv/replica-b
        searchsvc publish --watch replica1.example.org:/srv/searchsvc/index
    """
    store = IndexStore(index_dir)

    def once(dest: str) -> bool:
        try:
            if is_remote(dest):
                click.echo(publish_remote(store, dest, wait=wait, ssh=ssh, remote_searchsvc=remote_searchsvc))
                return True
            done = publish_local(store, Path(dest), wait=wait, copy=copy, force=force)
        except SearchsvcError as e:
            click.echo(f"Error: {dest}: {e}", err=True)
            return False
        except OSError as e:  # this destination's disk or folder; the others are still published
            where = f" ({e.filename})" if e.filename else ""
            click.echo(f"Error: {dest}: cannot write there: {e.strerror or e}{where}; it serves what it served "
                       "before", err=True)
            return False
        if done.unchanged:
            click.echo(f"{dest} already serves commit {done.commit} (generation {done.generation})")
        else:
            click.echo(f"Published commit {done.commit} to {dest} as generation {done.generation}: {done.files} "
                       f"files ({done.linked} hard-linked, {done.copied} copied, {_human_size(done.bytes_copied)}) "
                       f"in {done.seconds:.2f} s")
        return True

    if not watch:
        failed = [dest for dest in dests if not once(dest)]
        if failed:
            sys.exit(1)
        return
    _watch(store, dests, once, interval)


def _watch(store: IndexStore, dests: tuple[str, ...], once: Callable[[str], bool], interval: float) -> None:
    """Publish to every DEST whenever the source's commit changes; a DEST that failed is tried
    again at the next look, and so is a local DEST that no longer serves the commit (restored,
    wiped). Stops on Ctrl-C or SIGTERM."""
    import signal
    import time

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    done: dict[str, object] = {}
    while True:
        try:
            current = store.commit_key()
        except SearchsvcError as e:
            click.echo(f"Error: {e}", err=True)
            current = None
        if current is not None:
            for dest in dests:
                if (done.get(dest) != current or not _serves(dest, current[1])) and once(dest):
                    done[dest] = current
        time.sleep(interval)


@cli.command("search")
@click.argument("query", required=False, default="")
@index_option
@click.option("--from", "date_from", metavar="DATE", help="From this date (2020, Dec 2020, 2020-12-29, ...).")
@click.option("--to", "date_to", metavar="DATE", help="Up to and including this date or period.")
@click.option("--author", multiple=True, help="Only posts by this author (repeatable).")
@click.option("--sort", type=click.Choice(SORTS), help="Default: relevance with a query, else newest.")
@click.option("--page", type=int, default=1, show_default=True, help="Page number.")
@click.option("--per-page", type=int, default=DEFAULT_PER_PAGE, show_default=True, help="Hits per page (1-100).")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON response instead of text.")
def search_command(query: str, index_dir: str, date_from: str | None, date_to: str | None,
                   author: tuple[str, ...], sort: str | None, page: int, per_page: int, as_json: bool) -> None:
    """Search the index: the same search, and with --json the same JSON, as GET /api/search.

    QUERY: words (all must match), "exact phrases", OR, NOT or -word, parentheses,
    title:word, author:name, prefix*, fuzzy~. Without QUERY, lists posts newest first.

    \b
    Example:
        searchsvc search 'uyghur "concentration camps"' --from 2020 --to 2020-12
        searchsvc search --author Kanat --sort oldest --json
    """
    params = {"q": query, "from": date_from or "", "to": date_to or "", "author": list(author),
              "sort": sort or "", "page": str(page), "per_page": str(per_page)}
    search_request = request_from_params(params)
    engine = Engine(IndexStore(index_dir))
    try:
        result = run_search(engine, search_request)
    finally:
        engine.close()
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
        return
    for line in format_result(result, color=sys.stdout.isatty()):
        click.echo(line)


SERVE_HELP = f"""Serve the JSON API (and the web pages) with gunicorn.

    Posts ingested by another `searchsvc ingest` while it runs are searchable at once,
    without a restart. A client has {settings.HEADER_TIMEOUT.envvar} seconds
    ({settings.HEADER_TIMEOUT.default:g}) to send a request's headers; idle connections close after
    {settings.KEEPALIVE.envvar} ({settings.KEEPALIVE.default:g}); a response the client stops reading is
    cut off after {settings.SEND_TIMEOUT.envvar} ({settings.SEND_TIMEOUT.default:g}).

    \b
    Example:
        searchsvc serve --port 8000 --workers 2 --threads 8
    """


@cli.command(help=SERVE_HELP)
@index_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 listens on every interface (put a reverse proxy in front).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port.")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Worker processes (one per core is a good start).")
@click.option("--threads", type=click.IntRange(1, 256), envvar=settings.THREADS.envvar,
              default=settings.THREADS.default, show_default=True,
              help=f"{settings.THREADS.help} Environment: {settings.THREADS.envvar}.")
@click.option("--access-log", is_flag=True, help="Log every request to stderr, one JSON object a line.")
@click.option("--access-log-client", type=click.Choice(["omit", "truncated", "full"]), default="omit",
              show_default=True, help="What the access log says of the client's address: nothing, its network "
                                      "(IPv4 /24, IPv6 /48), or all of it.")
@click.option("--control-socket", type=click.Path(dir_okay=False), metavar="PATH",
              help="Listen for gunicorn's control client (gunicornc) on this Unix socket; one path per server. "
                   "Off by default: gunicorn's default path is one per user, which servers on one host would share.")
def serve(index_dir: str, host: str, port: int, workers: int, threads: int, access_log: bool,
          access_log_client: str, control_socket: str | None) -> None:
    _metrics_folder()  # before prometheus_client is imported (by searchsvc.web)
    from searchsvc.web.server import serve as run_server

    try:
        IndexStore(index_dir).open()  # fail now, with a clear error, rather than in every worker
    except IndexDamaged as e:
        # Serve anyway: /healthz and searches answer 503 with the reason, so a load balancer routes
        # around this server, and it recovers by itself once the index is repaired.
        _to_stderr(f"warning: {e}")
    run_server(index_dir, host, port, workers, threads, access_log, control_socket, access_log_client)


def _serves(dest: str, commit: str | None) -> bool:
    """Whether DEST still serves `commit`, as far as a cheap look can tell (a host:path is
    trusted to, until the next commit)."""
    if is_remote(dest):
        return True
    try:
        return IndexStore(Path(dest)).commit_key()[1] == commit
    except (SearchsvcError, OSError):
        return False


def _metrics_folder() -> None:
    """The folder where gunicorn's workers keep their /metrics values (prometheus-client's
    multiprocess mode): the operator's PROMETHEUS_MULTIPROC_DIR, emptied of an earlier run's
    values, or a new one that this server removes when it stops."""
    import atexit
    import shutil

    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):  # a dead server's counts would be added to ours
            stale.unlink()
        return
    made = tempfile.mkdtemp(prefix="searchsvc-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = made
    master = os.getpid()
    # Workers are forked from this process and run its exit handlers too: only this one removes it.
    atexit.register(lambda: os.getpid() == master and shutil.rmtree(made, ignore_errors=True))


def _to_stderr(line: str) -> None:
    click.echo(line, err=True)


def _human_size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")
