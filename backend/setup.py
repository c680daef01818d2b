"""Bringing a database up to date: the schema, then the reference data every install needs."""

from __future__ import annotations

from backend.departments.catalogue import seed_catalogue
from backend.lib.migrate import migrate
from backend.warnings.types import ensure_builtin_types


async def prepare_database() -> None:
    await migrate()
    await seed_catalogue()
    await ensure_builtin_types()
