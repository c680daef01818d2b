"""Piccolo's configuration: the engine comes from DATABASE_URL (PostgreSQL) or the embedded SQLite file."""

from piccolo.conf.apps import AppRegistry

from backend.lib.db import create_engine

DB = create_engine()

APP_REGISTRY = AppRegistry(
    apps=[
        "backend.orgs.piccolo_app",
        "backend.accounts.piccolo_app",
        "backend.grids.piccolo_app",
        "backend.departments.piccolo_app",
        "backend.households.piccolo_app",
        "backend.audit.piccolo_app",
        "backend.notifications.piccolo_app",
        "backend.tasks.piccolo_app",
        "backend.warnings.piccolo_app",
        "backend.sync.piccolo_app",
        "backend.push.piccolo_app",
        "backend.outbox.piccolo_app",
        "backend.idempotency.piccolo_app",
        "backend.matching.piccolo_app",
        "backend.requests.piccolo_app",
        "backend.visits.piccolo_app",
        "backend.applications.piccolo_app",
    ]
)
