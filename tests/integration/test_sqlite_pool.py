"""The embedded SQLite engine's connections: all with our settings; pooled ones reused, never
handed on dirty, closed with the pool.

Each test opens its own engine on a file of its own, so these run whichever engine the suite uses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from backend.lib.db import EmbeddedSQLiteEngine

pytestmark = pytest.mark.anyio


@pytest.fixture
async def pool(tmp_path: Path) -> AsyncIterator[EmbeddedSQLiteEngine]:
    db = EmbeddedSQLiteEngine(path=str(tmp_path / "pool.sqlite3"), timeout=5)
    db.start_pool()
    connection = await db.get_connection()
    await connection.execute("CREATE TABLE note (body TEXT)")
    await connection.commit()
    await connection.close()
    try:
        yield db
    finally:
        await db.stop_pool()


async def _count(db: EmbeddedSQLiteEngine) -> int:
    rows = await db._run_in_new_connection("SELECT count(*) AS n FROM note")
    return int(rows[0]["n"])


async def test_a_transaction_reuses_the_connection_the_last_one_gave_back(pool: EmbeddedSQLiteEngine) -> None:
    async with pool.transaction() as first:
        await first.connection.execute("INSERT INTO note VALUES ('one')")
        used = first.connection._connection
    async with pool.transaction() as second:
        assert second.connection._connection is used
    assert await _count(pool) == 1


async def test_a_connection_given_back_inside_a_transaction_is_not_lent_again(pool: EmbeddedSQLiteEngine) -> None:
    careless = await pool.get_connection()
    await careless.execute("BEGIN IMMEDIATE")
    await careless.execute("INSERT INTO note VALUES ('half done')")
    await careless.close()  # neither committed nor rolled back

    async with pool.transaction() as next_one:
        assert next_one.connection._connection is not careless._connection
        await next_one.connection.execute("INSERT INTO note VALUES ('whole')")
    # The half-done write died with its connection; the next borrower's commit kept only its own.
    assert await _count(pool) == 1


async def test_what_a_borrower_changed_on_the_connection_does_not_reach_the_next(
    pool: EmbeddedSQLiteEngine,
) -> None:
    borrowed = await pool.get_connection()
    borrowed.row_factory = None  # plain tuples, as the bulk readers like them
    await borrowed.close()
    # Piccolo reads rows as dicts: the next statement on that connection must still give dicts.
    assert await pool._run_in_new_connection("SELECT 'x' AS body") == [{"body": "x"}]


async def test_a_bulk_writes_large_page_cache_is_not_kept_by_the_idle_connection(
    pool: EmbeddedSQLiteEngine,
) -> None:
    async with pool.transaction() as bulk:
        await pool.widen_cache(bulk.connection, 64 * 1024)
        async with bulk.connection.execute("PRAGMA cache_size") as cursor:
            assert (await cursor.fetchone())["cache_size"] == -64 * 1024
        used = bulk.connection._connection
    async with pool.transaction() as after:
        assert after.connection._connection is used
        async with after.connection.execute("PRAGMA cache_size") as cursor:
            assert (await cursor.fetchone())["cache_size"] == EmbeddedSQLiteEngine.DEFAULT_CACHE_SIZE


def _stopped(connection: Any) -> bool:
    # aiosqlite runs a (non-daemon) thread per connection: one left open keeps the process from exiting.
    connection._thread.join(timeout=10)
    return not connection._thread.is_alive()


async def test_closing_the_pool_closes_every_idle_connection(tmp_path: Path) -> None:
    db = EmbeddedSQLiteEngine(path=str(tmp_path / "closing.sqlite3"), timeout=5)
    db.start_pool()
    lent = [await db.get_connection() for _ in range(3)]
    for connection in lent:
        await connection.close()
    await lent[0].close()  # a second close() must not pool the same connection twice
    assert len(db._idle or []) == 3
    assert all(connection._connection._thread.is_alive() for connection in lent)  # idle, not closed
    await db.stop_pool()
    assert all(_stopped(connection._connection) for connection in lent)
    # Without a pool, a closed connection is really closed.
    unpooled = await db.get_connection()
    await unpooled.close()
    assert _stopped(unpooled)


async def test_a_worker_stopping_in_the_apps_process_leaves_the_apps_pool_open(http: object) -> None:
    from piccolo.engine.postgres import PostgresEngine

    from backend.lib.db import close_pool, engine, open_pool

    def pool_is_open() -> bool:
        db = engine()
        return db.pool is not None if isinstance(db, PostgresEngine) else db._idle is not None  # type: ignore[attr-defined]

    assert pool_is_open()  # the app's lifespan opened it
    await open_pool()  # as the arq worker's start-up does
    await close_pool()  # and its shut-down
    assert pool_is_open()


async def test_a_statement_outside_a_transaction_gets_the_engines_settings(tmp_path: Path) -> None:
    db = EmbeddedSQLiteEngine(path=str(tmp_path / "settings.sqlite3"), timeout=5)
    # synchronous=NORMAL (1) is what lets WAL commits skip an fsync; SQLite's default is FULL (2).
    assert await db._run_in_new_connection("PRAGMA synchronous") == [{"synchronous": 1}]
    db.start_pool()
    try:
        assert await db._run_in_new_connection("PRAGMA synchronous") == [{"synchronous": 1}]
    finally:
        await db.stop_pool()
