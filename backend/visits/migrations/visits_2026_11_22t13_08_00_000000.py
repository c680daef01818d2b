from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T13:08:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "a task's visits are read by task"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="visits", description=DESCRIPTION)

    async def run():
        await engine_finder().run_ddl("CREATE INDEX visit_by_task ON visit (task)")

    manager.add_raw(run)
    return manager
