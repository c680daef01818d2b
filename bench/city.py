"""A city for the ingestion and sync benchmarks: fresh databases and bulk-written people and tasks.

``fresh_database`` gives a throwaway database (SQLite in a temporary ``GRIDAID_VAR_DIR``, or a new
PostgreSQL database dropped afterwards) as environment variables for a child process: the backend
reads its settings at import time, so each measurement runs in a child of its own.

The seeding helpers run inside that child. They start from the demo (13,000 grids through the real
importer, its 1,033 workers) and then give every grid a worker, as Changzhou has, and write
households, members and tasks in bulk: they build the scene, the benchmarks time what happens in it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
CACHE = BENCH_DIR / ".cache"
PG_ADMIN_DSN = os.environ.get("GRIDAID_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
BATCH = 1000


def _pg_admin(sql: str) -> None:
    import asyncpg

    async def run() -> None:
        connection = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run())


@contextmanager
def fresh_database(engine: str) -> Iterator[dict[str, str]]:
    """The environment for a child process that owns a brand-new database; removed afterwards."""
    var_dir = Path(tempfile.mkdtemp(prefix=f"gridaid-bench-{engine}-"))
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "GRIDAID_KEYRING", "REDIS_URL"}}
    env["GRIDAID_VAR_DIR"] = str(var_dir)
    name = f"gridaid_bench_{uuid.uuid4().hex[:10]}"
    try:
        if engine == "postgres":
            _pg_admin(f'CREATE DATABASE "{name}"')
            env["DATABASE_URL"] = PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
        elif engine != "sqlite":
            raise ValueError(engine)
        # The demo map is drawn once and cached; the seed looks for it under var/demo.
        from backend.demo.map import cached_demo_map

        cached = cached_demo_map(CACHE)
        (var_dir / "demo").mkdir()
        shutil.copy(cached, var_dir / "demo" / cached.name)
        yield env
    finally:
        if engine == "postgres":
            _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(var_dir, ignore_errors=True)


@contextmanager
def cloned_database(engine: str, env: dict[str, str]) -> Iterator[dict[str, str]]:
    """A copy of the database ``env`` names (its scene already built, no one connected), for one
    measurement that writes into it: PostgreSQL ``CREATE DATABASE … TEMPLATE``, SQLite a copy of
    its var directory. Removed afterwards."""
    clone = dict(env)
    if engine == "postgres":
        source = env["DATABASE_URL"].rsplit("/", 1)[1]
        name = f"{source}_{uuid.uuid4().hex[:6]}"
        _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
        clone["DATABASE_URL"] = env["DATABASE_URL"].rsplit("/", 1)[0] + f"/{name}"
        try:
            yield clone
        finally:
            _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    var_dir = Path(tempfile.mkdtemp(prefix="gridaid-bench-clone-"))
    shutil.copytree(env["GRIDAID_VAR_DIR"], var_dir, dirs_exist_ok=True)
    clone["GRIDAID_VAR_DIR"] = str(var_dir)
    try:
        yield clone
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Inside the child


async def insert_rows(table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Bulk insert: COPY on PostgreSQL, Piccolo's multi-row INSERT on SQLite (both in batches)."""
    from backend.lib.db import engine

    if not rows:
        return
    db = engine()
    columns = list(rows[0])
    if db.engine_type == "postgres":
        connection = await db.get_new_connection()  # type: ignore[attr-defined]
        try:
            records = [tuple(row[c] for c in columns) for row in rows]
            await connection.copy_records_to_table(table._meta.tablename, records=records, columns=columns)
        finally:
            await connection.close()
        return
    from backend.lib.db import write_transaction

    async with write_transaction():
        for start in range(0, len(rows), BATCH):
            await table.insert(*(table(**row) for row in rows[start : start + BATCH]))


@dataclass(frozen=True)
class GridPlace:
    code: str
    community: int
    street: int
    lon: float
    lat: float


async def seed_city() -> list[GridPlace]:
    """The demo city, then a worker on every grid: ~13,000 grids, ~12,650 workers."""
    from backend.demo.seed import seed_demo
    from backend.setup import prepare_database

    await prepare_database()
    await seed_demo(households=0)
    return await staff_every_grid()


async def staff_every_grid() -> list[GridPlace]:
    from backend.accounts.passwords import hash_password
    from backend.accounts.tables import Account, Role
    from backend.grids.tables import Grid, GridAssignment

    rows = (
        await Grid.select(
            Grid.code,
            Grid.community,
            Grid.community._.parent.as_alias("street"),
            Grid.min_lon,
            Grid.min_lat,
            Grid.max_lon,
            Grid.max_lat,
        )
        .where(Grid.layer._.is_current.eq(True))
        .order_by(Grid.code)
    )
    staffed = set(
        await GridAssignment.select(GridAssignment.grid_code)
        .where(GridAssignment.ended_at.is_null())
        .output(as_list=True)
    )
    password = hash_password(uuid.uuid4().hex)
    now = datetime.now(UTC)
    accounts, assignments = [], []
    for number, row in enumerate((r for r in rows if r["code"] not in staffed), start=1):
        account_id = uuid.uuid4()
        accounts.append(_account(account_id, f"bench_worker{number}", Role.grid_worker.value, password, now))
        assignments.append(
            {"grid_code": row["code"], "worker": account_id, "started_at": now, "ended_at": None, "reason": "bench"}
        )
    await insert_rows(Account, accounts)
    await insert_rows(GridAssignment, assignments)
    return [
        GridPlace(
            row["code"],
            row["community"],
            row["street"],
            (row["min_lon"] + row["max_lon"]) / 2,
            (row["min_lat"] + row["max_lat"]) / 2,
        )
        for row in rows
    ]


def _account(account_id: uuid.UUID, username: str, role: str, password_hash: str, now: datetime) -> dict[str, Any]:
    return {
        "id": account_id,
        "username": username,
        "display_name": username,
        "phone_sealed": None,
        "phone_index": None,
        "password_hash": password_hash,
        "role": role,
        "street": None,
        "department": None,
        "is_active": True,
        "totp_secret_sealed": None,
        "totp_enabled": False,
        "totp_last_step": None,
        "created_at": now,
        "updated_at": now,
    }


def synthetic_id_number(n: int) -> str:
    """The n-th of a deterministic series of distinct, checksum-valid ID numbers."""
    from backend.lib.pii import id_check_char

    seq, rest = n % 1000, n // 1000
    day, rest = rest % 28 + 1, rest // 28
    month, rest = rest % 12 + 1, rest // 12
    body = f"320402{1940 + rest:04d}{month:02d}{day:02d}{seq:03d}"
    return body + id_check_char(body)


def household_rows(places: Sequence[GridPlace], count: int, *, prefix: str = "BH") -> list[dict[str, Any]]:
    """``count`` households, round-robin over ``places``; a few sealed phones shared between them
    (sealing is per value; the reads the benchmarks time unseal each row all the same)."""
    from backend.lib import pii

    phones = [pii.seal_phone(f"1381234{n:04d}") for n in range(16)]
    now = datetime.now(UTC)
    rows = []
    for n in range(count):
        place = places[n % len(places)]
        phone_sealed, phone_index = phones[n % len(phones)]
        rows.append(
            {
                "id": uuid.uuid4(),
                "code": f"{prefix}{n:07d}",
                "head_name": f"户主{n}",
                "address": f"测试路{n}号",
                "phone_sealed": phone_sealed,
                "phone_index": phone_index,
                "category": "dibao",
                "lon": place.lon,
                "lat": place.lat,
                "grid_code": place.code,
                "placement": "inside",
                "community": place.community,
                "street": place.street,
                "created_at": now,
                "updated_at": now,
            }
        )
    return rows


def member_rows(households: Sequence[dict[str, Any]], per_household: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Members with sealed, indexed ID numbers; returns the rows and the plain ID numbers, in order."""
    from backend.lib import pii

    rows, numbers = [], []
    for h, household in enumerate(households):
        for m in range(per_household):
            number = synthetic_id_number(h * per_household + m)
            sealed, index = pii.seal_id_number(number)
            numbers.append(number)
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "household": household["id"],
                    "name": f"成员{h}-{m}",
                    "relation": "head" if m == 0 else "spouse",
                    "id_number_sealed": sealed,
                    "id_number_index": index,
                    "birth_year": None,
                    "disability_grade": None,
                    "is_main_earner": m == 0,
                }
            )
    return rows, numbers


def task_row(household: dict[str, Any], assignee: uuid.UUID | None, now: datetime, days: int = 3) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "household": household["id"],
        "grid_code": household["grid_code"],
        "street": household["street"],
        "assignee": assignee,
        "state": "new",
        "priority": 3,
        "type_codes": '["income_drop"]',
        "warnings": 1,
        "due_at": now + timedelta(days=days),
        "escalation": 0,
        "return_reason": "",
        "covered_from": None,
        "cover": None,
        "created_at": now,
        "updated_at": now,
        "closed_at": None,
    }


async def grid_workers() -> dict[str, uuid.UUID]:
    from backend.grids.tables import GridAssignment

    rows = await GridAssignment.select(GridAssignment.grid_code, GridAssignment.worker).where(
        GridAssignment.ended_at.is_null()
    )
    return {row["grid_code"]: row["worker"] for row in rows}
