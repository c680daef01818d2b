from pathlib import Path

from piccolo.conf.apps import AppConfig, table_finder

APP_CONFIG = AppConfig(
    app_name="accounts",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=table_finder(modules=["backend.accounts.tables"], exclude_imported=True),
    migration_dependencies=["backend.orgs.piccolo_app", "backend.departments.piccolo_app"],
    commands=[],
)
