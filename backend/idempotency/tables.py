from piccolo.columns import BigSerial, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class IdempotencyRecord(Table, tablename="idempotency_record"):
    """A device or system POST already answered: the same key and body get the same answer."""

    id = BigSerial(primary_key=True)
    # Who sent it (account id or "apikey:<id>") and their key: keys are only unique per sender.
    scope = Varchar(length=64)
    key = Varchar(length=128)
    request_hash = Varchar(length=64)
    status_code = Integer()
    response_body = Text()
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
