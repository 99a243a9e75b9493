"""One version of the index as queries read it: rows visible at that version."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from rag.index.lexical import BM25_B, BM25_K1
from rag.index.manifest import Manifest
from rag.index.postgres.database import Database
from rag.index.postgres.schema import VISIBLE
from rag.ingest.documents import Document


class PostgresView:
    """One version of the index in the database (the CorpusView of this backend)."""

    def __init__(self, backend: Database, version: int) -> None:
        self.backend, self.version, self.snapshot = backend, version, str(version)
        with backend.connection() as conn:
            (record,) = conn.execute("SELECT manifest FROM index_state").fetchone()
        self.manifest = Manifest.from_json(record)  # with the live counts its write made

    def rows(self, sql: str, **params) -> list[tuple]:
        with self.backend.connection() as conn:
            return conn.execute(sql, {"v": self.version, **params}).fetchall()

    def live_documents(self) -> list[Document]:
        rows = self.rows(
            f"SELECT id FROM documents d WHERE {VISIBLE} ORDER BY id",
        )
        return [self.document_row(row) for (row,) in rows]

    def document(self, doc_id: str) -> Document | None:
        rows = self.rows(
            f"SELECT id FROM documents d WHERE doc_id = %(id)s AND {VISIBLE}", id=doc_id
        )
        return self.document_row(rows[0][0]) if rows else None

    def document_row(self, row: int) -> Document:
        return document_by_row(self.backend, row)

    def chunks_of(self, doc_ids: list[str]) -> np.ndarray:
        rows = self.rows(
            f"""SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document
                WHERE d.doc_id = ANY(%(ids)s) AND {VISIBLE} ORDER BY c.id""",
            ids=list(doc_ids),
        )
        return np.array([r[0] for r in rows], dtype=np.int64)

    def chunk(self, chunk: int) -> tuple[int, int, int, int, int, int]:
        """(document row, ordinal, start, end, first sentence, end sentence)."""
        return chunk_by_id(self.backend, int(chunk))

    def chunk_document(self, chunk: int) -> Document:
        return self.document_row(self.chunk(chunk)[0])

    def chunk_id(self, chunk: int) -> str:
        return f"{self.chunk_document(chunk).doc_id}#{self.chunk(chunk)[1]}"

    def chunk_span(self, chunk: int) -> tuple[int, int]:
        _, _, start, end, _, _ = self.chunk(chunk)
        return start, end

    def chunk_text(self, chunk: int) -> str:
        start, end = self.chunk_span(chunk)
        return self.chunk_document(chunk).text[start:end]

    def sentence(self, sentence: int) -> tuple[int, int, int]:
        return sentence_by_id(self.backend, int(sentence))

    def sentence_span(self, sentence: int) -> tuple[int, int]:
        _, start, end = self.sentence(sentence)
        return start, end

    def sentence_text(self, sentence: int) -> str:
        chunk, start, end = self.sentence(sentence)
        return self.chunk_document(chunk).text[start:end]

    def sentence_chunk(self, sentence: int) -> int:
        return self.sentence(sentence)[0]

    def sentence_spans(self, chunk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        *_, lo, hi = self.chunk(chunk)
        rows = self.rows(
            "SELECT id, start_at, end_at FROM sentences WHERE id >= %(lo)s AND id < %(hi)s "
            "ORDER BY id",
            lo=lo,
            hi=hi,
        )
        ids, starts, ends = (np.array(col, dtype=np.int64) for col in zip(*rows, strict=True))
        return ids, starts, ends

    def scores(self, sql: str, ids: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """One score per id, in the order given (`sql` returns (id, score) for %(ids)s)."""
        found = dict(self.rows(sql, q=vector, ids=[int(i) for i in ids]))
        return np.array([found[int(i)] for i in ids], dtype=np.float32)

    def sentence_similarity(self, sentences: np.ndarray, vector: np.ndarray) -> np.ndarray:
        sql = "SELECT id, -(vector <#> %(q)s::halfvec) FROM sentences WHERE id = ANY(%(ids)s)"
        return self.scores(sql, sentences, vector)

    def best_sentence_similarity(self, chunks: np.ndarray, vector: np.ndarray) -> np.ndarray:
        sql = """SELECT c.id, best.similarity FROM chunks c CROSS JOIN LATERAL (
                     SELECT max(-(s.vector <#> %(q)s::halfvec)) AS similarity FROM sentences s
                     WHERE s.id >= c.sent_lo AND s.id < c.sent_hi) best
                 WHERE c.id = ANY(%(ids)s)"""
        return self.scores(sql, chunks, vector)

    def title_similarity(self, chunks: np.ndarray, vector: np.ndarray) -> np.ndarray:
        sql = """SELECT c.id, -(d.title_vector <#> %(q)s) FROM chunks c
                 JOIN documents d ON d.id = c.document WHERE c.id = ANY(%(ids)s)"""
        return self.scores(sql, chunks, vector)

    def dense_chunks(self, query_vector: np.ndarray, sentences: int) -> np.ndarray:
        rows = self.rows(
            f"""SELECT s.chunk FROM sentences s JOIN documents d ON d.id = s.document
                WHERE {VISIBLE} ORDER BY s.vector <#> %(q)s::halfvec LIMIT %(n)s""",
            q=query_vector,
            n=sentences,
        )
        return np.unique(np.array([r[0] for r in rows], dtype=np.int64))

    def lexical(
        self, terms: tuple[str, ...], top: int, chunks: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """BM25 as bm25s scores it (Lucene IDF, k1, b), from the stored statistics."""
        given = [int(c) for c in chunks]
        scored = dict(
            self.rows(
                f"""WITH q AS (SELECT term, count(*) AS n FROM unnest(%(terms)s::text[]) term
                               GROUP BY term),
                    w AS (SELECT q.term, q.n * ln(1 + (cs.chunks - t.df + 0.5) / (t.df + 0.5))
                                 AS idf, cs.tokens::float8 / greatest(cs.chunks, 1) AS avgdl
                          FROM q JOIN term_stats t USING (term) CROSS JOIN corpus_stats cs),
                    scored AS (
                        SELECT ct.chunk, sum(w.idf * ct.tf / (ct.tf + {BM25_K1} * (
                            1 - {BM25_B} + {BM25_B} * c.length / w.avgdl))) AS score
                        FROM w JOIN chunk_terms ct USING (term)
                        JOIN chunks c ON c.id = ct.chunk JOIN documents d ON d.id = c.document
                        WHERE {VISIBLE} GROUP BY ct.chunk)
                SELECT chunk, score FROM scored WHERE chunk = ANY(%(given)s)
                UNION (SELECT chunk, score FROM scored ORDER BY score DESC LIMIT %(top)s)""",
                terms=list(terms),
                given=given,
                top=top,
            )
        )
        visible = set(self.visible_chunks(given)) if given else set()
        found = np.array(sorted(visible | set(scored)), dtype=np.int64)
        return found, np.array([scored.get(int(c), 0.0) for c in found], dtype=np.float32)

    def visible_chunks(self, chunks: list[int]) -> list[int]:
        rows = self.rows(
            f"""SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document
                WHERE c.id = ANY(%(ids)s) AND {VISIBLE}""",
            ids=chunks,
        )
        return [r[0] for r in rows]


# Rows never change once written (a replaced document is a new row), so what was read once
# stays true for every version: cached per process.
@lru_cache(maxsize=4096)
def document_by_row(backend: Database, row: int) -> Document:
    with backend.connection() as conn:
        doc_id, text, title, source, metadata = conn.execute(
            "SELECT doc_id, text, title, source, metadata FROM documents WHERE id = %s", [row]
        ).fetchone()
    return Document(doc_id, title, text, metadata, source)


@lru_cache(maxsize=65536)
def chunk_by_id(backend: Database, chunk: int) -> tuple[int, int, int, int, int, int]:
    with backend.connection() as conn:
        return tuple(
            conn.execute(
                "SELECT document, ordinal, start_at, end_at, sent_lo, sent_hi FROM chunks "
                "WHERE id = %s",
                [chunk],
            ).fetchone()
        )


@lru_cache(maxsize=65536)
def sentence_by_id(backend: Database, sentence: int) -> tuple[int, int, int]:
    with backend.connection() as conn:
        return tuple(
            conn.execute(
                "SELECT chunk, start_at, end_at FROM sentences WHERE id = %s", [sentence]
            ).fetchone()
        )
