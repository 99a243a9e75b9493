"""The chat page in headless Chromium, on a desktop and a 390 px phone screen: the empty page,
an answer with its source, an abstention, a failed request and its retry, an over-long question.

Needs Debian's chromium at /usr/bin/chromium (`.ci/run` installs it); Playwright drives it,
so no browser is downloaded. Set RAG_SCREENSHOTS=folder to keep pictures of the page.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from rag.config import MAX_QUESTION_CHARS
from tests.conftest import EXAMPLE_QUESTION

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt-get install chromium)"
    ),
]
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT = 30_000  # ms: generous, so a busy machine does not fail the test


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()


def screenshot(page, name: str) -> None:
    folder = os.environ.get("RAG_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / name))


def in_view(page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    size = page.viewport_size
    return (
        box is not None
        and box["y"] >= 0
        and box["y"] + box["height"] <= size["height"]
        and box["x"] + box["width"] <= size["width"]
    )


def test_desktop_page_answers_shows_sources_and_handles_failure(browser, live_url) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 760})
    page.goto(live_url + "/")
    examples = page.locator("#examples .example")
    expect(examples.first).to_have_text("When is the first vehicle expected?")
    expect(page.locator("#article-count")).to_have_text("1 indexed article")
    expect(page.locator("#article-list li")).to_contain_text(["Xiaomi works on an electric car"])
    screenshot(page, "chat-empty.png")

    examples.first.click()
    answer = page.locator(".message.assistant").last
    expect(answer.locator(".answer")).to_contain_text("2023", timeout=WAIT)
    expect(page.locator("#welcome")).to_be_hidden()
    sources = answer.locator("details.sources")
    expect(sources.locator("summary")).to_have_text("Sources (1)")
    expect(answer.locator(".confidence")).to_have_text(re.compile(r"^Confidence \d{1,3}%$"))
    expect(sources.locator("ol")).to_be_hidden()  # compact: folded until asked for
    answer.locator("button.citation").first.click()
    expect(page.locator("#source mark")).to_contain_text("first vehicle copies during 2023")
    expect(page.locator("#source-title")).to_contain_text("Xiaomi works on an electric car")
    assert in_view(page, "#source-title") and in_view(page, "#close-source")
    screenshot(page, "chat-desktop.png")
    page.keyboard.press("Escape")
    expect(page.locator("#source")).to_be_hidden()

    page.fill("#question", "What is the price of the car?")
    page.click("#send")
    abstained = page.locator(".message.assistant").last
    expect(abstained).to_have_class("message assistant abstained", timeout=WAIT)
    expect(abstained).to_contain_text("don't say")
    expect(abstained.locator(".confidence")).to_have_count(0)  # no number on a non-answer

    # The network fails once: the page says so and offers a retry that then answers.
    page.route("**/v1/chat/completions", lambda route: route.abort(), times=1)
    page.fill("#question", EXAMPLE_QUESTION)
    page.click("#send")
    failed = page.locator(".message.error")
    expect(failed).to_contain_text("Could not get an answer", timeout=WAIT)
    failed.locator("button.retry").click()
    expect(page.locator(".message.error")).to_have_count(0)
    expect(page.locator(".message.assistant .answer").last).to_contain_text("2023", timeout=WAIT)

    page.fill("#question", "x" * (MAX_QUESTION_CHARS + 1))
    expect(page.locator("#too-long")).to_contain_text("2,001 characters")
    expect(page.locator("#send")).to_be_disabled()
    page.fill("#question", "short again?")
    expect(page.locator("#too-long")).to_be_hidden()
    expect(page.locator("#send")).to_be_enabled()
    page.close()


def test_a_follow_up_shows_how_it_was_read(browser, live_url) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 760})
    page.goto(live_url + "/")
    page.fill("#question", "Which company will build Xiaomi's cars?")
    page.click("#send")
    first = page.locator(".message.assistant").last
    expect(first.locator(".answer")).to_contain_text("Great Wall", ignore_case=True, timeout=WAIT)
    expect(first.locator(".read-as")).to_have_count(0)  # asked in full: nothing to show
    page.fill("#question", "Where will they be produced?")
    page.click("#send")
    follow_up = page.locator(".message.assistant").nth(1)
    expect(follow_up.locator(".answer")).to_contain_text("Hong Kong", timeout=WAIT)
    expect(follow_up.locator(".read-as")).to_have_text("Read as “Where will Xiaomi be produced?”")
    page.close()


def test_phone_opens_the_source_as_a_full_screen_sheet(browser, live_url) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    page.goto(live_url + "/")
    page.fill("#question", EXAMPLE_QUESTION)
    page.click("#send")
    answer = page.locator(".message.assistant").last
    expect(answer.locator(".answer")).to_contain_text("2023", timeout=WAIT)
    screenshot(page, "chat-phone.png")
    answer.locator("summary").click()
    answer.locator(".source-link").first.click()
    expect(page.locator("#source mark")).to_contain_text("first vehicle copies during 2023")
    sheet = page.locator("#source").bounding_box()
    assert sheet["width"] == 390 and sheet["height"] == 844
    assert in_view(page, "#close-source") and in_view(page, "#source-title")
    screenshot(page, "chat-phone-source.png")
    page.click("#close-source")
    expect(page.locator("#source")).to_be_hidden()
    expect(answer).to_be_visible()
    page.close()


def test_a_page_whose_reads_need_a_key_asks_for_it_once_per_tab(browser, service) -> None:
    from playwright.sync_api import expect
    from pydantic import SecretStr

    from api.app import create_app
    from rag.service import RagService
    from tests.conftest import serve_in_thread

    protected = {"api_key": SecretStr("s3cret"), "protect_reads": True}
    settings = service.settings.model_copy(update=protected)
    url, stop = serve_in_thread(create_app(RagService.open(settings, service.embedder)))
    asked: list[str] = []

    def answer(dialog) -> None:  # a wrong key first, then the right one
        asked.append(dialog.message)
        dialog.accept("wrong" if len(asked) == 1 else "s3cret")

    try:
        page = browser.new_page(viewport={"width": 1280, "height": 760})
        page.on("dialog", answer)
        page.goto(url + "/")
        expect(page.locator("#examples .example").first).to_be_visible(timeout=WAIT)
        assert asked[0].startswith("This service needs an API key")
        assert asked[1].startswith("That API key was refused") and len(asked) == 2
        page.fill("#question", EXAMPLE_QUESTION)
        page.click("#send")
        reply = page.locator(".message.assistant").last
        expect(reply.locator(".answer")).to_contain_text("2023", timeout=WAIT)
        page.reload()  # the same tab keeps the key: no more questions
        expect(page.locator("#examples .example").first).to_be_visible(timeout=WAIT)
        assert len(asked) == 2
        page.close()
    finally:
        stop()


def test_each_source_says_who_published_it_and_when(browser, tmp_path: Path, embedder) -> None:
    from playwright.sync_api import expect

    from api.app import create_app
    from rag.config import Settings
    from rag.service import RagService
    from tests.conftest import serve_in_thread
    from tests.test_news import ARTICLES

    service = RagService.open(Settings(index_dir=tmp_path / "index", sources=[]), embedder)
    service.ingest(ARTICLES)
    url, stop = serve_in_thread(create_app(service))
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 760})
        page.goto(url + "/")
        page.fill("#question", "What was Tesla's revenue for 2021?")
        page.click("#send")
        reply = page.locator(".message.assistant").last
        expect(reply.locator(".answer")).to_contain_text("53.8", timeout=WAIT)
        reply.locator(".sources summary").click()
        expect(reply.locator(".source-link").first).to_contain_text("(Bloomberg, 26 January 2022)")
        page.close()
    finally:
        stop()
