"""The seam between the query pipeline and where an index lives.

A backend stores documents, their chunks and sentences with vectors and BM25 statistics, and
commits writes as transactions. Queries read one committed version through `CorpusView`;
chunks and sentences are integer ids that mean something only within that view. The
embedded segment store (`rag.index.embedded`) is the first implementation; every backend
passes `tests/test_backend_contract.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

import numpy as np

from rag.index.manifest import Manifest
from rag.ingest.documents import Document


class CorpusView(Protocol):
    """One committed version of the index, as retrieval, the reader and citations read it."""

    manifest: Manifest
    snapshot: str  # the version's name

    def live_documents(self) -> list[Document]: ...
    def document(self, doc_id: str) -> Document | None: ...
    def chunks_of(self, doc_ids: list[str]) -> np.ndarray: ...
    def chunk_document(self, chunk: int) -> Document: ...
    def chunk_id(self, chunk: int) -> str: ...
    def chunk_span(self, chunk: int) -> tuple[int, int]: ...
    def chunk_text(self, chunk: int) -> str: ...
    def sentence_span(self, sentence: int) -> tuple[int, int]: ...
    def sentence_text(self, sentence: int) -> str: ...
    def sentence_chunk(self, sentence: int) -> int: ...
    def sentence_spans(self, chunk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
    def sentence_similarity(self, sentences: np.ndarray, vector: np.ndarray) -> np.ndarray: ...
    def best_sentence_similarity(self, chunks: np.ndarray, vector: np.ndarray) -> np.ndarray: ...
    def title_similarity(self, chunks: np.ndarray, vector: np.ndarray) -> np.ndarray: ...
    def dense_chunks(self, query_vector: np.ndarray, sentences: int) -> np.ndarray: ...
    def lexical(
        self, terms: tuple[str, ...], top: int, chunks: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]: ...


class Transaction(Protocol):
    """A write in progress: changes are collected, then committed whole on leaving the block
    without an error (nothing is published otherwise)."""

    stale_reasons: list[str]  # why the stored index must be rebuilt (model, chunking, format)
    sources_fingerprint: str | None  # of the configured source files the index was synced to
    result: CorpusView | None  # the committed version, once the block is left
    withdrawn: set[str]  # source documents deleted through the service, left out of syncs

    def stored_documents(self) -> list[Document]: ...
    def salvage_documents(self) -> list[Document]: ...  # read even by a forced write
    def add(self, documents: list[Document]) -> None: ...
    def delete(self, doc_ids: set[str]) -> None: ...
    def withdraw(self, doc_ids: set[str]) -> None: ...
    def replace_all(self, documents: list[Document]) -> None: ...


class Backend(Protocol):
    read_only: bool  # True: a replica of a read-only database, which refuses writes

    def head(self) -> str | None:
        """The name of the version in force (None: no index yet)."""
        ...

    def load(self, previous: CorpusView | None = None) -> CorpusView | None:
        """The version in force; `previous` itself when it still is (its parts are reused
        otherwise). None when there is no index of this format."""
        ...

    def writer(
        self, progress=None, force: bool = False, previous: CorpusView | None = None
    ) -> AbstractContextManager[Transaction]:
        """A write transaction; `force` starts from nothing (the way out of a corrupt index)."""
        ...

    def verify(self) -> list[str]:
        """What is damaged in the stored index (empty when all is well)."""
        ...

    def close(self) -> None:
        """Release connections (the process is done with this backend)."""
        ...

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from another thread) when another process commits, if the
        backend can tell; the service polls `head()` as well."""
        ...
