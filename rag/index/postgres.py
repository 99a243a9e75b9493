"""The PostgreSQL backend (`RAG_DATABASE_URL`): documents, chunks and sentences in tables,
sentence and title vectors in pgvector (HNSW), BM25 statistics kept exact by every write.

Versions, as the embedded store's commits: a write is one transaction under an advisory
lock that bumps `index_state.version`, marks the documents it replaces or deletes with the
version that removed them and inserts new rows with the version that added them. A view
reads the rows visible at its version, so a query never mixes two versions while writes go
on, and any number of replicas share the database. Removed rows are purged by a later write
once no replica can still be reading them (`PURGE_AFTER`).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from functools import lru_cache

import numpy as np

from rag.errors import ReadOnly, SetupError, Unavailable, WriteError
from rag.index.lexical import BM25_B, BM25_K1, tokenize
from rag.index.manifest import FORMAT_VERSION, IndexSpec, Manifest
from rag.index.segment import Embedded, Known, embed_documents
from rag.index.writer import Changes, Progress
from rag.ingest.documents import Document
from rag.models.embeddings import Encoder

SCHEMA_VERSION = 1
WRITE_LOCK = 0x72616701  # advisory lock: one writer at a time, across replicas
PURGE_AFTER = "5 minutes"
ANALYZE_MIN = 500  # new sentences below which statistics are left to autovacuum
HNSW_EF_SEARCH = 400  # candidates the graph search keeps: recall for 200-sentence searches
CHANNEL = "rag_index"  # NOTIFY on every commit: replicas swap the new version in at once
VISIBLE = "d.added <= %(v)s AND (d.removed IS NULL OR d.removed > %(v)s)"

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE schema_version (version int NOT NULL);
CREATE TABLE index_state (
    id int PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL,
    manifest jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE documents (
    id bigint PRIMARY KEY,
    doc_id text NOT NULL,
    title text NOT NULL,
    text text NOT NULL,
    source text,
    metadata jsonb NOT NULL,
    title_key bytea NOT NULL,
    title_vector vector({dim}) NOT NULL,
    added bigint NOT NULL,
    removed bigint,
    removed_at timestamptz
);
CREATE UNIQUE INDEX documents_live ON documents (doc_id) WHERE removed IS NULL;
CREATE INDEX documents_title_key ON documents (title_key);
CREATE TABLE chunks (
    id bigint PRIMARY KEY,
    document bigint NOT NULL REFERENCES documents ON DELETE CASCADE,
    ordinal int NOT NULL,
    start_at int NOT NULL,
    end_at int NOT NULL,
    length int NOT NULL,
    sent_lo bigint NOT NULL,
    sent_hi bigint NOT NULL
);
CREATE INDEX chunks_document ON chunks (document);
CREATE TABLE chunk_terms (
    term text NOT NULL,
    chunk bigint NOT NULL REFERENCES chunks ON DELETE CASCADE,
    tf int NOT NULL,
    PRIMARY KEY (term, chunk)
);
CREATE INDEX chunk_terms_chunk ON chunk_terms (chunk);
CREATE TABLE term_stats (term text PRIMARY KEY, df bigint NOT NULL);
CREATE TABLE corpus_stats (
    id int PRIMARY KEY CHECK (id = 1), chunks bigint NOT NULL, tokens bigint NOT NULL
);
INSERT INTO corpus_stats VALUES (1, 0, 0);
CREATE TABLE sentences (
    id bigint PRIMARY KEY,
    chunk bigint NOT NULL REFERENCES chunks ON DELETE CASCADE,
    document bigint NOT NULL,
    start_at int NOT NULL,
    end_at int NOT NULL,
    key bytea NOT NULL,
    vector vector({dim}) NOT NULL
);
CREATE INDEX sentences_chunk ON sentences (chunk);
CREATE INDEX sentences_key ON sentences (key);
CREATE INDEX sentences_vector ON sentences USING hnsw (vector vector_ip_ops);
CREATE SEQUENCE row_ids;
"""
TABLES = "sentences, chunk_terms, term_stats, corpus_stats, chunks, documents, index_state"


def pool_for(url: str):
    import psycopg
    from pgvector.psycopg import register_vector
    from psycopg_pool import ConnectionPool

    def configure(conn) -> None:
        conn.autocommit = True
        if not conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone():
            try:  # needs the right to; otherwise an administrator runs it once
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except psycopg.errors.InsufficientPrivilege:
                raise SetupError(
                    "pgvector is not enabled in this database and this user may not enable "
                    "it: run `CREATE EXTENSION vector;` as an administrator"
                ) from None
        register_vector(conn)
        conn.execute(f"SET hnsw.ef_search = {HNSW_EF_SEARCH}")
        conn.execute("SET hnsw.iterative_scan = relaxed_order")

    return ConnectionPool(url, min_size=1, max_size=8, configure=configure, open=True)


class PostgresBackend:
    def __init__(
        self, url: str, spec: IndexSpec, encoder: Encoder, read_url: str | None = None
    ) -> None:
        """Writes go to `url`; reads to `read_url` (a standby) when given."""
        self.url, self.spec, self.encoder = url, spec, encoder
        try:
            self.pool = pool_for(url)
            self.read_pool = pool_for(read_url) if read_url else self.pool
            for pool in {self.pool, self.read_pool}:
                pool.wait(timeout=10)
        except Exception as error:
            raise Unavailable(f"cannot reach the database ({type(error).__name__})") from None
        with self.connection(write=True) as conn:
            (self.read_only,) = conn.execute("SELECT pg_is_in_recovery()").fetchone()

    @contextmanager
    def connection(self, write: bool = False) -> Iterator:
        """A pooled connection; a database that went away is a 503 the client may retry."""
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            with (self.pool if write else self.read_pool).connection(timeout=10) as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as error:
            raise Unavailable(f"the database is unreachable ({type(error).__name__})") from None

    def head(self) -> str | None:
        with self.connection() as conn:
            if not has_schema(conn):
                return None
            row = conn.execute("SELECT version FROM index_state").fetchone()
        return None if row is None else str(row[0])

    def load(self, previous: PostgresView | None = None) -> PostgresView | None:
        head = self.head()
        if head is None:
            return None
        if previous is not None and previous.snapshot == head:
            return previous
        return PostgresView(self, int(head))

    def writer(
        self, progress: Progress = None, force: bool = False, previous: object = None
    ) -> PostgresWriter:
        return PostgresWriter(self, progress, force)

    def verify(self) -> list[str]:
        """BM25 statistics against the rows they count (they must match exactly)."""
        with self.connection() as conn:
            if not has_schema(conn):
                return ["no index in the database"]
            problems = []
            drift = conn.execute(
                """SELECT count(*) FROM term_stats t FULL JOIN (
                       SELECT ct.term, count(*) AS df FROM chunk_terms ct
                       JOIN chunks c ON c.id = ct.chunk JOIN documents d ON d.id = c.document
                       WHERE d.removed IS NULL GROUP BY ct.term) live USING (term)
                   WHERE coalesce(t.df, 0) <> coalesce(live.df, 0)"""
            ).fetchone()[0]
            if drift:
                problems.append(f"{drift} terms with a wrong document frequency")
            counted = conn.execute("SELECT chunks, tokens FROM corpus_stats").fetchone()
            actual = conn.execute(
                """SELECT count(*), coalesce(sum(c.length), 0) FROM chunks c
                   JOIN documents d ON d.id = c.document WHERE d.removed IS NULL"""
            ).fetchone()
            if tuple(counted) != tuple(actual):
                problems.append(f"corpus statistics {tuple(counted)} != {tuple(actual)}")
            return problems

    def on_change(self, callback: Callable[[], None]) -> None:
        """LISTEN for the NOTIFY every commit sends, on a connection of its own (a thread
        that reconnects while the database is away)."""

        def listen() -> None:
            import psycopg

            while True:
                try:
                    with psycopg.connect(self.url, autocommit=True) as conn:
                        conn.execute(f"LISTEN {CHANNEL}")
                        callback()  # whatever was missed while (re)connecting
                        for _ in conn.notifies():
                            callback()
                except psycopg.Error:
                    time.sleep(1)

        threading.Thread(target=listen, name="rag-listen", daemon=True).start()


def has_schema(conn) -> bool:
    if conn.execute("SELECT to_regclass('schema_version')").fetchone()[0] is None:
        return False
    (version,) = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    if version is not None and version > SCHEMA_VERSION:
        raise SetupError(
            f"the database holds schema version {version}, newer than this service's "
            f"{SCHEMA_VERSION}: upgrade the service"
        )
    return True


class PostgresView:
    """One version of the index in the database (the CorpusView of this backend)."""

    def __init__(self, backend: PostgresBackend, version: int) -> None:
        self.backend, self.version, self.snapshot = backend, version, str(version)
        with backend.connection() as conn:
            (record,) = conn.execute("SELECT manifest FROM index_state").fetchone()
            counts = conn.execute(
                f"""SELECT (SELECT count(*) FROM documents d WHERE {VISIBLE}),
                           (SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.document
                            WHERE {VISIBLE}),
                           (SELECT count(*) FROM sentences s JOIN documents d
                            ON d.id = s.document WHERE {VISIBLE})""",
                {"v": version},
            ).fetchone()
        self.manifest = Manifest.from_json(record)
        self.manifest.documents, self.manifest.chunks, self.manifest.sentences = map(int, counts)

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

    def sentence_similarity(self, sentences: np.ndarray, vector: np.ndarray) -> np.ndarray:
        found = dict(
            self.rows(
                "SELECT id, -(vector <#> %(q)s) FROM sentences WHERE id = ANY(%(ids)s)",
                q=vector,
                ids=[int(s) for s in sentences],
            )
        )
        return np.array([found[int(s)] for s in sentences], dtype=np.float32)

    def best_sentence_similarity(self, chunks: np.ndarray, vector: np.ndarray) -> np.ndarray:
        found = dict(
            self.rows(
                """SELECT c.id, best.similarity FROM chunks c CROSS JOIN LATERAL (
                       SELECT max(-(s.vector <#> %(q)s)) AS similarity FROM sentences s
                       WHERE s.id >= c.sent_lo AND s.id < c.sent_hi) best
                   WHERE c.id = ANY(%(ids)s)""",
                q=vector,
                ids=[int(c) for c in chunks],
            )
        )
        return np.array([found[int(c)] for c in chunks], dtype=np.float32)

    def title_similarity(self, chunks: np.ndarray, vector: np.ndarray) -> np.ndarray:
        found = dict(
            self.rows(
                """SELECT c.id, -(d.title_vector <#> %(q)s) FROM chunks c
                   JOIN documents d ON d.id = c.document WHERE c.id = ANY(%(ids)s)""",
                q=vector,
                ids=[int(c) for c in chunks],
            )
        )
        return np.array([found[int(c)] for c in chunks], dtype=np.float32)

    def dense_chunks(self, query_vector: np.ndarray, sentences: int) -> np.ndarray:
        rows = self.rows(
            f"""SELECT s.chunk FROM sentences s JOIN documents d ON d.id = s.document
                WHERE {VISIBLE} ORDER BY s.vector <#> %(q)s LIMIT %(n)s""",
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
def document_by_row(backend: PostgresBackend, row: int) -> Document:
    with backend.connection() as conn:
        doc_id, text, title, source, metadata = conn.execute(
            "SELECT doc_id, text, title, source, metadata FROM documents WHERE id = %s", [row]
        ).fetchone()
    return Document(doc_id, title, text, metadata, source)


@lru_cache(maxsize=65536)
def chunk_by_id(backend: PostgresBackend, chunk: int) -> tuple[int, int, int, int, int, int]:
    with backend.connection() as conn:
        return tuple(
            conn.execute(
                "SELECT document, ordinal, start_at, end_at, sent_lo, sent_hi FROM chunks "
                "WHERE id = %s",
                [chunk],
            ).fetchone()
        )


@lru_cache(maxsize=65536)
def sentence_by_id(backend: PostgresBackend, sentence: int) -> tuple[int, int, int]:
    with backend.connection() as conn:
        return tuple(
            conn.execute(
                "SELECT chunk, start_at, end_at FROM sentences WHERE id = %s", [sentence]
            ).fetchone()
        )


class PostgresWriter(Changes):
    """One write transaction in the database, under the advisory lock."""

    def __init__(self, backend: PostgresBackend, progress: Progress, force: bool) -> None:
        super().__init__(backend.spec, force)
        self.backend, self.progress = backend, progress
        self.embedded: list[Embedded] = []
        self.result: PostgresView | None = None

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
        if self.force or not self.schema:
            return []
        rows = self.conn.execute(
            "SELECT doc_id, text, title, source, metadata FROM documents "
            "WHERE removed IS NULL ORDER BY id"
        ).fetchall()
        return [Document(r[0], r[2], r[1], r[4], r[3]) for r in rows]

    def commit(self) -> bool:
        """Apply the changes in this transaction; False when there was nothing to write."""
        if self.unchanged():
            return False
        rebuild = self.replacement is not None or bool(self.stale_reasons) or not self.schema
        if rebuild:
            documents = self.rebuilt_documents()
            gone = {d.doc_id for d in self.stored_documents()}
        else:
            documents = list(self.added.values())
            gone = self.removed | set(self.added)
        dimension = self.backend.encoder.dimension
        if not self.schema or (self.manifest and self.manifest.dimension != dimension):
            self.create_schema(dimension)
        version = self.version + 1
        self.remove(gone, version)
        self.insert(documents, version)
        (live,) = self.conn.execute(
            "SELECT count(*) FROM documents WHERE removed IS NULL"
        ).fetchone()
        if not live:
            raise WriteError("the index needs at least one document")
        manifest = Manifest(
            FORMAT_VERSION, self.spec, dimension, "HNSW (pgvector)", 0, 0, 0,
            self.sources_fingerprint, time.time(),
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

    def create_schema(self, dimension: int) -> None:
        if self.progress:
            self.progress(f"creating the index schema in the database ({dimension}-d vectors)")
        self.conn.execute(f"DROP TABLE IF EXISTS schema_version, {TABLES} CASCADE")
        self.conn.execute("DROP SEQUENCE IF EXISTS row_ids")
        self.conn.execute(SCHEMA.format(dim=dimension))
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
        self.conn.execute(
            """UPDATE term_stats t SET df = t.df - gone.n FROM (
                   SELECT ct.term, count(*) AS n FROM chunk_terms ct
                   JOIN chunks c ON c.id = ct.chunk WHERE c.document = ANY(%s) GROUP BY ct.term
               ) gone WHERE t.term = gone.term""",
            [rows],
        )
        self.conn.execute(
            """UPDATE corpus_stats SET chunks = chunks - gone.n, tokens = tokens - gone.total
               FROM (SELECT count(*) AS n, coalesce(sum(length), 0) AS total FROM chunks
                     WHERE document = ANY(%s)) gone""",
            [rows],
        )
        self.conn.execute("DELETE FROM term_stats WHERE df <= 0")

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
                       SELECT key, vector FROM sentences WHERE key = ANY(%(k)s)
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
