from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T11:37:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "every outbox row has a key, and keys are unique"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="outbox", description=DESCRIPTION)

    async def run():
        db = engine_finder()
        random_uuid = "gen_random_uuid()" if db.engine_type == "postgres" else "lower(hex(randomblob(16)))"
        await db.run_ddl(f"UPDATE outbox_message SET key = {random_uuid} WHERE key IS NULL")
        await db.run_ddl("CREATE UNIQUE INDEX outbox_message_key_unique ON outbox_message (key)")

    manager.add_raw(run)
    return manager
