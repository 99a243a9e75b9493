"""What the view and the writer need of the backend: pooled connections and what the index
is made with. A protocol below all three modules, so none imports another in a cycle."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

from rag.index.backend import CorpusView
from rag.index.manifest import IndexSpec
from rag.models.embeddings import Encoder


class Database(Protocol):
    spec: IndexSpec
    encoder: Encoder
    read_only: bool  # a standby: reads only

    def connection(self, write: bool = False) -> AbstractContextManager[Any]: ...

    def load(self, previous: CorpusView | None = None) -> CorpusView | None: ...
