from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T22:25:38:351779"
VERSION = "1.38.0"
DESCRIPTION = "a warning's household is its task's: drop the column, its foreign key and index"

# SQLite cannot drop a column that a foreign key or an index uses, nor drop a foreign key: the
# table is rebuilt first with "household" as a plain column, which Piccolo's drop_column then
# removes. Nothing references hardship_warning, so the rebuild is safe with foreign keys on.
_SQLITE_REBUILD = [
    'DROP INDEX IF EXISTS hardship_warning_household',
    'CREATE TABLE "hardship_warning_rebuilt" ("id" UUID PRIMARY KEY NOT NULL DEFAULT None, '
    '"source" VARCHAR(48) NOT NULL DEFAULT \'\', "source_record_id" VARCHAR(128) NOT NULL DEFAULT \'\', '
    '"type_code" VARCHAR(48) NOT NULL DEFAULT \'\', "household" UUID DEFAULT null, '
    '"id_number_index" VARCHAR(64) DEFAULT null, "lon" DOUBLE PRECISION DEFAULT null, '
    '"lat" DOUBLE PRECISION DEFAULT null, '
    '"street" INTEGER REFERENCES "org_unit" ("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, '
    '"status" VARCHAR(16) NOT NULL DEFAULT \'\', '
    '"task" UUID REFERENCES "visit_task" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, '
    '"occurred_on" VARCHAR(10) NOT NULL DEFAULT \'\', "facts" JSON NOT NULL DEFAULT \'{}\', '
    '"received_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "id_number_sealed" TEXT DEFAULT null)',
    'INSERT INTO "hardship_warning_rebuilt" (id, source, source_record_id, type_code, household, '
    "id_number_index, lon, lat, street, status, task, occurred_on, facts, received_at, id_number_sealed) "
    "SELECT id, source, source_record_id, type_code, household, id_number_index, lon, lat, street, status, "
    "task, occurred_on, facts, received_at, id_number_sealed FROM hardship_warning",
    "DROP TABLE hardship_warning",
    'ALTER TABLE "hardship_warning_rebuilt" RENAME TO "hardship_warning"',
    'CREATE INDEX hardship_warning_task ON "hardship_warning" ("task")',
    "CREATE UNIQUE INDEX hardship_warning_source_record ON hardship_warning (source, source_record_id)",
    "CREATE INDEX hardship_warning_unmatched ON hardship_warning (street, received_at) WHERE status = 'unmatched'",
    "CREATE INDEX hardship_warning_unmatched_id ON hardship_warning (id_number_index) WHERE status = 'unmatched'",
]


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="warnings", description=DESCRIPTION
    )

    async def plain_household_on_sqlite():
        # Raw steps run before the column operations below.
        engine = engine_finder()
        if engine.engine_type == "sqlite":
            for statement in _SQLITE_REBUILD:
                await engine.run_ddl(statement)

    manager.add_raw(plain_household_on_sqlite)

    # On PostgreSQL this drops the column's foreign key and index with it.
    manager.drop_column(
        table_class_name="Warning",
        tablename="hardship_warning",
        column_name="household",
        db_column_name="household",
        schema=None,
    )

    return manager
