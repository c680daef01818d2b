"""Test set-up: real databases, real Redis, settings fixed before any backend module is imported.

``GRIDAID_TEST_DB`` chooses the engine: ``postgres`` (a fresh database on 127.0.0.1:5432, dropped
afterwards) or ``sqlite`` (a file in a temporary directory). ``GRIDAID_TEST_REDIS`` is a Redis URL;
without one, the suite starts its own redis-server child, exactly like the embedded default.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

_VAR_DIR = Path(tempfile.mkdtemp(prefix="gridaid-test-"))
_ENGINE = os.environ.get("GRIDAID_TEST_DB", "sqlite")
_PG_ADMIN_DSN = os.environ.get("GRIDAID_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
_PG_DBNAME = f"gridaid_test_{uuid.uuid4().hex[:10]}"


def _pg_admin(sql: str) -> None:
    import asyncpg

    async def run() -> None:
        connection = await asyncpg.connect(_PG_ADMIN_DSN)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run())


def _b64(raw: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


os.environ["GRIDAID_VAR_DIR"] = str(_VAR_DIR)
os.environ["GRIDAID_KEYRING"] = json.dumps(
    {"active": "k1", "keys": {"k1": _b64(secrets.token_bytes(32))}, "index_key": _b64(secrets.token_bytes(32))}
)
# Every test client speaks from its own address (X-Forwarded-For), so per-client limits stay per test.
os.environ["TRUST_FORWARDED_FOR"] = "1"
os.environ["GRIDAID_QUEUE"] = f"arq:test:{uuid.uuid4().hex[:8]}"
os.environ.pop("DATABASE_URL", None)
if _ENGINE == "postgres":
    _pg_admin(f'CREATE DATABASE "{_PG_DBNAME}"')
    os.environ["DATABASE_URL"] = _PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{_PG_DBNAME}"

_EMBEDDED_REDIS = None
if os.environ.get("GRIDAID_TEST_REDIS"):
    os.environ["REDIS_URL"] = os.environ["GRIDAID_TEST_REDIS"]
else:
    os.environ.pop("REDIS_URL", None)
    from backend.lib.redis import EmbeddedRedis

    _EMBEDDED_REDIS = EmbeddedRedis(_VAR_DIR / "redis.sock").start()
    os.environ["REDIS_URL"] = _EMBEDDED_REDIS.url


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"gridaid: database={_ENGINE} redis={os.environ['REDIS_URL']}"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _EMBEDDED_REDIS is not None:
        _EMBEDDED_REDIS.stop()
    if _ENGINE == "postgres":
        try:
            _pg_admin(f'DROP DATABASE IF EXISTS "{_PG_DBNAME}" WITH (FORCE)')
        except Exception as exc:
            print(f"could not drop {_PG_DBNAME}: {exc}")
    shutil.rmtree(_VAR_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def var_dir() -> Path:
    return _VAR_DIR


@pytest.fixture(scope="session")
def engine_name() -> str:
    return _ENGINE


@pytest.fixture(scope="session")
async def migrated(anyio_backend: str) -> None:
    from backend.setup import prepare_database

    await prepare_database()
