from piccolo.columns import BigSerial, ForeignKey, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from backend.accounts.tables import Account


class SyncChange(Table, tablename="sync_change"):
    """What a device must fetch or drop. Written in the same transaction as the change itself;
    a device's cursor is the last id it has applied."""

    id = BigSerial(primary_key=True)
    account = ForeignKey(Account, on_delete=OnDelete.cascade, index=True)
    entity = Varchar(length=16)  # task | grids | notification
    entity_id = Varchar(length=64)
    op = Varchar(length=8)  # upsert | remove
    at = Timestamptz(default=TimestamptzNow())
