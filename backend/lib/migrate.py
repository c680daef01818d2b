"""Apply Piccolo migrations for every slice (the same files on SQLite and PostgreSQL)."""

from __future__ import annotations

import contextlib
import io

from piccolo.apps.migrations.commands.forwards import run_forwards


class MigrationFailed(RuntimeError):
    pass


async def migrate() -> None:
    # Piccolo narrates every app to stdout; keep it for when something goes wrong.
    narration = io.StringIO()
    with contextlib.redirect_stdout(narration):
        result = await run_forwards(app_name="all", migration_id="all", fake=False)
    if not result.success:
        raise MigrationFailed(f"{result.message}\n{narration.getvalue()}")
