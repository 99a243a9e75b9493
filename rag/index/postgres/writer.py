"""One write transaction in the database, under the advisory lock."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict

import numpy as np
import psycopg

from rag.errors import IndexStoreError, ReadOnly
from rag.index.backend import CorpusView
from rag.index.lexical import tokenize
from rag.index.manifest import FORMAT_VERSION, Manifest
from rag.index.postgres.database import Database
from rag.index.postgres.schema import (
    ANALYZE_MIN,
    CHANNEL,
    HNSW_BUILD,
    LIVE_COUNTS,
    PURGE_AFTER,
    SCHEMA,
    SCHEMA_VERSION,
    TABLES,
    WRITE_LOCK,
    has_schema,
)
from rag.index.segment import Embedded, Known, embed_documents
from rag.index.writer import Changes, Progress
from rag.ingest.documents import Document


class PostgresWriter(Changes):
    """One write transaction in the database, under the advisory lock."""

    def __init__(self, backend: Database, progress: Progress, force: bool) -> None:
        super().__init__(backend.spec, force)
        self.backend, self.progress = backend, progress
        self.embedded: list[Embedded] = []
        self.live = (0, 0)  # documents and sentences live, kept up to date through the write
        self.result: CorpusView | None = None

    def __enter__(self) -> PostgresWriter:
        if self.backend.read_only:
            raise ReadOnly(
                "this replica reads from a standby database and takes no writes: send them "
                "to a replica whose RAG_DATABASE_URL is the primary"
            )
        self.holder = self.backend.connection(write=True)
        self.conn = self.holder.__enter__()
        self.conn.autocommit = False
        try:
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", [WRITE_LOCK])
            self.schema = has_schema(self.conn)
            state = (
                self.schema
                and self.conn.execute(
                    "SELECT version, manifest FROM index_state FOR UPDATE"
                ).fetchone()
            )
            self.version = int(state[0]) if state else 0
            self.manifest = Manifest.from_json(state[1]) if state and not self.force else None
            self.withdrawn = set(state[1].get("withdrawn", [])) if state else set()
        except BaseException:
            self.close(commit=False)
            raise
        if self.manifest is not None:
            self.sources_fingerprint = self.manifest.sources_fingerprint
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            self.close(commit=False)
            return
        try:
            changed = self.commit()
        except BaseException:
            self.close(commit=False)
            raise
        self.close(commit=changed)
        self.result = self.backend.load()

    def close(self, commit: bool) -> None:
        try:
            self.conn.commit() if commit else self.conn.rollback()
        finally:
            self.conn.autocommit = True
            self.holder.__exit__(None, None, None)

    def stored_documents(self) -> list[Document]:
        return [] if self.force else self.live_documents()

    def salvage_documents(self) -> list[Document]:
        try:
            with self.conn.transaction():  # a savepoint: a failed read leaves the write usable
                return self.live_documents()
        except psycopg.Error as error:
            raise IndexStoreError(f"the database's documents cannot be read: {error}") from None

    def live_documents(self) -> list[Document]:
        if not self.schema:
            return []
        rows = self.conn.execute(
            "SELECT doc_id, text, title, source, metadata FROM documents "
            "WHERE removed IS NULL ORDER BY id"
        ).fetchall()
        return [Document(r[0], r[2], r[1], r[4], r[3]) for r in rows]

    def commit(self) -> bool:
        """Apply the changes in this transaction; False when there was nothing to write.

        Costs what the change holds, not what the database holds: a write to a large index
        reads no document it does not touch and counts nothing it can add up."""
        if self.unchanged():
            return False
        rebuild = self.replacement is not None or bool(self.stale_reasons) or not self.schema
        if rebuild:
            documents = self.rebuilt_documents()
            gone = self.live_ids(None)  # all of them, even when forced to ignore them
        else:
            documents = list(self.added.values())
            gone = self.removed | set(self.added)
        dimension = self.backend.encoder.dimension
        if not self.schema or (self.manifest and self.manifest.dimension != dimension):
            self.create_schema(dimension)
        self.live = self.live_counts()
        version = self.version + 1
        self.remove(gone, version)
        self.insert(documents, version)
        live, sentences = self.live
        (chunks,) = self.conn.execute("SELECT chunks FROM corpus_stats").fetchone()
        manifest = Manifest(
            FORMAT_VERSION, self.spec, dimension, "HNSW (pgvector)", live, chunks, sentences,
            self.sources_fingerprint, time.time(), withdrawn=sorted(self.withdrawn),
        )  # fmt: skip
        self.conn.execute(
            "INSERT INTO index_state (id, version, manifest) VALUES (1, %(v)s, %(m)s) "
            "ON CONFLICT (id) DO UPDATE SET version = %(v)s, manifest = %(m)s, updated_at = now()",
            {"v": version, "m": json.dumps(asdict(manifest))},
        )
        self.conn.execute(
            f"DELETE FROM documents WHERE removed IS NOT NULL "
            f"AND removed_at < now() - interval '{PURGE_AFTER}'"
        )
        self.conn.execute("SELECT pg_notify(%s, %s)", [CHANNEL, str(version)])
        return True

    def live_ids(self, doc_ids: set[str] | None) -> set[str]:
        """Which of `doc_ids` are live (None: every live one)."""
        if not self.schema:
            return set()
        if doc_ids is None:
            rows = self.conn.execute("SELECT doc_id FROM documents WHERE removed IS NULL")
        else:
            rows = self.conn.execute(
                "SELECT doc_id FROM documents WHERE doc_id = ANY(%s) AND removed IS NULL",
                [list(doc_ids)],
            )
        return {row[0] for row in rows.fetchall()}

    def live_counts(self) -> tuple[int, int]:
        """Live documents and sentences before this write: the last version's, as its write
        counted them (counted afresh only when the index is rebuilt without reading it)."""
        if self.manifest is not None and self.manifest.dimension == self.backend.encoder.dimension:
            return self.manifest.documents, self.manifest.sentences
        return self.conn.execute(LIVE_COUNTS).fetchone()

    def create_schema(self, dimension: int) -> None:
        if self.progress:
            self.progress(f"creating the index schema in the database ({dimension}-d vectors)")
        self.conn.execute(f"DROP TABLE IF EXISTS schema_version, {TABLES} CASCADE")
        self.conn.execute("DROP SEQUENCE IF EXISTS row_ids")
        self.conn.execute(SCHEMA.format(dim=dimension, hnsw_build=HNSW_BUILD))
        self.conn.execute("INSERT INTO schema_version VALUES (%s)", [SCHEMA_VERSION])
        from pgvector.psycopg import register_vector

        register_vector(self.conn)
        self.schema = True

    def remove(self, doc_ids: set[str], version: int) -> None:
        """Mark live documents removed at `version`, taking their chunks out of the statistics."""
        if not doc_ids:
            return
        rows = [r[0] for r in self.conn.execute(
            "UPDATE documents SET removed = %s, removed_at = now() "
            "WHERE doc_id = ANY(%s) AND removed IS NULL RETURNING id",
            [version, list(doc_ids)],
        ).fetchall()]  # fmt: skip
        if not rows:
            return
        (sentences,) = self.conn.execute(
            "SELECT count(*) FROM sentences WHERE chunk IN "
            "(SELECT id FROM chunks WHERE document = ANY(%s))",
            [rows],
        ).fetchone()
        self.live = (self.live[0] - len(rows), self.live[1] - sentences)
        emptied = self.conn.execute(
            """UPDATE term_stats t SET df = t.df - gone.n FROM (
                   SELECT ct.term, count(*) AS n FROM chunk_terms ct
                   JOIN chunks c ON c.id = ct.chunk WHERE c.document = ANY(%s) GROUP BY ct.term
               ) gone WHERE t.term = gone.term RETURNING t.term, t.df""",
            [rows],
        ).fetchall()
        self.conn.execute(
            """UPDATE corpus_stats SET chunks = chunks - gone.n, tokens = tokens - gone.total
               FROM (SELECT count(*) AS n, coalesce(sum(length), 0) AS total FROM chunks
                     WHERE document = ANY(%s)) gone""",
            [rows],
        )
        self.conn.execute(
            "DELETE FROM term_stats WHERE term = ANY(%s)", [[t for t, df in emptied if df <= 0]]
        )

    def add_embedded(self, embedded: Embedded) -> None:
        """Add documents cut and embedded elsewhere (Ray workers); replaces same ids."""
        self.add(embedded.pieces.documents)
        self.embedded.append(embedded)

    def insert(self, documents: list[Document], version: int) -> None:
        ready = {d.doc_id for e in self.embedded for d in e.pieces.documents}
        todo = [d for d in documents if d.doc_id not in ready]
        batches = [
            e for e in self.embedded if any(d.doc_id in self.added for d in e.pieces.documents)
        ]
        if todo:
            known = self.known()
            batches.append(
                embed_documents(todo, self.spec, self.backend.encoder, known, self.progress)
            )
        for embedded in batches:
            self.write_rows(embedded, version)
        self.refresh_statistics(sum(len(e.pieces.sent_start) for e in batches))

    def refresh_statistics(self, written: int) -> None:
        """ANALYZE once a tenth of the sentences are new since the last one: with stale
        statistics the planner scans where it should look up (BM25 over SQuAD dev: 55 ms
        a query before, 9 ms after). Autovacuum would, but only a minute or more later."""
        reltuples, pending = self.conn.execute(
            """SELECT c.reltuples, coalesce(s.n_mod_since_analyze, 0) FROM pg_class c
               LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
               WHERE c.oid = 'sentences'::regclass"""
        ).fetchone()
        if written + pending > max(reltuples, 0) * 0.1 + ANALYZE_MIN:
            self.conn.execute("ANALYZE documents, chunks, chunk_terms, term_stats, sentences")

    def write_rows(self, embedded: Embedded, version: int) -> None:
        """COPY one batch of embedded documents in, and count them into the statistics."""
        pieces = embedded.pieces
        documents = pieces.documents
        if self.progress:
            self.progress(f"writing {len(documents)} documents to the database")
        counts = [len(documents), len(pieces.chunk_start), len(pieces.sent_start)]
        (base,) = self.conn.execute(
            "SELECT setval('row_ids', nextval('row_ids') + %s) - %s + 1", [sum(counts), sum(counts)]
        ).fetchone()
        doc_ids = base + np.arange(counts[0])
        chunk_ids = base + counts[0] + np.arange(counts[1])
        sent_ids = base + counts[0] + counts[1] + np.arange(counts[2])
        lo, hi = embedded.home_ranges()
        tokens = tokenize(pieces.chunk_texts)
        ordinals = np.arange(counts[1]) - np.searchsorted(pieces.chunk_doc, pieces.chunk_doc)
        keys, vectors = embedded.keys, embedded.vectors
        title_keys, title_vectors = embedded.title_keys, embedded.title_vectors
        with self.conn.cursor() as cur:
            with cur.copy(
                "COPY documents (id, doc_id, title, text, source, metadata, title_key, "
                "title_vector, added) FROM STDIN"
            ) as copy:
                for row, doc in enumerate(documents):
                    copy.write_row([
                        int(doc_ids[row]), doc.doc_id, doc.title, doc.text, doc.source,
                        json.dumps(doc.metadata), bytes(title_keys[row]),
                        vector_text(title_vectors[row]), version,
                    ])  # fmt: skip
            with cur.copy(
                "COPY chunks (id, document, ordinal, start_at, end_at, length, sent_lo, sent_hi) "
                "FROM STDIN"
            ) as copy:
                for c in range(counts[1]):
                    copy.write_row([
                        int(chunk_ids[c]), int(doc_ids[pieces.chunk_doc[c]]), int(ordinals[c]),
                        int(pieces.chunk_start[c]), int(pieces.chunk_end[c]), len(tokens[c]),
                        int(sent_ids[0] + lo[c]), int(sent_ids[0] + hi[c]),
                    ])  # fmt: skip
            with cur.copy("COPY chunk_terms (term, chunk, tf) FROM STDIN") as copy:
                for c, words in enumerate(tokens):
                    for term, tf in Counter(words).items():
                        copy.write_row([term, int(chunk_ids[c]), tf])
            with cur.copy(
                "COPY sentences (id, chunk, document, start_at, end_at, key, vector) FROM STDIN"
            ) as copy:
                for s in range(counts[2]):
                    home = pieces.sent_chunk[s]
                    copy.write_row([
                        int(sent_ids[s]), int(chunk_ids[home]),
                        int(doc_ids[pieces.chunk_doc[home]]), int(pieces.sent_start[s]),
                        int(pieces.sent_end[s]), bytes(keys[s]), vector_text(vectors[s]),
                    ])  # fmt: skip
        self.conn.execute(
            """INSERT INTO term_stats (term, df)
               SELECT term, count(*) FROM chunk_terms WHERE chunk = ANY(%s) GROUP BY term
               ON CONFLICT (term) DO UPDATE SET df = term_stats.df + excluded.df""",
            [[int(c) for c in chunk_ids]],
        )
        self.live = (self.live[0] + counts[0], self.live[1] + counts[2])
        self.conn.execute(
            "UPDATE corpus_stats SET chunks = chunks + %s, tokens = tokens + %s",
            [counts[1], sum(len(t) for t in tokens)],
        )

    def known(self) -> Known:
        """Vectors the database already holds for these text keys (same model, precision)."""

        def lookup(keys: list[bytes]) -> dict[bytes, np.ndarray]:
            if not self.schema or not keys:
                return {}
            rows = self.conn.execute(
                """SELECT DISTINCT ON (key) key, vector FROM (
                       SELECT key, vector::vector FROM sentences WHERE key = ANY(%(k)s)
                       UNION ALL
                       SELECT title_key, title_vector FROM documents WHERE title_key = ANY(%(k)s)
                   ) known""",
                {"k": keys},
            ).fetchall()
            return {bytes(key): as_array(vector) for key, vector in rows}

        return lookup


def vector_text(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.9g}" for x in vector.tolist()) + "]"


def as_array(vector) -> np.ndarray:
    """A vector as pgvector's adapter returns it (numpy, or its Vector type in a UNION)."""
    array = vector.to_numpy() if hasattr(vector, "to_numpy") else vector
    return np.asarray(array, dtype=np.float32)
