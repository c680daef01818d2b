"""The one place that knows which database we run on and how to open a safe write transaction."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiosqlite
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType

from backend.settings import get_settings

T = TypeVar("T")
MMAP_BYTES = 1 << 30  # address space, not memory: the kernel's page cache backs it


class EmbeddedSQLiteEngine(SQLiteEngine):
    """SQLite tuned for several processes (API + worker) writing to one file.

    WAL lets readers proceed during a write; ``synchronous=NORMAL`` is safe under WAL; the
    busy timeout (``timeout`` in sqlite3) makes writers queue instead of failing at once.
    """

    async def get_connection(self) -> aiosqlite.Connection:
        connection = await super().get_connection()
        await connection.execute("PRAGMA journal_mode = WAL")
        await connection.execute("PRAGMA synchronous = NORMAL")
        # Piccolo opens a connection per transaction, each with an empty page cache: mapped, the
        # file's pages are read in place instead of copied in one read() call each.
        await connection.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        return connection


def create_engine() -> Engine[Any]:
    settings = get_settings()
    if settings.db.is_postgres:
        return PostgresEngine(config={"dsn": settings.db.url})
    settings.paths.var_dir.mkdir(parents=True, exist_ok=True)
    return EmbeddedSQLiteEngine(
        path=str(settings.paths.sqlite_file),
        timeout=settings.db.sqlite_timeout_s,
    )


def engine() -> Engine[Any]:
    from backend.piccolo_conf import DB

    return DB


def is_sqlite() -> bool:
    return engine().engine_type == "sqlite"


def write_transaction() -> Any:
    """A transaction for writes: IMMEDIATE on SQLite so two writers never deadlock on upgrade."""
    db = engine()
    if isinstance(db, SQLiteEngine):
        return db.transaction(transaction_type=TransactionType.immediate)
    return db.transaction()


async def _keep_session(connection: Any) -> None:
    """What a released connection needs before reuse: only an unfinished transaction rolled back.

    asyncpg's default reset runs ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``
    on every release, a round trip per query. GridAid takes only transaction-level advisory locks
    (``pg_advisory_xact_lock``), never LISTENs, declares no cursors and sets no session settings,
    so there is nothing of that to undo.
    """
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


async def open_pool() -> None:
    db = engine()
    if isinstance(db, PostgresEngine):
        settings = get_settings().db
        await db.start_connection_pool(min_size=settings.pool_min, max_size=settings.pool_max, reset=_keep_session)


async def close_pool() -> None:
    db = engine()
    if isinstance(db, PostgresEngine):
        await db.close_connection_pool()


async def pooled(work: Awaitable[T]) -> T:
    """``work`` with the pool open, as a command-line run of many transactions wants (without
    one, each PostgreSQL transaction connects anew: a new server process with cold caches)."""
    await open_pool()
    try:
        return await work
    finally:
        await close_pool()


def load_json(value: Any) -> Any:
    """JSON columns come back as text on SQLite (and sometimes PostgreSQL): decode them here only."""
    import msgspec

    if isinstance(value, str | bytes):
        return msgspec.json.decode(value)
    return value


def as_utc(value: datetime) -> datetime:
    """SQLite hands timestamps back naive; they were written in UTC. PostgreSQL's are already aware."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
