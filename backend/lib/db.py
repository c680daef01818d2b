"""The one place that knows which database we run on and how to open a safe write transaction."""

from __future__ import annotations

import weakref
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiosqlite
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType, dict_factory

from backend.settings import get_settings

T = TypeVar("T")
MMAP_BYTES = 1 << 30  # address space, not memory: the kernel's page cache backs it


class EmbeddedSQLiteEngine(SQLiteEngine):
    """SQLite tuned for several processes (API + worker) writing to one file.

    WAL lets readers proceed during a write; ``synchronous=NORMAL`` is safe under WAL; the
    busy timeout (``timeout`` in sqlite3) makes writers queue instead of failing at once.

    Piccolo opens a connection per transaction and closes it at the end. While a pool is open
    (``open_pool``), a closed connection goes back to a short list of idle ones instead: no
    connect, pragmas and schema parse per transaction, a warm page cache, and no WAL checkpoint
    each time the last connection of a burst closes. Anything in a process with a pool open must
    leave the database files to SQLite: closing any other descriptor of them drops all of this
    process's POSIX locks on them (sqlite.org/howtocorrupt.html, 2.2).
    """

    KEEP_IDLE = 4
    # Pages in the WAL before a commit checkpoints it. With connections kept open the last-close
    # checkpoint never comes, and the default (1,000) checkpoints on most commits of a bulk write.
    AUTOCHECKPOINT_PAGES = 16_384
    DEFAULT_CACHE_SIZE = -2000  # SQLite's own default: 2,000 KiB

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._idle: list[aiosqlite.Connection] | None = None  # None: no pool open
        self._widened: weakref.WeakSet[aiosqlite.Connection] = weakref.WeakSet()

    async def get_connection(self) -> Any:
        if self._idle is None:
            return await self._open_connection()
        connection = self._idle.pop() if self._idle else await self._open_connection(pooled=True)
        return _Lent(connection, self)

    async def _open_connection(self, pooled: bool = False) -> aiosqlite.Connection:
        connection = await super().get_connection()
        await connection.execute("PRAGMA journal_mode = WAL")
        await connection.execute("PRAGMA synchronous = NORMAL")
        # A new connection starts with an empty page cache: mapped, the file's pages are read in
        # place instead of copied in one read() call each.
        await connection.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        if pooled:
            await connection.execute(f"PRAGMA wal_autocheckpoint = {self.AUTOCHECKPOINT_PAGES}")
        return connection

    async def _run_in_new_connection(
        self, query: str, args: list[Any] | None = None, query_type: str = "generic", table: Any = None
    ) -> Any:
        """A statement outside a transaction, on a connection with the pragmas above (Piccolo's own
        opens a bare one), pooled while a pool is open."""
        if query_type == "insert" and self.get_version_sync() < 3.35:  # no RETURNING: Piccolo's way
            return await super()._run_in_new_connection(query, args, query_type, table)
        connection = await self.get_connection()
        try:
            async with connection.execute(query, args or []) as cursor:
                await connection.commit()
                return await cursor.fetchall()
        finally:
            await connection.close()

    def start_pool(self) -> None:
        if self._idle is None:
            self._idle = []

    async def stop_pool(self) -> None:
        idle, self._idle = self._idle or [], None
        for connection in idle:
            await connection.close()

    async def give_back(self, connection: aiosqlite.Connection) -> None:
        # A connection left inside a transaction (a failed COMMIT or ROLLBACK) is not reused: the
        # next borrower would find someone else's half-done writes.
        if self._idle is None or len(self._idle) >= self.KEEP_IDLE or connection.in_transaction:
            await connection.close()
            return
        connection.row_factory = dict_factory  # type: ignore[assignment]  # as Piccolo sets it
        if connection in self._widened:
            self._widened.discard(connection)
            await connection.execute(f"PRAGMA cache_size = {self.DEFAULT_CACHE_SIZE}")
        self._idle.append(connection)

    async def widen_cache(self, connection: Any, kib: int) -> None:
        """A page cache of ``kib`` for this transaction's bulk writes; back to the default when its
        connection is given back, so idle connections do not each hold a bulk write's pages."""
        raw = connection._connection if isinstance(connection, _Lent) else connection
        await raw.execute(f"PRAGMA cache_size = -{kib}")
        if isinstance(connection, _Lent):
            self._widened.add(raw)


class _Lent:
    """A pooled connection as Piccolo sees it: the same connection, whose ``close()`` gives it back."""

    __slots__ = ("_connection", "_engine", "_returned")

    def __init__(self, connection: aiosqlite.Connection, engine: EmbeddedSQLiteEngine) -> None:
        object.__setattr__(self, "_connection", connection)
        object.__setattr__(self, "_engine", engine)
        object.__setattr__(self, "_returned", False)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._connection, name, value)  # Piccolo sets row_factory

    async def close(self) -> None:
        if not self._returned:  # a second close() must not pool the connection twice
            object.__setattr__(self, "_returned", True)
            await self._engine.give_back(self._connection)


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


_pool_users = 0


async def open_pool() -> None:
    """Open the engine's connection pool; counted, so a worker started inside the app's process
    does not close the app's pool when it stops."""
    global _pool_users
    if not _pool_users:
        db = engine()
        if isinstance(db, PostgresEngine):
            settings = get_settings().db
            await db.start_connection_pool(min_size=settings.pool_min, max_size=settings.pool_max, reset=_keep_session)
        elif isinstance(db, EmbeddedSQLiteEngine):
            db.start_pool()
    _pool_users += 1  # counted once open: a failed start leaves nothing to close


async def close_pool() -> None:
    global _pool_users
    _pool_users = max(_pool_users - 1, 0)
    if _pool_users:
        return
    db = engine()
    if isinstance(db, PostgresEngine):
        await db.close_connection_pool()
    elif isinstance(db, EmbeddedSQLiteEngine):
        await db.stop_pool()


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
