"""Dense search over one segment's sentence vectors: FAISS, exact while it is cheap."""

from __future__ import annotations

from collections.abc import Callable

import faiss
import numpy as np

# Up to this many sentence vectors a segment is searched exactly (bench/scale.py).
FLAT_LIMIT = 30_000
IVF_PROBES = 48


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
