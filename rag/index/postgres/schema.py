"""The tables, their version, and the connection pools."""

from __future__ import annotations

import psycopg

from rag.errors import SetupError

SCHEMA_VERSION = 2
WRITE_LOCK = 0x72616701  # advisory lock: one writer at a time, across replicas
PURGE_AFTER = "5 minutes"
ANALYZE_MIN = 500  # new sentences below which statistics are left to autovacuum
HNSW_EF_SEARCH = 400  # candidates the graph search keeps: recall for 200-sentence searches
# The graph's build: at 1M vectors, recall@10 0.982 at ef_search 400 against 0.925 with
# pgvector's default ef_construction of 64, for 2.3x the build time (bench.pgvector_scale).
HNSW_BUILD = "m = 16, ef_construction = 200"
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
CREATE INDEX documents_removed ON documents (removed_at) WHERE removed IS NOT NULL;
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
    vector halfvec({dim}) NOT NULL
);
CREATE INDEX sentences_chunk ON sentences (chunk);
CREATE INDEX sentences_key ON sentences (key);
CREATE INDEX sentences_vector ON sentences USING hnsw (vector halfvec_ip_ops)
    WITH ({hnsw_build});
CREATE SEQUENCE row_ids;
"""
# What each version changed, applied in order to an older database (under the write lock).
MIGRATIONS = {
    # sentence vectors in half precision: half the bytes, the same recall (bench.pgvector_scale);
    # the purge of removed documents looks them up instead of scanning every document
    2: """
CREATE INDEX documents_removed ON documents (removed_at) WHERE removed IS NOT NULL;
DROP INDEX sentences_vector;
ALTER TABLE sentences ALTER COLUMN vector TYPE halfvec({dim}) USING vector::halfvec({dim});
CREATE INDEX sentences_vector ON sentences USING hnsw (vector halfvec_ip_ops)
    WITH ({hnsw_build});
""",
}
# Live documents and sentences, counted from the rows (writes carry them forward instead).
LIVE_COUNTS = """SELECT (SELECT count(*) FROM documents WHERE removed IS NULL),
    (SELECT count(*) FROM sentences s JOIN documents d ON d.id = s.document
     WHERE d.removed IS NULL)"""
TABLES = "sentences, chunk_terms, term_stats, corpus_stats, chunks, documents, index_state"


def pool_for(url: str):
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


def schema_version(conn) -> int | None:
    """The database's schema version (None: no index yet); a newer one than this service's
    is refused."""
    if conn.execute("SELECT to_regclass('schema_version')").fetchone()[0] is None:
        return None
    (version,) = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    if version is not None and version > SCHEMA_VERSION:
        raise SetupError(
            f"the database holds schema version {version}, newer than this service's "
            f"{SCHEMA_VERSION}: upgrade the service"
        )
    return version


def has_schema(conn) -> bool:
    return schema_version(conn) is not None


def upgrade(conn, read_only: bool) -> list[int]:
    """Bring an older schema to this service's version, in one transaction under the write
    lock (replicas starting together upgrade once); the versions applied."""
    version = schema_version(conn)
    if version is None or version == SCHEMA_VERSION:
        return []
    if read_only:
        raise SetupError(
            f"the database holds schema version {version}, older than this service's "
            f"{SCHEMA_VERSION}: start a replica on the primary once, to upgrade it"
        )
    applied = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [WRITE_LOCK])
        version = schema_version(conn)  # another replica may have upgraded meanwhile
        (dimension,) = conn.execute(  # pgvector keeps a column's dimension as its typmod
            "SELECT atttypmod FROM pg_attribute "
            "WHERE attrelid = 'sentences'::regclass AND attname = 'vector'"
        ).fetchone()
        for target in range(version + 1, SCHEMA_VERSION + 1):
            conn.execute(MIGRATIONS[target].format(dim=dimension, hnsw_build=HNSW_BUILD))
            conn.execute("INSERT INTO schema_version VALUES (%s)", [target])
            applied.append(target)
    return applied
