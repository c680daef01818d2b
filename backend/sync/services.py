"""Recording what each device must fetch or drop, and reading it back by cursor."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any
from uuid import UUID

from piccolo.engine.postgres import PostgresEngine

from backend.lib.db import engine
from backend.sync.tables import SyncChange


async def record_changes(changes: Iterable[tuple[UUID | str, str, str, str]]) -> None:
    """``(account_id, entity, entity_id, op)`` rows, in the caller's transaction."""
    rows = [
        SyncChange(account=account, entity=entity, entity_id=str(entity_id), op=op)
        for account, entity, entity_id, op in changes
    ]
    for start in range(0, len(rows), 500):
        await SyncChange.insert(*rows[start : start + 500])


class Reader:
    """Read queries for a hot path, all on one pooled connection on PostgreSQL.

    Each query Piccolo runs takes a connection from the pool and hands it back, and asyncpg resets
    a connection on its way back (one more round trip); a phone's snapshot is several reads, so
    here they share one connection and one reset. SQL uses Piccolo's ``{}`` placeholders; on SQLite
    (one connection anyway) it runs through Piccolo.
    """

    def __init__(self, connection: Any | None) -> None:
        self._connection = connection

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        if self._connection is None:
            return list(await SyncChange.raw(sql, *args))
        return list(await self._connection.fetch(_numbered(sql), *args))


@lru_cache(maxsize=64)
def _numbered(sql: str) -> str:
    parts = sql.split("{}")
    return "".join(part + (f"${n}" if n < len(parts) else "") for n, part in enumerate(parts, start=1))


@asynccontextmanager
async def reader() -> AsyncIterator[Reader]:
    db = engine()
    pool = getattr(db, "pool", None)
    if isinstance(db, PostgresEngine) and pool is not None and db.current_transaction.get() is None:
        async with pool.acquire() as connection:
            yield Reader(connection)
    else:
        yield Reader(None)
