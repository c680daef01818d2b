from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T10:06:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "one grid code per layer; at most one open assignment per grid"

# Partial unique indexes read the same on PostgreSQL and SQLite.
STATEMENTS = [
    "CREATE UNIQUE INDEX grid_layer_code_unique ON grid (layer, code)",
    "CREATE UNIQUE INDEX grid_assignment_one_open ON grid_assignment (grid_code) WHERE ended_at IS NULL",
    "CREATE UNIQUE INDEX grid_version_one_current ON grid_version (is_current) WHERE is_current",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="grids", description=DESCRIPTION)

    async def run():
        db = engine_finder()
        for statement in STATEMENTS:
            await db.run_ddl(statement)

    manager.add_raw(run)
    return manager
