from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T11:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "one record per source record id"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="warnings", description=DESCRIPTION)

    async def run():
        await engine_finder().run_ddl("CREATE UNIQUE INDEX hardship_warning_source_record ON hardship_warning (source, source_record_id)")

    manager.add_raw(run)
    return manager
