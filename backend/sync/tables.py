from piccolo.columns import BigSerial, ForeignKey, Integer, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from backend.accounts.tables import Account


class SyncChange(Table, tablename="sync_change"):
    """What a device must fetch or drop. Written in the same transaction as the change itself;
    a device's cursor is the last id it has applied."""

    id = BigSerial(primary_key=True)
    # Indexed together with id (account, id) by a migration: a device reads its own changes in order.
    account = ForeignKey(Account, on_delete=OnDelete.cascade)
    entity = Varchar(length=16)  # task | grids | notification
    entity_id = Varchar(length=64)
    op = Varchar(length=8)  # upsert | remove
    at = Timestamptz(default=TimestamptzNow())


class SyncHealth(Table, tablename="sync_health"):
    """The phone's own report, sent on each sync: what is still waiting in its outbox. One row per
    account (the latest report wins), so a supervisor sees who has unsent visits and since when."""

    id = BigSerial(primary_key=True)
    account = ForeignKey(Account, on_delete=OnDelete.cascade, unique=True)
    pending = Integer(default=0)
    needs_attention = Integer(default=0)
    oldest_pending_at = Timestamptz(null=True, default=None)
    last_error = Varchar(length=500, null=True, default=None)
    app_version = Varchar(length=32, default="")
    reported_at = Timestamptz(default=TimestamptzNow())
    # The app reports after each sync, so the report's time is the last sync's: GET /sync stays read-only.
    last_sync_at = Timestamptz(null=True, default=None)
