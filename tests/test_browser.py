"""The chat page in headless Chromium: ask, see the answer, open the citation's highlight.

Needs Debian's chromium at /usr/bin/chromium (`.ci/run` installs it); Playwright drives it,
so no browser is downloaded. Set RAG_SCREENSHOT=path.png to keep a picture of the page.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.conftest import EXAMPLE_QUESTION

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt-get install chromium)"
)
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_page_answers_and_highlights_the_cited_sentence(live_url: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 760})
            page.goto(live_url + "/")
            page.fill("#question", EXAMPLE_QUESTION)
            page.click("#send")
            answer = page.locator(".message.assistant").last
            expect(answer).to_contain_text("2023", timeout=20_000)
            citation = answer.locator("button.citation").first
            expect(citation).to_have_text("[1]")
            citation.click()
            mark = page.locator("#source mark")
            expect(mark).to_contain_text("first vehicle copies during 2023")
            expect(page.locator("#source-title")).to_contain_text("Xiaomi works on an electric car")
            page.fill("#question", "What is the price of the car?")
            page.click("#send")
            abstained = page.locator(".message.assistant.abstained").last
            expect(abstained).to_contain_text("don't say", timeout=20_000)
            if os.environ.get("RAG_SCREENSHOT"):
                page.locator(".message.assistant").first.locator("button.citation").first.click()
                page.screenshot(path=os.environ["RAG_SCREENSHOT"])
        finally:
            browser.close()
