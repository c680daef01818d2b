from enum import Enum

from piccolo.columns import JSON, BigSerial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Outcome(str, Enum):
    success = "success"
    denied = "denied"
    failure = "failure"


class AuditLog(Table, tablename="audit_log"):
    """Append-only (a trigger refuses UPDATE and DELETE); each row hashes the one before it."""

    id = BigSerial(primary_key=True)
    at = Timestamptz(default=TimestamptzNow(), index=True)
    actor_id = Varchar(length=36, null=True, default=None, index=True)
    actor_role = Varchar(length=32, default="")
    action = Varchar(length=64, index=True)
    object_type = Varchar(length=32, default="")
    object_id = Varchar(length=64, default="", index=True)
    outcome = Varchar(length=16, choices=Outcome, default=Outcome.success)
    client = Varchar(length=64, default="")
    request_id = Varchar(length=36, default="")
    # Never personal values: ids, codes, field names, reasons only.
    detail = JSON(default={})
    prev_hash = Varchar(length=64)
    hash = Varchar(length=64, unique=True)
