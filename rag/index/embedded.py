"""The embedded backend: segment folders in one local directory (the default)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rag.index import store
from rag.index.corpus import CorpusIndex
from rag.index.manifest import IndexSpec
from rag.index.writer import IndexWriter, Progress, latest
from rag.models.embeddings import Encoder


class EmbeddedBackend:
    read_only = False

    def __init__(self, root: Path, spec: IndexSpec, embedder: Encoder) -> None:
        self.root, self.spec, self.embedder = root, spec, embedder

    def head(self) -> str | None:
        target = store.current_commit(self.root)
        return None if target is None else target.name

    def load(self, previous: CorpusIndex | None = None) -> CorpusIndex | None:
        return latest(self.root, previous)

    def writer(
        self, progress: Progress = None, force: bool = False, previous: CorpusIndex | None = None
    ) -> IndexWriter:
        return IndexWriter(self.root, self.spec, self.embedder, previous, progress, force)

    def verify(self) -> list[str]:
        return store.verify(self.root)

    def close(self) -> None:
        """Nothing is held open."""

    def on_change(self, callback: Callable[[], None]) -> None:
        """Nothing announces a commit in a folder: the service polls `head()`."""
