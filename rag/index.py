"""The index: documents, their chunk and sentence spans, sentence vectors in FAISS, and BM25.

An index is a list of immutable segments, as in Lucene: a write adds one small segment (and
marks replaced or deleted documents of older segments as deleted) instead of rebuilding the
whole; small segments are merged now and then, carrying their vectors over. Queries see one
corpus: rows are numbered across segments, and BM25 uses the collection's statistics.
Persistence is in `rag.store`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import faiss
import numpy as np

from rag.chunking import Chunker
from rag.documents import Document
from rag.embeddings import Encoder
from rag.lexical import Bm25Index, lucene_idf

FORMAT_VERSION = 4
# Beyond this many segments the newest are merged whatever their sizes.
MAX_SEGMENTS = 12
# Up to this many sentence vectors a segment is searched exactly (bench/scale.py).
FLAT_LIMIT = 30_000
IVF_PROBES = 48


@dataclass(frozen=True)
class IndexSpec:
    """What decides the index's content besides the documents: a change means re-embedding."""

    model: str
    chunk_size: int
    chunk_overlap: int
    precision: str = "fp32"  # of the vectors: int8 ones are not mixed with fp32 ones


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


def build_segment(
    documents: list[Document],
    spec: IndexSpec,
    embedder: Encoder,
    reusable: list[Segment] = (),
    progress: Callable[[str], None] | None = None,
) -> Segment:
    """Cut, embed and index; texts a `reusable` segment already embedded keep their vectors."""
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

    titles = [doc.title for doc in documents]
    # sentences and titles in one call: a title is often a document's first sentence too
    texts = sent_texts + titles
    all_keys = np.array([text_key(spec, text) for text in texts], dtype="S20")
    all_vectors = embed_with_cache(texts, all_keys, embedder, reusable, progress)
    n = len(sent_texts)
    keys, title_keys = all_keys[:n], all_keys[n:]
    vectors, title_vectors = all_vectors[:n], all_vectors[n:]
    if progress:
        progress(f"indexing {len(sent_texts)} sentences and {n_chunks} chunks")
    return Segment(
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
        dense=dense_index(vectors, progress),
        bm25=Bm25Index.build(chunk_texts),
    )


def dense_index(vectors: np.ndarray, progress: Callable[[str], None] | None = None) -> faiss.Index:
    """Exact search while it is cheap; past FLAT_LIMIT vectors, an inverted file over 4-bit
    scalar-quantised codes (192 bytes a vector instead of 1,536) whose candidates `nearest`
    re-scores exactly from the float vectors on disk. Measured at 1M vectors: recall@10 after
    re-scoring 0.99, as with 8-bit codes, in half the memory; product quantisation (64 bytes)
    matched it too but took minutes to train where this takes seconds (bench/scale.py)."""
    count, dimension = vectors.shape
    if count <= FLAT_LIMIT:
        index = faiss.IndexFlatIP(dimension)
        index.add(vectors)
        return index
    lists = int(4 * np.sqrt(count))
    kind = f"IVF{lists},SQ4"
    if progress:
        progress(f"training an {kind} index over {count} vectors")
    index = faiss.index_factory(dimension, kind, faiss.METRIC_INNER_PRODUCT)
    sample = np.random.default_rng(0).choice(count, min(count, lists * 40), replace=False)
    index.train(np.ascontiguousarray(vectors[np.sort(sample)]))
    for start in range(0, count, 100_000):
        index.add(np.ascontiguousarray(vectors[start : start + 100_000]))
    faiss.extract_index_ivf(index).nprobe = IVF_PROBES
    return index


def dense_kind(index: faiss.Index) -> str:
    if isinstance(index, faiss.IndexFlat):
        return "IndexFlatIP"
    ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
    bits = 4 if ivf.sq.qtype == faiss.ScalarQuantizer.QT_4bit else 8  # 8: made by format 4
    return f"IVF{ivf.nlist},SQ{bits}"


def nearest(
    dense: faiss.Index, vectors: np.ndarray, query_vector: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the `n` vectors `dense` finds nearest the query, and their exact cosines, best
    first: an approximate index only proposes candidates, the float vectors decide."""
    found_scores, found = dense.search(query_vector.reshape(1, -1), min(n, dense.ntotal))
    keep = found[0] >= 0
    rows = found[0][keep]
    if isinstance(dense, faiss.IndexFlat):
        return rows, found_scores[0][keep]
    scores = np.asarray(vectors[rows]) @ query_vector
    order = np.argsort(-scores, kind="stable")
    return rows[order], scores[order]


def search_on_one_thread() -> None:
    """For threads that serve queries, which already run side by side: one query's search
    split across OpenMP threads costs more than it saves (12,000 vectors: 1.0 ms on two
    threads, 0.4 ms on one), and idle OpenMP threads spin. Applies to the calling thread."""
    faiss.omp_set_num_threads(1)


PROGRESS_EVERY = 4096  # texts between two progress lines of a long write


def embed_with_cache(
    texts: list[str],
    keys: np.ndarray,
    embedder: Encoder,
    reusable: list[Segment],
    progress: Callable[[str], None] | None,
) -> np.ndarray:
    """Vectors for `texts`, copied from `reusable` segments where the key is known; a text
    that occurs several times (titles of one story, boilerplate lines) is embedded once."""
    vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    todo: dict[bytes, list[int]] = {}  # new key -> the rows that hold its text
    for i, key in enumerate(keys.tolist()):
        found = next((s.known_vectors[key] for s in reusable if key in s.known_vectors), None)
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


@dataclass
class Manifest:
    """What a committed index holds; stored as the commit file that `CURRENT` names."""

    format_version: int
    spec: IndexSpec
    dimension: int
    dense_index: str
    documents: int  # live ones
    chunks: int
    sentences: int
    sources_fingerprint: str | None
    created_at: float
    segments: list[SegmentEntry] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict) -> Manifest:
        known = IndexSpec.__dataclass_fields__
        spec = IndexSpec(**{k: v for k, v in data["spec"].items() if k in known})
        segments = [SegmentEntry(**entry) for entry in data.get("segments", [])]
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{**fields, "spec": spec, "segments": segments})

    def stale_reasons(self, spec: IndexSpec) -> list[str]:
        """Why the stored vectors or chunks cannot serve `spec` (empty when they can)."""
        reasons = []
        if self.format_version != FORMAT_VERSION:
            reasons.append(f"format version {self.format_version} != {FORMAT_VERSION}")
        for name in IndexSpec.__dataclass_fields__:
            have, want = getattr(self.spec, name), getattr(spec, name)
            if have != want:
                reasons.append(f"{name} changed ({have!r} -> {want!r})")
        return reasons


@dataclass
class SegmentEntry:
    name: str
    documents: int
    chunks: int
    sentences: int
    deleted: list[str] = field(default_factory=list)  # doc_ids no longer live here
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256


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

    def search_dense(self, query_vector: np.ndarray, n: int) -> np.ndarray:
        """Rows of the `n` sentences nearest the query, over all segments (which compete on
        exact cosines, whatever their index type)."""
        scores, rows = [], []
        for segment, base in zip(self.segments, self.sent_base, strict=False):
            found, found_scores = nearest(segment.dense, segment.vectors, query_vector, n)
            scores.append(found_scores)
            rows.append(found + base)
        scores_all, rows_all = np.concatenate(scores), np.concatenate(rows)
        return rows_all[np.argsort(-scores_all, kind="stable")[:n]]

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


def with_changes(
    index: CorpusIndex,
    added: list[Document],
    removed: set[str],
    embedder: Encoder,
    progress: Callable[[str], None] | None = None,
) -> CorpusIndex:
    """`index` with `added` documents (replacing any of the same id) and `removed` ones gone.

    The older segments are untouched: what changed lands in one new segment and deletion
    marks; then the newest segments are merged while they are no bigger than the one after
    them (sizes double, so a document is rewritten O(log n) times over its life)."""
    spec = index.manifest.spec
    gone = removed | {doc.doc_id for doc in added}
    segments = list(index.segments)
    deleted = [marks | (gone & s.doc_ids) for s, marks in zip(segments, index.deleted, strict=True)]
    if added:
        segments.append(build_segment(added, spec, embedder, segments, progress))
        deleted.append(frozenset())
    kept = [i for i, s in enumerate(segments) if s.doc_ids - deleted[i]]
    segments, deleted = [segments[i] for i in kept], [deleted[i] for i in kept]
    while len(segments) > 1 and (
        live_size(segments[-2], deleted[-2]) <= live_size(segments[-1], deleted[-1])
        or len(segments) > MAX_SEGMENTS
    ):
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


def live_size(segment: Segment, deleted: frozenset[str]) -> int:
    return len(segment.doc_ids - deleted)


def build(
    documents: list[Document],
    spec: IndexSpec,
    embedder: Encoder,
    reusable: list[Segment] = (),
    progress: Callable[[str], None] | None = None,
    sources_fingerprint: str | None = None,
) -> CorpusIndex:
    """A one-segment index over `documents`, reusing the vectors `reusable` segments hold."""
    segment = build_segment(documents, spec, embedder, reusable, progress)
    return describe(
        [segment], [frozenset()], spec, embedder.dimension, sources_fingerprint, time.time()
    )
