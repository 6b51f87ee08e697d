"""A person using the pages in a real browser: headless Chromium (Debian's) driven by Playwright,
against `searchsvc serve` on a free port, over the sample posts, a slice of the presidential
documents and a few Uyghur essays. Screenshots go to test-artifacts/."""

from __future__ import annotations

import gzip
import json
import os
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import CORPORA, PRESIDENTIAL, ROOT, SAMPLE_POSTS, Searchsvc, running_server
from playwright.sync_api import Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
# As root in a closed network: no sandbox, and none of Chromium's background connections.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    corpus = root / "slice.jsonl"
    with gzip.open(PRESIDENTIAL, "rt", encoding="utf-8") as source, open(corpus, "w", encoding="utf-8") as out:
        for n, line in enumerate(source):
            if n % 17 == 0:  # about 600 documents spread over 1789-2018
                out.write(line)
    uyghur = root / "uyghur.jsonl"
    with open(CORPORA / "multilingual" / "ug_uyghur_corpus_articles.jsonl", encoding="utf-8") as source:
        uyghur.write_text("".join(source.readline() for _ in range(3)), encoding="utf-8")
    index = root / "index"
    result = Searchsvc(index)("ingest", SAMPLE_POSTS / "posts", corpus, uyghur)
    assert result.exit_code == 0, result.output
    with running_server(index, root / "server.log") as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    assert os.path.exists(CHROMIUM), "Debian's chromium is needed: apt-get install chromium (.ci/run does)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def count(page: Page) -> int:
    return int(re.match(r"([\d,]+) posts?", page.locator("#count").inner_text()).group(1).replace(",", ""))


def params(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_a_journalist_searches_narrows_and_reads(server, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(server + "/")
    expect(page.locator("#count")).to_contain_text("posts in the archive")
    everything = count(page)
    assert everything == 4 + 613 + 3

    # Type a query.
    page.fill("#q", "proclamation")
    page.press("#q", "Enter")
    page.wait_for_url(re.compile(r"q=proclamation"))
    matches = count(page)
    assert 0 < matches < everything
    assert page.locator(".hit h2 mark").first.inner_text().lower().startswith("proclamation")

    # A date range, typed as people write it.
    page.fill("#from", "1990")
    page.fill("#to", "Dec 1999")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"to=Dec"))
    assert params(page)["from"] == ["1990"] and params(page)["to"] == ["Dec 1999"]
    in_nineties = count(page)
    assert 0 < in_nineties < matches
    years = [int(t.get_attribute("datetime")[:4]) for t in page.locator(".hit time").all()]
    assert years and all(1990 <= y <= 1999 for y in years)
    screenshot(page, "desktop-results")

    # Click a timeline bar: the range narrows to that year, and the count is the bar's.
    bar = page.locator(".timeline a.bar-link[data-count]:not([data-count='0'])").first
    period, bar_count = bar.get_attribute("data-period"), int(bar.get_attribute("data-count"))
    bar.click()
    page.wait_for_url(re.compile(rf"from={period}&to={period}"))
    assert count(page) == bar_count

    # Click an author facet.
    page.goto(server + "/?q=proclamation")
    facet = page.locator(".facets a[href*='author=']").first
    author = facet.inner_text()
    facet.click()
    page.wait_for_url(re.compile(r"author="))
    assert params(page)["author"] == [author]
    assert {a.inner_text() for a in page.locator(".hit .author").all()} == {author}
    by_author = page.url

    # Open a post, then go back.
    first_title = page.locator(".hit h2 a").first
    title_text = first_title.inner_text()
    first_title.click()
    page.wait_for_url(re.compile(r"/posts/"))
    expect(page.locator("h1")).to_have_text(title_text)
    assert page.locator(".body mark").count() > 0
    assert "Accessed" in page.locator("#citation").input_value()
    page.go_back()
    page.wait_for_url(by_author)
    assert page.locator(".hit h2 a").first.inner_text() == title_text
    page.close()


def test_sample_posts_in_order_with_highlights(server, browser):
    page = browser.new_page()
    page.goto(server + "/?q=uighurs&sort=oldest")
    assert count(page) == 4
    dates = [t.get_attribute("datetime") for t in page.locator(".hit time").all()]
    assert dates == sorted(dates) and dates[0] == "2020-09-29T16:04:00"
    marks = {m.inner_text() for m in page.locator(".hit mark").all()}
    assert marks <= {"Uyghur", "Uyghurs"} and marks
    page.close()


def test_errors_show_next_to_the_field(server, browser):
    page = browser.new_page()
    response = page.goto(server + "/?q=camps&from=2021-13-45")
    assert response.status == 400
    expect(page.locator("#from-error")).to_have_text(
        "'from': invalid date '2021-13-45': month must be in 1..12")
    assert page.locator("#from").get_attribute("aria-invalid") == "true"
    page.close()


@pytest.mark.parametrize("width, height, name", [(390, 844, "phone"), (1280, 900, "desktop")])
def test_readable_without_horizontal_scrolling(server, browser, width, height, name):
    page = browser.new_page(viewport={"width": width, "height": height})
    for path in ("/", "/?q=national+emergency&from=1900", "/?q=uyghur"):
        page.goto(server + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= width, path
    screenshot(page, f"{name}-search")
    page.locator(".hit h2 a").first.click()
    page.wait_for_url(re.compile(r"/posts/"))
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    screenshot(page, f"{name}-post")
    page.close()


def test_keyboard_skip_link_and_visible_focus(server, browser):
    page = browser.new_page()
    page.goto(server + "/?q=uyghur")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.className")
    assert focused == "skip"
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "q"
    page.close()


def test_uyghur_post_reads_right_to_left(server, browser):
    with open(CORPORA / "multilingual" / "ug_uyghur_corpus_articles.jsonl", encoding="utf-8") as f:
        record = json.loads(f.readline())
    page = browser.new_page()
    page.goto(server + f"/posts/{record['id']}")
    assert page.evaluate("getComputedStyle(document.querySelector('.body')).direction") == "rtl"
    assert page.evaluate("getComputedStyle(document.querySelector('h1')).direction") == "rtl"
    screenshot(page, "uyghur-post")
    page.close()


def test_no_console_errors_or_csp_violations(server, browser):
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(server + "/?q=uyghur")
    page.goto(server + "/posts/" + urlsplit(page.locator(".hit h2 a").first.get_attribute("href")).path.rsplit("/")[-1])
    assert problems == []
    page.close()


def test_artifacts_path_is_ignored_by_git():
    assert "test-artifacts/" in (Path(ROOT) / ".gitignore").read_text()
