"""The backend: pools for writes and reads, the version in force, LISTEN for new ones."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from rag.errors import Unavailable
from rag.index.manifest import IndexSpec
from rag.index.postgres.schema import CHANNEL, LIVE_COUNTS, has_schema, pool_for, upgrade
from rag.index.postgres.view import PostgresView
from rag.index.postgres.writer import PostgresWriter
from rag.index.writer import Progress
from rag.models.embeddings import Encoder

log = logging.getLogger(__name__)


def cause(error: Exception, *urls: str | None) -> str:
    """What went wrong, as the database said it (first line), with no password in it."""
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else type(error).__name__
    for url in urls:
        if url and (password := urlsplit(url).password):
            text = text.replace(password, "***")
    return text


class PostgresBackend:
    def __init__(
        self, url: str, spec: IndexSpec, encoder: Encoder, read_url: str | None = None
    ) -> None:
        """Writes go to `url`; reads to `read_url` (a standby) when given."""
        import psycopg

        self.url, self.spec, self.encoder = url, spec, encoder
        try:
            for target in dict.fromkeys(u for u in (url, read_url) if u):
                # one plain connection first: a pool that cannot connect says only "timeout"
                psycopg.connect(target, connect_timeout=10).close()
            self.pool = pool_for(url)
            self.read_pool = pool_for(read_url) if read_url else self.pool
            for pool in {self.pool, self.read_pool}:
                pool.wait(timeout=10)
        except Exception as error:
            why = cause(error, url, read_url)
            log.warning("cannot reach the database: %s", why)
            raise Unavailable(f"cannot reach the database: {why}") from None
        with self.connection(write=True) as conn:
            (self.read_only,) = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            if applied := upgrade(conn, self.read_only):
                log.warning("upgraded the database's schema to version %s", applied[-1])

    @contextmanager
    def connection(self, write: bool = False) -> Iterator:
        """A pooled connection; a database that went away is a 503 the client may retry."""
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            with (self.pool if write else self.read_pool).connection(timeout=10) as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as error:
            why = cause(error, self.url)
            log.warning("the database is unreachable: %s", why)
            raise Unavailable(f"the database is unreachable: {why}") from None

    def close(self) -> None:
        for pool in {self.pool, self.read_pool}:
            pool.close()

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
        """BM25 statistics and the version's live counts against the rows they count (they
        must match exactly: writes keep them up to date instead of counting)."""
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
            recorded = conn.execute(
                "SELECT (manifest->>'documents')::bigint, (manifest->>'sentences')::bigint "
                "FROM index_state"
            ).fetchone()
            live = conn.execute(LIVE_COUNTS).fetchone()
            if recorded is not None and tuple(recorded) != tuple(live):
                problems.append(
                    f"the version's (documents, sentences) {tuple(recorded)} != {tuple(live)}"
                )
            return problems

    def on_change(self, callback: Callable[[], None]) -> None:
        """LISTEN for the NOTIFY every commit sends, on a connection of its own (a thread
        that reconnects while the database is away). A standby cannot LISTEN: there the
        service's poll of `head()` finds new versions."""
        if self.read_only:
            return

        def listen() -> None:
            import psycopg

            wait, last = 1.0, None
            while True:
                try:
                    with psycopg.connect(self.url, autocommit=True) as conn:
                        conn.execute(f"LISTEN {CHANNEL}")
                        wait, last = 1.0, None
                        callback()  # whatever was missed while (re)connecting
                        for _ in conn.notifies():
                            callback()
                except psycopg.Error as error:
                    if (why := cause(error, self.url)) != last:  # once per cause, not per try
                        log.warning("listening for new versions failed (%s); retrying", why)
                        last = why
                    time.sleep(wait)
                    wait = min(wait * 2, 30.0)

        threading.Thread(target=listen, name="rag-listen", daemon=True).start()
