"""Which backend an index lives in, chosen from the settings: above the protocols
(`rag.index.backend`) and their implementations, which import the protocols, not this."""

from __future__ import annotations

from urllib.parse import urlsplit

from rag.config import Settings
from rag.index.backend import Backend
from rag.index.manifest import IndexSpec
from rag.models.embeddings import Encoder


def open_backend(
    settings: Settings, spec: IndexSpec | None = None, encoder: Encoder | None = None
) -> Backend:
    """PostgreSQL when `database_url` is set, else the embedded segment store. Without a
    spec and an encoder it can be read and verified, not written."""
    if settings.database_url is not None:
        from rag.index.postgres import PostgresBackend

        read_url = settings.database_read_url
        return PostgresBackend(
            settings.database_url.get_secret_value(),
            spec,
            encoder,
            read_url.get_secret_value() if read_url else None,
        )
    from rag.index.embedded import EmbeddedBackend

    return EmbeddedBackend(settings.index_dir, spec, encoder)


def location(settings: Settings) -> str:
    """Where the index lives, for messages (a database URL without its password)."""
    if settings.database_url is None:
        return str(settings.index_dir)
    url = urlsplit(settings.database_url.get_secret_value())
    user = f"{url.username}@" if url.username else ""
    return f"{url.scheme}://{user}{url.hostname}:{url.port or 5432}{url.path}"
