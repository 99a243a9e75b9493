"""One write to an index: a transaction that builds the new commit and publishes it whole.

As Whoosh's writer: entered, it holds the folder's lock and reads the commit in force;
left without an error, it indexes what changed (one new segment, deletion marks, then the
merge policy) and publishes the result; left by an error, it publishes nothing. Readers
answer from the previous commit until the facade swaps the new one in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from rag.errors import IndexStoreError, NotFoundError
from rag.index import store
from rag.index.corpus import CorpusIndex, build, describe
from rag.index.manifest import IndexSpec, Manifest
from rag.index.merge import merge_newest
from rag.index.segment import build_segment
from rag.ingest.documents import Document
from rag.models.embeddings import Encoder

Progress = Callable[[str], None] | None


class Changes:
    """What a write transaction collects, whatever the backend: documents added (replacing
    any of the same id), ids deleted, or the whole set replaced; and the sources fingerprint."""

    def __init__(self, spec: IndexSpec, force: bool) -> None:
        self.spec, self.force = spec, force
        self.manifest: Manifest | None = None  # of the version in force, once entered
        self.added: dict[str, Document] = {}
        self.removed: set[str] = set()
        self.replacement: list[Document] | None = None
        self.sources_fingerprint: str | None = None
        self.withdrawn: set[str] = set()  # source documents deleted through the service

    @property
    def stale_reasons(self) -> list[str]:
        """Why the index must be rebuilt from its documents (empty when it can be updated)."""
        if self.force:
            return ["rebuild requested"]
        if self.manifest is None:
            return ["no index yet"]
        return self.manifest.stale_reasons(self.spec)

    def stored_documents(self) -> list[Document]:
        raise NotImplementedError

    def salvage_documents(self) -> list[Document]:
        """The documents of the version in force, read even by a forced write (which builds
        nothing from them), and the deletions it remembers (`withdrawn`): a rebuild keeps
        what the service acknowledged. Raises
        IndexStoreError, naming the cause, when they cannot be read."""
        raise NotImplementedError

    def add(self, documents: list[Document]) -> None:
        """Add documents, replacing any of the same id (one withdrawn comes back)."""
        self.added.update((doc.doc_id, doc) for doc in documents)
        self.withdrawn -= {doc.doc_id for doc in documents}

    def withdraw(self, doc_ids: set[str]) -> None:
        """Remember that these source documents were deleted, so syncs leave them out."""
        self.withdrawn |= doc_ids

    def live_ids(self, doc_ids: set[str]) -> set[str]:
        """Which of `doc_ids` the index holds (a store that can look them up overrides this)."""
        return doc_ids & {d.doc_id for d in self.stored_documents()}

    def delete(self, doc_ids: set[str]) -> None:
        if not doc_ids:
            return
        if missing := doc_ids - self.live_ids(doc_ids) - set(self.added):
            raise NotFoundError(f"unknown doc_id {sorted(missing)[0]!r}")
        self.removed |= doc_ids
        for doc_id in doc_ids:
            self.added.pop(doc_id, None)

    def replace_all(self, documents: list[Document]) -> None:
        """The index holds exactly `documents` after the commit (built fresh)."""
        self.replacement = documents

    def unchanged(self) -> bool:
        recorded = self.manifest.sources_fingerprint if self.manifest else None
        changed = self.added or self.removed or self.replacement is not None
        return not changed and not self.stale_reasons and self.sources_fingerprint == recorded

    def rebuilt_documents(self) -> list[Document]:
        """Every document of a rebuild: the replacement, or what is stored with the changes."""
        if self.replacement is not None:
            documents = self.replacement
        else:
            kept = [d for d in self.stored_documents() if d.doc_id not in self.removed]
            documents = [d for d in kept if d.doc_id not in self.added] + list(self.added.values())
        return documents


class IndexWriter(Changes):
    def __init__(
        self,
        root: Path,
        spec: IndexSpec,
        embedder: Encoder,
        in_memory: CorpusIndex | None = None,
        progress: Progress = None,
        force: bool = False,
    ) -> None:
        super().__init__(spec, force)
        self.root, self.embedder = root, embedder
        self.in_memory, self.progress = in_memory, progress
        self.result: CorpusIndex | None = None
        self.locked = ExitStack()

    def __enter__(self) -> IndexWriter:
        self.locked.enter_context(store.write_lock(self.root))
        try:
            self.manifest = None if self.force else store.read_manifest(self.root)
            self.current = None if self.force else latest(self.root, self.in_memory)
        except BaseException:
            self.locked.close()
            raise
        if self.manifest is not None:
            self.sources_fingerprint = self.manifest.sources_fingerprint
            self.withdrawn = set(self.manifest.withdrawn)
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        with self.locked:
            if kind is None:
                self.result = self.commit()

    def live_ids(self, doc_ids: set[str]) -> set[str]:
        if self.current is not None:
            return {d for d in doc_ids if d in self.current.doc_rows}
        return super().live_ids(doc_ids)

    def stored_documents(self) -> list[Document]:
        """The live documents in force, from any format version (what a rebuild starts from)."""
        if self.current is not None:
            return self.current.live_documents()
        return [] if self.force else store.load_documents(self.root)

    def salvage_documents(self) -> list[Document]:
        if not self.force:
            return self.stored_documents()
        try:  # the documents' own files, whatever became of the vectors and postings
            documents = store.load_documents(self.root)
            manifest = store.read_manifest(self.root)
        except (OSError, ValueError, TypeError, KeyError) as error:
            raise IndexStoreError(f"the documents in {self.root} cannot be read: {error}") from None
        self.withdrawn = set(manifest.withdrawn) if manifest else set()
        return documents

    def commit(self) -> CorpusIndex | None:
        if self.unchanged():
            return self.current
        if self.replacement is not None or self.stale_reasons or self.current is None:
            reusable = self.current.segments if self.current else []
            documents = self.rebuilt_documents()
            index = build(documents, self.spec, self.embedder, reusable, self.progress)
        else:
            added = list(self.added.values())
            index = with_changes(self.current, added, self.removed, self.embedder, self.progress)
        index.manifest.sources_fingerprint = self.sources_fingerprint
        index.manifest.withdrawn = sorted(self.withdrawn)
        store.commit(index, self.root)
        return index


def latest(root: Path, in_memory: CorpusIndex | None) -> CorpusIndex | None:
    """The commit in force: `in_memory` unless another process wrote since (segments it holds
    are not read again)."""
    target = store.current_commit(root)
    if in_memory is not None and target is not None and in_memory.snapshot == target.name:
        return in_memory
    return store.load(root, reuse=in_memory.segments if in_memory else ())


def with_changes(
    index: CorpusIndex,
    added: list[Document],
    removed: set[str],
    embedder: Encoder,
    progress: Progress = None,
) -> CorpusIndex:
    """`index` with `added` documents (replacing any of the same id) and `removed` ones gone.

    The older segments are untouched: what changed lands in one new segment and deletion
    marks; then `merge_newest` decides which of the newest segments are merged."""
    spec = index.manifest.spec
    gone = removed | {doc.doc_id for doc in added}
    segments = list(index.segments)
    deleted = [marks | (gone & s.doc_ids) for s, marks in zip(segments, index.deleted, strict=True)]
    if added:
        segments.append(build_segment(added, spec, embedder, segments, progress))
        deleted.append(frozenset())
    kept = [i for i, s in enumerate(segments) if s.doc_ids - deleted[i]]
    segments, deleted = [segments[i] for i in kept], [deleted[i] for i in kept]
    while merge_newest([len(s.doc_ids - gone) for s, gone in zip(segments, deleted, strict=True)]):
        pair, marks = segments[-2:], deleted[-2:]
        live = [
            d for s, m in zip(pair, marks, strict=True) for d in s.documents if d.doc_id not in m
        ]
        if progress:
            progress(f"merging the {len(live)} documents of two segments")
        segments[-2:] = [build_segment(live, spec, embedder, pair, progress)]
        deleted[-2:] = [frozenset()]
    manifest = index.manifest
    return describe(
        segments, deleted, spec, manifest.dimension, manifest.sources_fingerprint, time.time()
    )
