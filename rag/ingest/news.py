"""When and by whom an article was published, read from what a document brings (JSON fields,
the HTML page's date and site, its URL) and normalised: an ISO 8601 date, one spelling per
publisher. Both travel in the document's metadata, so every backend stores them as they are."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from rag.errors import DocumentError

PUBLISHED = "published"
PUBLISHER = "publisher"
DATE_KEYS = (PUBLISHED, "date", "published_at", "publication_date", "pubDate")
PUBLISHER_KEYS = (PUBLISHER, "outlet", "sitename", "site_name")


def news_metadata(metadata: dict[str, Any], doc_id: str) -> dict[str, Any]:
    """`metadata` with `published` (YYYY-MM-DD) and `publisher` set when it names them; a
    date that cannot be read is an error naming the field, never a guess."""
    found = dict(metadata)
    key, raw = first_given(found, DATE_KEYS)
    if raw is not None:
        found[PUBLISHED] = as_date(raw, f"document {doc_id!r}: {key!r}").isoformat()
    _, name = first_given(found, PUBLISHER_KEYS)
    if name is None and isinstance(found.get("url"), str):
        name = urlsplit(found["url"]).hostname
    if isinstance(name, str) and name.strip():
        found[PUBLISHER] = publisher_name(name)
    elif name is not None:
        raise DocumentError(f"document {doc_id!r}: 'publisher' must be a name, got {name!r}")
    return found


def first_given(metadata: dict[str, Any], keys: tuple[str, ...]) -> tuple[str, Any]:
    for key in keys:
        if metadata.get(key) not in (None, ""):
            return key, metadata[key]
    return keys[0], None


def as_date(raw: Any, field: str) -> date:
    """A date from ISO 8601 or a common written form ("2 July 2021", "Jul 2, 2021")."""
    from dateutil import parser

    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str) and raw.strip():
        try:
            return datetime.fromisoformat(raw.strip().replace("Z", "+00:00")).date()
        except ValueError:
            pass
        try:
            return parser.parse(raw, fuzzy=False).date()
        except (ValueError, OverflowError):
            pass
    raise DocumentError(f"{field} is not a date: {raw!r} (use YYYY-MM-DD)")


def publisher_name(name: str) -> str:
    """One spelling per publisher: spaces collapsed; a host loses `www.` and is lower case."""
    name = " ".join(name.split())
    if "." in name and " " not in name:
        name = name.lower().removeprefix("www.")
    return name


def publisher_key(name: str) -> str:
    """What two spellings of one publisher share ("Reuters", "reuters.com" -> "reuters")."""
    name = publisher_name(name).casefold()
    if "." in name and " " not in name:
        name = name.rsplit(".", 1)[0]
    return name
