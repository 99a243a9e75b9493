"""Documents: the one type that enters the pipeline, and loaders for the formats we accept."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import DocumentError, UnsupportedFileType
from rag.ingest.news import news_metadata

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
JSON_SUFFIXES = {".json", ".jsonl"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | JSON_SUFFIXES

DOC_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")
DOC_ID_RULE = "use 1-200 letters, digits, '.', '_', ':' or '-', starting with a letter or digit"


@dataclass(frozen=True)
class Document:
    doc_id: str
    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str | None = None

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(f"{self.title}\x00{self.text}".encode()).hexdigest()

    def to_record(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "title": self.title,
            "text": self.text,
            "metadata": self.metadata,
            "source": self.source,
        }


def make_document(
    doc_id: str,
    text: str,
    title: str | None = None,
    metadata: dict[str, Any] | None = None,
    source: str | None = None,
) -> Document:
    """Validate and normalise one document, so every later stage can trust it."""
    doc_id = str(doc_id).strip()
    if not DOC_ID_PATTERN.match(doc_id):
        raise DocumentError(f"invalid doc_id {doc_id!r}: {DOC_ID_RULE}")
    if not isinstance(text, str):
        raise DocumentError(f"document {doc_id!r}: 'text' must be a string")
    if "\x00" in text:
        raise DocumentError(f"document {doc_id!r}: text holds NUL characters (binary data?)")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise DocumentError(f"document {doc_id!r} has no text")
    if title is None or not str(title).strip():
        title = first_line(text)
    return Document(doc_id, str(title).strip(), text, news_metadata(metadata or {}, doc_id), source)


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip().lstrip("#").strip()[:300]
    return ""


def slug(name: str) -> str:
    """A doc_id from a file name: stable across machines and safe in a path."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._")
    return cleaned[:200] or "document"


def decode_bytes(data: bytes, where: str) -> str:
    """UTF-8 first; legacy Windows-1252 text is common in news exports, so accept it too."""
    if b"\x00" in data:
        raise UnsupportedFileType(f"{where}: binary data (NUL bytes), not a text document")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError as error:
        raise DocumentError(f"{where}: not UTF-8 or Windows-1252 text ({error.reason})") from None


def parse_html(markup: str) -> tuple[str, str, dict[str, Any]]:
    """The article of a news page (title, text; date and byline as metadata) without its
    navigation, cookie banner and footer; a page too short for trafilatura's article detection
    keeps all its visible text. trafilatura ends each block (the headline, a paragraph) with one
    line break: a blank line here, so a headline is never read as part of the first sentence."""
    import trafilatura

    page = trafilatura.bare_extraction(markup, with_metadata=True)
    text = page.text if page is not None and page.text else trafilatura.baseline(markup)[1]
    text = "\n\n".join(line.strip() for line in text.splitlines() if line.strip())
    title = (page.title if page is not None else None) or ""
    found = (
        {"date": page.date, "author": page.author, "sitename": page.sitename, "url": page.url}
        if page is not None
        else {}
    )
    return title, text, {key: value for key, value in found.items() if value}


MARKDOWN_MARKS = [
    (re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)[ \t#]*$", re.M), r"\1"),  # headings
    (re.compile(r"!?\[([^\]]*)\]\([^)]*\)"), r"\1"),  # links and images keep their text
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # bold
    (re.compile(r"(?<![*\w])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![*\w])"), r"\1"),  # italic
    (re.compile(r"^ {0,3}(?:[-*_] *){3,}$", re.M), ""),  # rules
]


def strip_markdown(text: str) -> str:
    """Markdown's marks are not words of the article: answers must not quote `#` or `**`."""
    for pattern, replacement in MARKDOWN_MARKS:
        text = pattern.sub(replacement, text)
    return text


UPLOADED = "upload:"  # the source of a file sent to the API: `upload:` + the name it was sent as


def parse_file(name: str, data: bytes, source: str | None = None) -> list[Document]:
    """Documents held in one file's bytes; `name` gives the format and the default id."""
    suffix = Path(name).suffix.lower()
    stem = slug(Path(name).stem)
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnsupportedFileType(
            f"{name}: unsupported file type {suffix or '(none)'!r}; "
            f"supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}"
        )
    text = decode_bytes(data, name)
    if suffix == ".txt":
        return [make_document(stem, text, source=source)]
    if suffix in TEXT_SUFFIXES:
        return [make_document(stem, strip_markdown(text), source=source)]
    if suffix in HTML_SUFFIXES:
        title, body, metadata = parse_html(text)
        return [make_document(stem, body, title or None, metadata, source)]
    return list(parse_records(name, text, stem, source))


def parse_records(name: str, text: str, stem: str, source: str | None) -> Iterator[Document]:
    if name.lower().endswith(".jsonl"):
        records = []
        for line_no, line in enumerate(text.splitlines(), 1):
            if line.strip():
                records.append(load_json(line, f"{name}:{line_no}"))
    else:
        loaded = load_json(text, name)
        records = loaded if isinstance(loaded, list) else [loaded]
    for number, record in enumerate(records, 1):
        yield record_to_document(record, f"{stem}-{number}", f"{name} record {number}", source)


def load_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise DocumentError(
            f"{where}: malformed JSON ({error.msg} at line {error.lineno})"
        ) from None


def record_to_document(
    record: Any, default_id: str, where: str, source: str | None = None
) -> Document:
    if not isinstance(record, dict):
        raise DocumentError(f"{where}: expected an object with 'text', got {type(record).__name__}")
    if "text" not in record:
        raise DocumentError(f"{where}: missing 'text'")
    known = {"id", "doc_id", "title", "text", "metadata"}
    metadata = dict(record.get("metadata") or {})
    metadata.update({k: v for k, v in record.items() if k not in known})
    doc_id = record.get("doc_id", record.get("id", default_id))
    return make_document(str(doc_id), record["text"], record.get("title"), metadata, source)


@dataclass
class LoadReport:
    documents: list[Document]
    problems: list[str]


def iter_files(paths: Iterable[Path]) -> Iterator[Path]:
    """The files named, and every file in the folders named but hidden ones (".git", ".DS_Store"):
    one of a type that cannot be read is reported by `parse_file`, never skipped in silence."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                hidden = any(part.startswith(".") for part in child.relative_to(path).parts)
                if child.is_file() and not hidden:
                    yield child
        else:
            yield path


def load_paths(paths: Iterable[Path]) -> LoadReport:
    """Load every supported file; one bad file is reported, never fatal for the others."""
    report = LoadReport([], [])
    seen: dict[str, str] = {}
    for file in iter_files(paths):
        try:
            docs = parse_file(file.name, file.read_bytes(), source=str(file))
        except (OSError, DocumentError) as error:
            report.problems.append(
                str(error) if isinstance(error, DocumentError) else f"{file}: {error}"
            )
            continue
        for doc in docs:
            if doc.doc_id in seen:
                report.problems.append(
                    f"{file}: doc_id {doc.doc_id!r} already used by {seen[doc.doc_id]}; skipped"
                )
                continue
            seen[doc.doc_id] = str(file)
            report.documents.append(doc)
    return report


def fingerprint_paths(paths: Iterable[Path]) -> str:
    """Changes when any source file's name or bytes change: cheap staleness check."""
    digest = hashlib.sha256()
    for file in iter_files(paths):
        digest.update(str(file).encode())
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()
