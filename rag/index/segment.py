"""Segments: documents cut, embedded and indexed together, immutable once built (as in Lucene)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import faiss
import numpy as np

from rag.index.dense import dense_index
from rag.index.lexical import Bm25Index
from rag.index.manifest import IndexSpec
from rag.ingest.chunking import Chunker
from rag.ingest.documents import Document
from rag.models.embeddings import Encoder

PROGRESS_EVERY = 4096  # texts between two progress lines of a long write
# vectors already stored, by text key (a backend looks them up its own way)
Known = Callable[[list[bytes]], dict[bytes, np.ndarray]]


@dataclass(eq=False)
class Segment:
    """Documents cut, embedded and indexed together; never changed once built."""

    documents: list[Document]
    chunk_doc: np.ndarray  # int32 [chunks] -> row in documents
    chunk_start: np.ndarray  # int64 [chunks]: offsets into the document's text
    chunk_end: np.ndarray
    chunk_sent_lo: np.ndarray  # int64 [chunks]: sentences of chunk c are lo[c]:hi[c]
    chunk_sent_hi: np.ndarray
    sent_chunk: np.ndarray  # int32 [sentences] -> home chunk
    sent_start: np.ndarray  # int64 [sentences]
    sent_end: np.ndarray
    sent_keys: np.ndarray  # S20 [sentences]: hash of the embedded text, to reuse vectors
    vectors: np.ndarray  # float32 [sentences, dim] (may be memory-mapped)
    title_keys: np.ndarray  # S20 [documents]
    title_vectors: np.ndarray  # float32 [documents, dim]: a sentence's story (may be mmapped)
    dense: faiss.Index
    bm25: Bm25Index
    name: str = ""  # folder name once saved or loaded
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256, once saved

    @cached_property
    def doc_ids(self) -> frozenset[str]:
        return frozenset(doc.doc_id for doc in self.documents)

    @cached_property
    def known_vectors(self) -> dict[bytes, np.ndarray]:
        """Vector by text key, sentences and titles alike (built once, on first reuse)."""
        known = dict(zip(self.title_keys.tolist(), self.title_vectors, strict=True))
        known.update(zip(self.sent_keys.tolist(), self.vectors, strict=True))
        return known


def text_key(spec: IndexSpec, text: str) -> bytes:
    return hashlib.sha1(f"{spec.model}\x00{spec.precision}\x00{text}".encode()).digest()


@dataclass
class Cut:
    """Documents cut into chunks and sentences (offsets into each text), with the texts that
    are embedded (sentences, titles) and tokenised (chunks): what every backend stores."""

    documents: list[Document]
    chunk_doc: np.ndarray  # int32 [chunks] -> row in documents
    chunk_start: np.ndarray
    chunk_end: np.ndarray
    chunk_texts: list[str]  # title + chunk text, as BM25 sees it
    sent_chunk: np.ndarray  # int32 [sentences] -> home chunk (non-decreasing)
    sent_start: np.ndarray
    sent_end: np.ndarray
    sent_texts: list[str]


def cut(documents: list[Document], spec: IndexSpec) -> Cut:
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
    return Cut(
        list(documents),
        np.asarray(chunk_doc, dtype=np.int32),
        np.asarray(chunk_start, dtype=np.int64),
        np.asarray(chunk_end, dtype=np.int64),
        chunk_texts,
        # homes are non-decreasing by construction; make it certain (contiguous chunk ranges)
        np.maximum.accumulate(np.asarray(sent_chunk, dtype=np.int32)),
        np.asarray(sent_start, dtype=np.int64),
        np.asarray(sent_end, dtype=np.int64),
        sent_texts,
    )


@dataclass
class Embedded:
    """Cut documents with the vectors of their sentences and titles (and the text keys by
    which later writes reuse them): everything a backend writes."""

    pieces: Cut
    keys: np.ndarray  # S20 [sentences]
    vectors: np.ndarray  # float32 [sentences, dim]
    title_keys: np.ndarray  # S20 [documents]
    title_vectors: np.ndarray  # float32 [documents, dim]

    def home_ranges(self) -> tuple[np.ndarray, np.ndarray]:
        """Per chunk, the sentences whose home it is (lo:hi); a chunk with none borrows the
        next sentence (the last one, at the end), so that no chunk is without one."""
        sent_chunk, n_chunks = self.pieces.sent_chunk, len(self.pieces.chunk_start)
        lo = np.searchsorted(sent_chunk, np.arange(n_chunks), side="left")
        hi = np.searchsorted(sent_chunk, np.arange(n_chunks), side="right")
        hi = np.where(hi > lo, hi, np.minimum(lo + 1, len(sent_chunk)))
        lo = np.where(lo < hi, lo, hi - 1)
        return lo.astype(np.int64), hi.astype(np.int64)


def embed_documents(
    documents: list[Document],
    spec: IndexSpec,
    embedder: Encoder,
    known: Known = lambda keys: {},
    progress: Callable[[str], None] | None = None,
) -> Embedded:
    """Cut and embed; texts `known` has keep their vectors."""
    pieces = cut(documents, spec)
    titles = [doc.title for doc in pieces.documents]
    # sentences and titles in one call: a title is often a document's first sentence too
    texts = pieces.sent_texts + titles
    all_keys = np.array([text_key(spec, text) for text in texts], dtype="S20")
    all_vectors = embed_with_cache(texts, all_keys, embedder, known, progress)
    n = len(pieces.sent_texts)
    return Embedded(pieces, all_keys[:n], all_vectors[:n], all_keys[n:], all_vectors[n:])


def known_in(segments: list[Segment]) -> Known:
    """Vectors that `segments` already hold, by text key."""

    def lookup(keys: list[bytes]) -> dict[bytes, np.ndarray]:
        found = {}
        for key in keys:
            hit = next((s.known_vectors[key] for s in segments if key in s.known_vectors), None)
            if hit is not None:
                found[key] = hit
        return found

    return lookup


def build_segment(
    documents: list[Document],
    spec: IndexSpec,
    embedder: Encoder,
    reusable: list[Segment] = (),
    progress: Callable[[str], None] | None = None,
) -> Segment:
    """Cut, embed and index; texts a `reusable` segment already embedded keep their vectors."""
    embedded = embed_documents(documents, spec, embedder, known_in(list(reusable)), progress)
    pieces, vectors = embedded.pieces, embedded.vectors
    lo, hi = embedded.home_ranges()
    n_chunks = len(pieces.chunk_start)
    if progress:
        progress(f"indexing {len(pieces.sent_texts)} sentences and {n_chunks} chunks")
    return Segment(
        documents=list(documents),
        chunk_doc=pieces.chunk_doc,
        chunk_start=pieces.chunk_start,
        chunk_end=pieces.chunk_end,
        chunk_sent_lo=lo,
        chunk_sent_hi=hi,
        sent_chunk=pieces.sent_chunk,
        sent_start=pieces.sent_start,
        sent_end=pieces.sent_end,
        sent_keys=embedded.keys,
        vectors=vectors,
        title_keys=embedded.title_keys,
        title_vectors=embedded.title_vectors,
        dense=dense_index(vectors, progress),
        bm25=Bm25Index.build(pieces.chunk_texts),
    )


def embed_with_cache(
    texts: list[str],
    keys: np.ndarray,
    embedder: Encoder,
    known: Known,
    progress: Callable[[str], None] | None,
) -> np.ndarray:
    """Vectors for `texts`, copied where `known` has the key; a text that occurs several
    times (titles of one story, boilerplate lines) is embedded once."""
    vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    todo: dict[bytes, list[int]] = {}  # new key -> the rows that hold its text
    key_list = keys.tolist()
    have = known(list(dict.fromkeys(key_list)))
    for i, key in enumerate(key_list):
        found = have.get(key)
        if found is None:
            todo.setdefault(key, []).append(i)
        else:
            vectors[i] = found
    if progress:
        saved = len(texts) - len(todo)
        progress(f"embedding {len(todo)} new texts ({saved} reused or repeated)")
    rows = list(todo.values())
    for begin in range(0, len(rows), PROGRESS_EVERY):
        part = rows[begin : begin + PROGRESS_EVERY]
        fresh = embedder.encode([texts[r[0]] for r in part], show_progress=progress is not None)
        for same, vector in zip(part, fresh, strict=True):
            vectors[same] = vector
        if progress and len(rows) > PROGRESS_EVERY:  # a long write says how far it got
            progress(f"embedded {begin + len(part)} of {len(rows)} texts")
    return vectors
