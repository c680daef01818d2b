from piccolo.columns import UUID, BigSerial, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from backend.accounts.tables import Account
from backend.notifications.tables import Notification


class PushSubscription(Table, tablename="push_subscription"):
    """One browser's Web Push subscription (one per device). Deleted when the push service says 404/410."""

    id = UUID(primary_key=True)
    account = ForeignKey(Account, on_delete=OnDelete.cascade, index=True)
    endpoint = Text()
    endpoint_hash = Varchar(length=64, unique=True)
    p256dh = Varchar(length=128)
    auth = Varchar(length=64)
    created_at = Timestamptz(default=TimestamptzNow())
    last_success_at = Timestamptz(null=True, default=None)
    failures = Integer(default=0)


class SmsSent(Table, tablename="sms_sent"):
    """A notification someone was texted about: the unique key that makes it at most one SMS each."""

    id = BigSerial(primary_key=True)
    notification = ForeignKey(Notification, on_delete=OnDelete.cascade, unique=True)
    sent_at = Timestamptz(default=TimestamptzNow())
