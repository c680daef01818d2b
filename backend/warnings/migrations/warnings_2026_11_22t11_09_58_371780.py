from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Text
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-22T11:09:58:371780"
VERSION = "1.38.0"
DESCRIPTION = "unmatched warnings keep the sealed ID number"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="warnings", description=DESCRIPTION
    )

    manager.add_column(
        table_class_name="Warning",
        tablename="hardship_warning",
        column_name="id_number_sealed",
        db_column_name="id_number_sealed",
        column_class_name="Text",
        column_class=Text,
        params={
            "default": None,
            "null": True,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    return manager
