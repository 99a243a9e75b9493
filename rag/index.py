"""The index: documents, their chunk and sentence spans, sentence vectors in FAISS, and BM25.

An index lives in a folder as immutable snapshots. A write builds a new snapshot in a temp
folder, renames it into place, then atomically replaces the `CURRENT` pointer; a crash at any
point leaves the previous snapshot in force, and readers never see a partial one.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import faiss
import numpy as np

from rag.chunking import Chunker
from rag.documents import Document
from rag.embeddings import Embedder
from rag.lexical import Bm25Index

FORMAT_VERSION = 2
POINTER = "CURRENT"
ARRAYS = "spans.npz"
VECTORS = "vectors.npy"
TITLE_VECTORS = "titles.npy"
DENSE = "dense.faiss"
BM25_DIR = "bm25"
DOCUMENTS = "documents.jsonl"
MANIFEST = "manifest.json"


class IndexStoreError(RuntimeError):
    """A problem with an index on disk; the message says what to run."""


@dataclass(frozen=True)
class IndexSpec:
    """What decides the index's content besides the documents: a change means re-embedding."""

    model: str
    chunk_size: int
    chunk_overlap: int


@dataclass
class Manifest:
    format_version: int
    spec: IndexSpec
    dimension: int
    dense_index: str
    documents: int
    chunks: int
    sentences: int
    sources_fingerprint: str | None
    created_at: float
    files: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict) -> Manifest:
        known = IndexSpec.__dataclass_fields__
        spec = IndexSpec(**{k: v for k, v in data["spec"].items() if k in known})
        return cls(**{**data, "spec": spec})

    def stale_reasons(self, spec: IndexSpec, sources_fingerprint: str | None) -> list[str]:
        reasons = []
        if self.format_version != FORMAT_VERSION:
            reasons.append(f"format version {self.format_version} != {FORMAT_VERSION}")
        for name, want in asdict(spec).items():
            have = getattr(self.spec, name)
            if have != want:
                reasons.append(f"{name} changed ({have!r} -> {want!r})")
        if sources_fingerprint is not None and sources_fingerprint != self.sources_fingerprint:
            reasons.append("source files changed")
        return reasons


@dataclass
class CorpusIndex:
    """Everything a query needs, in memory (vectors may be memory-mapped)."""

    manifest: Manifest
    documents: list[Document]
    chunk_doc: np.ndarray  # int32 [chunks] -> row in documents
    chunk_start: np.ndarray  # int64 [chunks]
    chunk_end: np.ndarray
    chunk_sent_lo: np.ndarray  # int64 [chunks]: sentences of chunk c are lo[c]:hi[c]
    chunk_sent_hi: np.ndarray
    sent_chunk: np.ndarray  # int32 [sentences] -> home chunk
    sent_start: np.ndarray  # int64 [sentences]
    sent_end: np.ndarray
    sent_keys: np.ndarray  # S20 [sentences]: hash of the embedded text, to reuse vectors
    vectors: np.ndarray  # float32 [sentences, dim]
    title_keys: np.ndarray  # S20 [documents]
    title_vectors: np.ndarray  # float32 [documents, dim]: a sentence's story, at query time
    dense: faiss.Index
    bm25: Bm25Index
    doc_rows: dict[str, int] = field(init=False)
    snapshot: str = ""  # folder name once saved or loaded

    def __post_init__(self) -> None:
        self.doc_rows = {doc.doc_id: row for row, doc in enumerate(self.documents)}

    def chunk_id(self, chunk: int) -> str:
        doc = self.documents[self.chunk_doc[chunk]]
        first = int(np.searchsorted(self.chunk_doc, self.chunk_doc[chunk]))
        return f"{doc.doc_id}#{chunk - first}"

    def chunk_text(self, chunk: int) -> str:
        doc = self.documents[self.chunk_doc[chunk]]
        return doc.text[self.chunk_start[chunk] : self.chunk_end[chunk]]

    def sentence_text(self, sentence: int) -> str:
        doc = self.documents[self.chunk_doc[self.sent_chunk[sentence]]]
        return doc.text[self.sent_start[sentence] : self.sent_end[sentence]]


def sentence_key(model: str, text: str) -> bytes:
    return hashlib.sha1(f"{model}\x00{text}".encode()).digest()


def build(
    documents: list[Document],
    spec: IndexSpec,
    embedder: Embedder,
    previous: CorpusIndex | None = None,
    sources_fingerprint: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> CorpusIndex:
    """Cut, embed and index; vectors of sentences that `previous` already embedded are reused."""
    chunker = Chunker(spec.chunk_size, spec.chunk_overlap)
    chunk_doc, chunk_start, chunk_end, sent_chunk, sent_start, sent_end = ([] for _ in range(6))
    chunk_texts, sent_texts = [], []
    for row, doc in enumerate(documents):
        spans = chunker.split(doc.text)
        base = len(chunk_start)
        for chunk in spans.chunks:
            chunk_doc.append(row)
            chunk_start.append(chunk.start)
            chunk_end.append(chunk.end)
            chunk_texts.append(f"{doc.title}\n{doc.text[chunk.start : chunk.end]}")
        for sentence, home in zip(spans.sentences, spans.sentence_chunk, strict=True):
            sent_chunk.append(base + home)
            sent_start.append(sentence.start)
            sent_end.append(sentence.end)
            sent_texts.append(doc.text[sentence.start : sentence.end])
    # homes are non-decreasing by construction; make it certain so chunk ranges are contiguous
    sent_chunk_arr = np.maximum.accumulate(np.asarray(sent_chunk, dtype=np.int32))
    n_chunks = len(chunk_start)
    lo = np.searchsorted(sent_chunk_arr, np.arange(n_chunks), side="left")
    hi = np.searchsorted(sent_chunk_arr, np.arange(n_chunks), side="right")
    hi = np.where(hi > lo, hi, np.minimum(lo + 1, len(sent_chunk_arr)))  # never empty

    keys = np.array([sentence_key(spec.model, text) for text in sent_texts], dtype="S20")
    titles = [doc.title for doc in documents]
    title_keys = np.array([sentence_key(spec.model, title) for title in titles], dtype="S20")
    same_model = previous is not None and previous.manifest.spec.model == spec.model
    vectors = embed_with_cache(
        sent_texts,
        keys,
        embedder,
        previous.sent_keys if same_model else None,
        previous.vectors if same_model else None,
        "sentences",
        progress,
    )
    title_vectors = embed_with_cache(
        titles,
        title_keys,
        embedder,
        previous.title_keys if same_model else None,
        previous.title_vectors if same_model else None,
        "titles",
        progress,
    )
    if progress:
        progress(f"indexing {len(sent_texts)} sentences and {n_chunks} chunks")
    dense = faiss.IndexFlatIP(embedder.dimension)
    dense.add(vectors)
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        spec=spec,
        dimension=embedder.dimension,
        dense_index="IndexFlatIP",
        documents=len(documents),
        chunks=n_chunks,
        sentences=len(sent_texts),
        sources_fingerprint=sources_fingerprint,
        created_at=time.time(),
    )
    return CorpusIndex(
        manifest=manifest,
        documents=list(documents),
        chunk_doc=np.asarray(chunk_doc, dtype=np.int32),
        chunk_start=np.asarray(chunk_start, dtype=np.int64),
        chunk_end=np.asarray(chunk_end, dtype=np.int64),
        chunk_sent_lo=lo.astype(np.int64),
        chunk_sent_hi=hi.astype(np.int64),
        sent_chunk=sent_chunk_arr,
        sent_start=np.asarray(sent_start, dtype=np.int64),
        sent_end=np.asarray(sent_end, dtype=np.int64),
        sent_keys=keys,
        vectors=vectors,
        title_keys=title_keys,
        title_vectors=title_vectors,
        dense=dense,
        bm25=Bm25Index.build(chunk_texts),
    )


def embed_with_cache(
    texts: list[str],
    keys: np.ndarray,
    embedder: Embedder,
    known_keys: np.ndarray | None,
    known_vectors: np.ndarray | None,
    what: str,
    progress: Callable[[str], None] | None,
) -> np.ndarray:
    """Vectors for `texts`, copying those whose key is already known instead of embedding."""
    vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    todo = list(range(len(texts)))
    if known_keys is not None and known_vectors is not None and len(known_keys):
        known = {key: row for row, key in enumerate(known_keys.tolist())}
        hits = [(i, known[k]) for i, k in enumerate(keys.tolist()) if k in known]
        if hits:
            new_rows, old_rows = (list(rows) for rows in zip(*hits, strict=True))
            vectors[new_rows] = known_vectors[old_rows]
        cached = {i for i, _ in hits}
        todo = [i for i in todo if i not in cached]
    if progress:
        progress(f"embedding {len(todo)} new {what} ({len(texts) - len(todo)} reused)")
    if todo:
        vectors[todo] = embedder.encode(
            [texts[i] for i in todo], show_progress=progress is not None
        )
    return vectors


# --- persistence -------------------------------------------------------------------------


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def snapshot_files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != MANIFEST:
            yield path


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def write_lock(root: Path) -> Iterator[None]:
    """One writer at a time per index folder, across processes."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def save(index: CorpusIndex, root: Path) -> Path:
    """Write a new snapshot and switch `CURRENT` to it; returns the snapshot folder."""
    root.mkdir(parents=True, exist_ok=True)
    name = f"snap-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    staging = root / f".tmp-{name}"
    staging.mkdir()
    try:
        write_snapshot(index, staging)
        final = root / name
        staging.rename(final)
        fsync_path(root)
        pointer_tmp = root / f".{POINTER}.{uuid.uuid4().hex[:8]}"
        pointer_tmp.write_text(name + "\n")
        fsync_path(pointer_tmp)
        os.replace(pointer_tmp, root / POINTER)
        fsync_path(root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    remove_stale_snapshots(root, keep=name)
    index.snapshot = name
    return final


def write_snapshot(index: CorpusIndex, folder: Path) -> None:
    with (folder / DOCUMENTS).open("w", encoding="utf-8") as handle:
        for doc in index.documents:
            handle.write(json.dumps(doc.to_record(), ensure_ascii=False) + "\n")
    np.savez(
        folder / ARRAYS,
        chunk_doc=index.chunk_doc,
        chunk_start=index.chunk_start,
        chunk_end=index.chunk_end,
        chunk_sent_lo=index.chunk_sent_lo,
        chunk_sent_hi=index.chunk_sent_hi,
        sent_chunk=index.sent_chunk,
        sent_start=index.sent_start,
        sent_end=index.sent_end,
        sent_keys=index.sent_keys,
        title_keys=index.title_keys,
    )
    np.save(folder / VECTORS, np.asarray(index.vectors))
    np.save(folder / TITLE_VECTORS, np.asarray(index.title_vectors))
    faiss.write_index(index.dense, str(folder / DENSE))
    index.bm25.save(folder / BM25_DIR)
    for path in snapshot_files(folder):
        fsync_path(path)
        index.manifest.files[str(path.relative_to(folder))] = file_digest(path)
    manifest_path = folder / MANIFEST
    manifest_path.write_text(json.dumps(asdict(index.manifest), indent=2))
    fsync_path(manifest_path)


def remove_stale_snapshots(root: Path, keep: str) -> None:
    for path in root.iterdir():
        if path.is_dir() and path.name != keep and path.name.startswith(("snap-", ".tmp-")):
            shutil.rmtree(path, ignore_errors=True)


def current_snapshot(root: Path) -> Path | None:
    pointer = root / POINTER
    if not pointer.is_file():
        return None
    folder = root / pointer.read_text().strip()
    if not folder.is_dir():
        raise IndexStoreError(
            f"{pointer} names {folder.name}, which is missing: run `rag index rebuild`"
        )
    return folder


def read_manifest(root: Path) -> Manifest | None:
    folder = current_snapshot(root)
    if folder is None:
        return None
    try:
        return Manifest.from_json(json.loads((folder / MANIFEST).read_text()))
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise IndexStoreError(
            f"unreadable manifest in {folder} ({error}): run `rag index rebuild`"
        ) from None


def verify(root: Path) -> list[str]:
    """Files whose bytes no longer match the manifest's checksums (empty when all is well)."""
    folder = current_snapshot(root)
    manifest = read_manifest(root)
    if folder is None or manifest is None:
        return [f"no index in {root}"]
    problems = []
    for name, digest in manifest.files.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif file_digest(path) != digest:
            problems.append(f"{name}: checksum mismatch")
    return problems


def load_documents(root: Path) -> list[Document]:
    """The documents of the current snapshot; readable in every format version."""
    folder = current_snapshot(root)
    if folder is None:
        return []
    with (folder / DOCUMENTS).open(encoding="utf-8") as handle:
        return [Document(**json.loads(line)) for line in handle]


def load(root: Path, check: bool = True) -> CorpusIndex | None:
    """The current snapshot, or None when there is none of this format version to query."""
    manifest = read_manifest(root)
    if manifest is None or manifest.format_version != FORMAT_VERSION:
        return None
    if check and (problems := verify(root)):
        raise IndexStoreError(
            f"index in {root} is corrupt ({'; '.join(problems)}): run `rag index rebuild`"
        )
    folder = current_snapshot(root)
    assert folder is not None
    arrays = np.load(folder / ARRAYS)
    index = CorpusIndex(
        manifest=manifest,
        documents=load_documents(root),
        vectors=np.load(folder / VECTORS, mmap_mode="r"),
        title_vectors=np.load(folder / TITLE_VECTORS),
        dense=faiss.read_index(str(folder / DENSE)),
        bm25=Bm25Index.load(folder / BM25_DIR),
        **{name: arrays[name] for name in arrays.files},
    )
    index.snapshot = folder.name
    return index
