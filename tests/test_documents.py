"""Loaders: every supported format becomes a Document; bad files are reported, not fatal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.errors import DocumentError, UnsupportedFileType
from rag.ingest.documents import load_paths, make_document, parse_file


def test_text_and_markdown_take_title_from_first_line(tmp_path: Path) -> None:
    (tmp_path / "My Story!.md").write_text("\n# Big news\n\nBody text here.\n", encoding="utf-8")
    (tmp_path / "plain.txt").write_text("Headline\r\nSecond line.", encoding="utf-8")
    report = load_paths([tmp_path])
    by_id = {d.doc_id: d for d in report.documents}
    assert set(by_id) == {"My-Story", "plain"}
    assert by_id["My-Story"].title == "Big news"
    assert by_id["plain"].text == "Headline\nSecond line."
    assert report.problems == []


def test_html_takes_the_headline_as_title_and_the_visible_text() -> None:
    html = (
        b"<html><head><title>EV plans</title><style>p{}</style></head><body>"
        b"<h1>Heading</h1><p>First para.</p><script>alert(1)</script><p>Second.</p></body></html>"
    )
    (doc,) = parse_file("page.html", html)
    assert doc.title == "Heading"  # the page's own headline, not its browser-tab title
    assert "First para." in doc.text and "Second." in doc.text
    assert "alert" not in doc.text and "p{}" not in doc.text


NEWS_PAGE = b"""<html><head><title>Xiaomi to build cars | Daily Wire Service</title>
<meta property="article:published_time" content="2021-03-30"></head><body>
<nav><a href="/">Home</a> <a href="/world">World</a> <a href="/tech">Technology</a></nav>
<div id="cookie-banner">We use cookies to improve your experience. Accept all cookies.</div>
<article><h1>Xiaomi to build cars</h1>
<p>Xiaomi said on Tuesday it will build electric cars and invest 10 billion dollars over ten
years in the new business, its chief executive told investors in Beijing.</p>
<p>The first vehicle is expected in 2024, the company said in a filing to the Hong Kong stock
exchange, where its shares rose by six percent after the announcement.</p></article>
<footer>Copyright 2021 Daily Wire Service. All rights reserved. Privacy policy.</footer>
</body></html>"""


def test_news_page_keeps_the_article_and_drops_the_page_around_it() -> None:
    (doc,) = parse_file("xiaomi.html", NEWS_PAGE)
    assert doc.title == "Xiaomi to build cars"
    assert doc.metadata["date"] == "2021-03-30"
    assert "The first vehicle is expected in 2024" in doc.text
    for chrome in ("cookies", "Copyright", "Technology", "Privacy"):
        assert chrome not in doc.text


def test_a_news_page_headline_is_its_own_sentence_and_its_byline_metadata() -> None:
    from rag.ingest.chunking import split_sentences

    page = b"""<html><head><title>Rotterdam port handles fewer containers in first quarter</title>
<meta name="author" content="Bart Meijer"></head><body><article>
<h1>Rotterdam port handles fewer containers in first quarter</h1>
<p class="byline">By Bart Meijer</p>
<p>The port of Rotterdam handled 3.3 million containers in the first quarter, 7% fewer than a
year earlier, it said on Wednesday. Trade with Asia fell the most.</p>
<p>Transport of liquid bulk such as oil rose 5%, the port said.</p></article></body></html>"""
    (doc,) = parse_file("rotterdam.html", page)
    assert doc.metadata["author"] == "Bart Meijer"
    sentences = [doc.text[s.start : s.end] for s in split_sentences(doc.text)]
    assert sentences[0] == "Rotterdam port handles fewer containers in first quarter"
    assert sentences[1].startswith("The port of Rotterdam handled 3.3 million containers")


def test_markdown_marks_are_not_article_text() -> None:
    markdown = "# Big news\n\nBYD sold **3 million** cars, [says](https://x.example) *Reuters*.\n"
    (doc,) = parse_file("news.md", markdown.encode())
    assert doc.title == "Big news"
    assert doc.text == "Big news\n\nBYD sold 3 million cars, says Reuters.\n"


def test_binary_files_and_nul_characters_are_refused() -> None:
    with pytest.raises(UnsupportedFileType, match="NUL bytes"):
        parse_file("photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(DocumentError, match="NUL"):
        make_document("d1", "text with a \x00 inside")


def test_json_and_jsonl_records_keep_ids_and_metadata(tmp_path: Path) -> None:
    records = [
        {"id": "a1", "title": "One", "text": "Alpha text.", "url": "http://x"},
        {"text": "No id here."},
    ]
    (tmp_path / "batch.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    (tmp_path / "single.json").write_text(json.dumps({"doc_id": "s1", "text": "Solo."}))
    docs = {d.doc_id: d for d in load_paths([tmp_path]).documents}
    assert docs["a1"].metadata == {"url": "http://x", "publisher": "x"}  # the host names it
    assert docs["batch-2"].title == "No id here."
    assert docs["s1"].text == "Solo."


def test_bad_files_are_reported_and_the_rest_loaded(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("Fine article.")
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "empty.txt").write_text("   \n")
    (tmp_path / "notext.jsonl").write_text(json.dumps({"title": "x"}))
    report = load_paths([tmp_path])
    assert [d.doc_id for d in report.documents] == ["good"]
    joined = "\n".join(report.problems)
    assert "malformed JSON" in joined and "no text" in joined and "missing 'text'" in joined


def test_duplicate_ids_keep_the_first(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(json.dumps({"id": "same", "text": "first"}))
    (tmp_path / "b.jsonl").write_text(json.dumps({"id": "same", "text": "second"}))
    report = load_paths([tmp_path])
    assert [d.text for d in report.documents] == ["first"]
    assert "already used" in report.problems[0]


def test_windows_1252_is_decoded_and_unsupported_types_named() -> None:
    (doc,) = parse_file("legacy.txt", "Café prices rose – 5%".encode("cp1252"))
    assert doc.text == "Café prices rose – 5%"
    with pytest.raises(DocumentError, match=r"unsupported file type '\.pdf'.*\.html"):
        parse_file("report.pdf", b"%PDF")


@pytest.mark.parametrize("bad_id", ["../etc/passwd", "", "a/b", "x" * 300, ".hidden"])
def test_ids_that_could_escape_a_folder_are_refused(bad_id: str) -> None:
    with pytest.raises(DocumentError, match="invalid doc_id"):
        make_document(bad_id, "text")
