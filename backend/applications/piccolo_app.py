from pathlib import Path

from piccolo.conf.apps import AppConfig, table_finder

APP_CONFIG = AppConfig(
    app_name="applications",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=table_finder(modules=["backend.applications.tables"], exclude_imported=True),
    migration_dependencies=[
        "backend.households.piccolo_app",
        "backend.accounts.piccolo_app",
        "backend.departments.piccolo_app",
        "backend.tasks.piccolo_app",
    ],
    commands=[],
)
