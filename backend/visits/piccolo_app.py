from pathlib import Path

from piccolo.conf.apps import AppConfig, table_finder

APP_CONFIG = AppConfig(
    app_name="visits",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=table_finder(modules=["backend.visits.tables"], exclude_imported=True),
    migration_dependencies=[
        "backend.accounts.piccolo_app",
        "backend.households.piccolo_app",
        "backend.tasks.piccolo_app",
    ],
    commands=[],
)
