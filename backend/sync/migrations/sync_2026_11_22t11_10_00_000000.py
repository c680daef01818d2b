from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T11:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "a device reads its own changes in order"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="sync", description=DESCRIPTION)

    async def run():
        await engine_finder().run_ddl("CREATE INDEX sync_change_account_id ON sync_change (account, id)")

    manager.add_raw(run)
    return manager
