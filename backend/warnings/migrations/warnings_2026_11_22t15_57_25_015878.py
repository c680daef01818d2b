from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import ForeignKey
from piccolo.columns.column_types import Timestamptz
from piccolo.columns.column_types import Varchar
from piccolo.engine import engine_finder

ID = "2026-11-22T15:57:25:015878"
VERSION = "1.38.0"
DESCRIPTION = "index warnings by street, date and ID-number hash only while unmatched"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="warnings", description=DESCRIPTION
    )

    manager.alter_column(
        table_class_name="Warning",
        tablename="hardship_warning",
        column_name="type_code",
        db_column_name="type_code",
        params={"index": False},
        old_params={"index": True},
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    manager.alter_column(
        table_class_name="Warning",
        tablename="hardship_warning",
        column_name="id_number_index",
        db_column_name="id_number_index",
        params={"index": False},
        old_params={"index": True},
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    manager.alter_column(
        table_class_name="Warning",
        tablename="hardship_warning",
        column_name="street",
        db_column_name="street",
        params={"index": False},
        old_params={"index": True},
        column_class=ForeignKey,
        old_column_class=ForeignKey,
        schema=None,
    )

    manager.alter_column(
        table_class_name="Warning",
        tablename="hardship_warning",
        column_name="status",
        db_column_name="status",
        params={"index": False},
        old_params={"index": True},
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    manager.alter_column(
        table_class_name="Warning",
        tablename="hardship_warning",
        column_name="received_at",
        db_column_name="received_at",
        params={"index": False},
        old_params={"index": True},
        column_class=Timestamptz,
        old_column_class=Timestamptz,
        schema=None,
    )

    async def partial_indexes():
        # SQLite and PostgreSQL both know partial indexes; only unmatched warnings are looked up
        # by street and date (the supervisors' list) or by ID-number hash (matching them later).
        await engine_finder().run_ddl(
            "CREATE INDEX hardship_warning_unmatched ON hardship_warning (street, received_at) "
            "WHERE status = 'unmatched'"
        )
        await engine_finder().run_ddl(
            "CREATE INDEX hardship_warning_unmatched_id ON hardship_warning (id_number_index) "
            "WHERE status = 'unmatched'"
        )

    manager.add_raw(partial_indexes)

    return manager
