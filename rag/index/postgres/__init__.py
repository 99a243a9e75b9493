"""The PostgreSQL backend (`RAG_DATABASE_URL`): documents, chunks and sentences in tables,
sentence and title vectors in pgvector (HNSW), BM25 statistics kept exact by every write.

Versions, as the embedded store's commits: a write is one transaction under an advisory
lock that bumps `index_state.version`, marks the documents it replaces or deletes with the
version that removed them and inserts new rows with the version that added them. A view
reads the rows visible at its version, so a query never mixes two versions while writes go
on, and any number of replicas share the database. Removed rows are purged by a later write
once no replica can still be reading them (`PURGE_AFTER`).
"""

from __future__ import annotations

from rag.index.postgres.backend import PostgresBackend

__all__ = ["PostgresBackend"]
