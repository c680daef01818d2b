from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Varchar

ID = "2026-11-22T13:39:38:374647"
VERSION = "1.38.0"
DESCRIPTION = "drop the source index: the unique (source, source_record_id) index covers it"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="warnings", description=DESCRIPTION
    )

    manager.alter_column(
        table_class_name="Warning",
        tablename="hardship_warning",
        column_name="source",
        db_column_name="source",
        params={"index": False},
        old_params={"index": True},
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    return manager
