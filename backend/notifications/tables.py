from piccolo.columns import JSON, UUID, ForeignKey, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from backend.accounts.tables import Account


class Notification(Table, tablename="notification"):
    """The in-app inbox: the record of what a person was told. Push and SMS only point here."""

    id = UUID(primary_key=True)
    account = ForeignKey(Account, on_delete=OnDelete.cascade, index=True)
    kind = Varchar(length=48, index=True)
    title_zh = Varchar(length=200)
    title_en = Varchar(length=200)
    # Ids and codes only, never personal values: the inbox syncs to phones.
    detail = JSON(default={})
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    read_at = Timestamptz(null=True, default=None)
