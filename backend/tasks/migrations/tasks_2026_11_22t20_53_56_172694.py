from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Integer
from piccolo.columns.column_types import Varchar
from piccolo.engine import engine_finder

ID = "2026-11-22T20:53:56:172694"
VERSION = "1.38.0"
DESCRIPTION = "index a task's cover only while set; no index on state or escalation"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="tasks", description=DESCRIPTION
    )

    manager.alter_column(
        table_class_name="VisitTask",
        tablename="visit_task",
        column_name="state",
        db_column_name="state",
        params={"index": False},
        old_params={"index": True},
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    manager.alter_column(
        table_class_name="VisitTask",
        tablename="visit_task",
        column_name="escalation",
        db_column_name="escalation",
        params={"index": False},
        old_params={"index": True},
        column_class=Integer,
        old_column_class=Integer,
        schema=None,
    )

    manager.alter_column(
        table_class_name="VisitTask",
        tablename="visit_task",
        column_name="cover",
        db_column_name="cover",
        params={"index": False},
        old_params={"index": True},
        column_class=Integer,
        old_column_class=Integer,
        schema=None,
    )

    async def partial_index():
        # SQLite and PostgreSQL both use it for "cover = N" (which implies "cover IS NOT NULL").
        await engine_finder().run_ddl("CREATE INDEX visit_task_cover_set ON visit_task (cover) WHERE cover IS NOT NULL")

    manager.add_raw(partial_index)

    return manager
