"""The corpus a query reads: committed segments seen as one, minus deleted documents.

Rows (chunks, sentences) are numbered across segments; BM25 uses the collection's statistics.
This is the embedded backend's `CorpusView` (`rag.index.backend`): retrieval, the reader and
citations read the index through its methods only, never its arrays.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rag.index.dense import dense_kind, nearest
from rag.index.lexical import lucene_idf
from rag.index.manifest import FORMAT_VERSION, IndexSpec, Manifest
from rag.index.segment import Segment, build_segment
from rag.ingest.documents import Document
from rag.models.embeddings import Encoder


class RowStack:
    """Rows of several arrays, addressed as if they were one (no copy of the big ones)."""

    def __init__(self, parts: list[np.ndarray]) -> None:
        self.parts = parts
        self.offsets = np.cumsum([0] + [len(p) for p in parts])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows)
        if len(self.parts) == 1:
            return np.asarray(self.parts[0][rows])
        part = np.searchsorted(self.offsets, rows, side="right") - 1
        out = np.empty((len(rows), self.parts[0].shape[1]), dtype=np.float32)
        for p in np.unique(part):
            mask = part == p
            out[mask] = self.parts[p][rows[mask] - self.offsets[p]]
        return out


@dataclass(eq=False)
class CorpusIndex:
    """Everything a query needs: segments seen as one corpus, minus deleted documents."""

    manifest: Manifest
    segments: list[Segment]
    deleted: list[frozenset[str]]  # per segment
    snapshot: str = ""  # commit name once saved or loaded

    def __post_init__(self) -> None:
        parts = self.segments
        doc_base = np.cumsum([0] + [len(s.documents) for s in parts])
        chunk_base = np.cumsum([0] + [len(s.chunk_doc) for s in parts])
        sent_base = np.cumsum([0] + [len(s.sent_chunk) for s in parts])
        self.chunk_base, self.sent_base = chunk_base, sent_base
        self.documents = [doc for s in parts for doc in s.documents]
        self.doc_live = np.array(
            [
                doc.doc_id not in gone
                for s, gone in zip(parts, self.deleted, strict=True)
                for doc in s.documents
            ],
            dtype=bool,
        )
        self.doc_rows = {
            doc.doc_id: row for row, doc in enumerate(self.documents) if self.doc_live[row]
        }

        def joined(name: str, base: np.ndarray | None = None) -> np.ndarray:
            arrays = [
                getattr(s, name) + (0 if base is None else base[i]) for i, s in enumerate(parts)
            ]
            return np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)

        self.chunk_doc = joined("chunk_doc", doc_base)
        self.chunk_start, self.chunk_end = joined("chunk_start"), joined("chunk_end")
        self.chunk_sent_lo = joined("chunk_sent_lo", sent_base)
        self.chunk_sent_hi = joined("chunk_sent_hi", sent_base)
        self.sent_chunk = joined("sent_chunk", chunk_base)
        self.sent_start, self.sent_end = joined("sent_start"), joined("sent_end")
        self.chunk_live = self.doc_live[self.chunk_doc]
        self.vectors = RowStack([s.vectors for s in parts])
        self.title_vectors = RowStack([s.title_vectors for s in parts])

    def live_documents(self) -> list[Document]:
        return [self.documents[row] for row in self.doc_rows.values()]

    def chunk_document(self, chunk: int) -> Document:
        """The document a chunk (a row over all segments) was cut from."""
        return self.documents[self.chunk_doc[chunk]]

    def chunk_id(self, chunk: int) -> str:
        doc = self.chunk_document(chunk)
        first = int(np.searchsorted(self.chunk_doc, self.chunk_doc[chunk]))
        return f"{doc.doc_id}#{chunk - first}"

    def chunk_text(self, chunk: int) -> str:
        doc = self.chunk_document(chunk)
        return doc.text[self.chunk_start[chunk] : self.chunk_end[chunk]]

    def sentence_text(self, sentence: int) -> str:
        doc = self.chunk_document(self.sent_chunk[sentence])
        return doc.text[self.sent_start[sentence] : self.sent_end[sentence]]

    def document(self, doc_id: str) -> Document | None:
        row = self.doc_rows.get(doc_id)
        return None if row is None else self.documents[row]

    def chunks_of(self, doc_ids: list[str]) -> np.ndarray:
        """The chunks of these (live) documents."""
        rows = [self.doc_rows[d] for d in doc_ids if d in self.doc_rows]
        return np.flatnonzero(np.isin(self.chunk_doc, rows))

    def chunk_span(self, chunk: int) -> tuple[int, int]:
        """The chunk's offsets in its document's text."""
        return int(self.chunk_start[chunk]), int(self.chunk_end[chunk])

    def sentence_span(self, sentence: int) -> tuple[int, int]:
        return int(self.sent_start[sentence]), int(self.sent_end[sentence])

    def sentence_chunk(self, sentence: int) -> int:
        """The chunk a sentence belongs to (its home, where chunks overlap)."""
        return int(self.sent_chunk[sentence])

    def chunk_sentences(self, chunks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All sentence rows of the given chunks, and where each chunk's run starts."""
        lo, hi = self.chunk_sent_lo[chunks], self.chunk_sent_hi[chunks]
        lengths = hi - lo
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        rows = np.repeat(lo - starts, lengths) + np.arange(lengths.sum())
        return rows, starts

    def sentence_spans(self, chunk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One chunk's sentence rows with their start and end offsets."""
        rows, _ = self.chunk_sentences(np.array([chunk]))
        return rows, self.sent_start[rows], self.sent_end[rows]

    def sentence_similarity(self, sentences: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """Cosines of these sentences with `vector` (unit vectors on both sides)."""
        return np.asarray(self.vectors[sentences] @ vector)

    def best_sentence_similarity(self, chunks: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """Each chunk's best sentence cosine with `vector`."""
        rows, starts = self.chunk_sentences(chunks)
        return np.maximum.reduceat(self.sentence_similarity(rows, vector), starts)

    def title_similarity(self, chunks: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """Cosines of the chunks' document titles with `vector`."""
        return self.title_vectors[self.chunk_doc[chunks]] @ vector

    def dense_chunks(self, query_vector: np.ndarray, sentences: int) -> np.ndarray:
        """The chunks holding the `sentences` sentences nearest the query, over all segments
        (which compete on exact cosines, whatever their index type)."""
        scores, rows = [], []
        for segment, base in zip(self.segments, self.sent_base, strict=False):
            found, found_scores = nearest(segment.dense, segment.vectors, query_vector, sentences)
            scores.append(found_scores)
            rows.append(found + base)
        scores_all, rows_all = np.concatenate(scores), np.concatenate(rows)
        nearest_rows = rows_all[np.argsort(-scores_all, kind="stable")[:sentences]]
        return np.unique(self.sent_chunk[nearest_rows])

    def lexical(
        self, terms: tuple[str, ...], top: int, chunks: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The live chunks among `chunks` and the `top` best by BM25, with their BM25 scores."""
        scores = self.bm25_scores(terms)
        found = chunks if top == 0 else np.union1d(chunks, top_n(scores, top))
        found = found[self.chunk_live[found]]
        return found, scores[found]

    def idf(self, terms: tuple[str, ...], prior_docs: int = 0) -> np.ndarray:
        """Collection IDF per term, as if `prior_docs` more texts lacked it.

        The prior keeps a handful of chunks from giving wild weights (in a one-article index
        every word is "common"); in a large index it fades away. Unseen terms weigh most.
        Deleted documents still count until their segment is merged, as in Lucene."""
        df = sum((s.bm25.document_frequencies(terms) for s in self.segments), np.zeros(len(terms)))
        num_docs = sum(s.bm25.num_docs for s in self.segments) + prior_docs
        return lucene_idf(df, num_docs).astype(np.float32)

    def bm25_scores(self, terms: tuple[str, ...]) -> np.ndarray:
        """BM25 of every chunk, each segment scored with the collection's IDF."""
        if len(self.segments) == 1:
            return self.segments[0].bm25.scores(terms)
        idf = self.idf(terms)
        return np.concatenate([s.bm25.scores(terms, idf) for s in self.segments])


def top_n(scores: np.ndarray, n: int) -> np.ndarray:
    """Rows of the `n` best positive scores (unordered)."""
    positive = np.flatnonzero(scores > 0)
    if positive.size <= n:
        return positive
    return positive[np.argpartition(-scores[positive], n)[:n]]


def describe(
    segments: list[Segment],
    deleted: list[frozenset[str]],
    spec: IndexSpec,
    dimension: int,
    sources_fingerprint: str | None = None,
    created_at: float = 0.0,
) -> CorpusIndex:
    """The corpus made of `segments`, with a manifest that counts what is live."""
    kinds = ", ".join(dict.fromkeys(dense_kind(s.dense) for s in segments))
    manifest = Manifest(
        FORMAT_VERSION, spec, dimension, kinds, 0, 0, 0, sources_fingerprint, created_at
    )
    index = CorpusIndex(manifest, segments, deleted)
    manifest.documents = len(index.doc_rows)
    manifest.chunks = int(index.chunk_live.sum())
    manifest.sentences = int(index.chunk_live[index.sent_chunk].sum())
    return index


def build(
    documents: list[Document],
    spec: IndexSpec,
    embedder: Encoder,
    reusable: list[Segment] = (),
    progress: Callable[[str], None] | None = None,
    sources_fingerprint: str | None = None,
) -> CorpusIndex:
    """A one-segment index over `documents`, reusing the vectors `reusable` segments hold (no
    segment at all when there are none: an empty corpus is a valid state)."""
    segments = [build_segment(documents, spec, embedder, reusable, progress)] if documents else []
    return describe(
        segments, [frozenset()] * len(segments), spec, embedder.dimension, sources_fingerprint,
        time.time(),
    )  # fmt: skip
