from piccolo.columns import JSON, UUID, BigInt, BigSerial, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class OutboxMessage(Table, tablename="outbox_message"):
    """Work for the background worker, written in the same transaction as the change that needs it.

    Redis may lose a queued job; this row does not. A relay enqueues pending rows with
    ``_job_id = outbox:<key>`` and re-enqueues rows that stayed unfinished too long; jobs mark
    their row done, and the effect of each job is idempotent on its own.
    """

    id = BigSerial(primary_key=True)
    # Names the arq job. Row ids restart when a database is recreated or restored while Redis keeps
    # its job keys; a random key never collides with a job Redis still remembers.
    key = UUID()  # unique: an index created by the migration
    kind = Varchar(length=48, index=True)
    payload = JSON(default={})  # ids and counts only
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    enqueued_at = Timestamptz(null=True, default=None)
    done_at = Timestamptz(null=True, default=None, index=True)
    attempts = Integer(default=0)
    last_error = Text(default="")


class DeadLetter(Table, tablename="dead_letter"):
    """An outbox message whose job failed on every try: parked here, visible to admins, never dropped.

    Parking marks the outbox row done (so the relay stops handing it over); an admin's re-queue
    writes a fresh outbox message with the same kind and payload."""

    id = BigSerial(primary_key=True)
    message_id = BigInt()
    kind = Varchar(length=48, index=True)
    payload = JSON(default={})
    error = Text(default="")
    attempts = Integer(default=0)
    parked_at = Timestamptz(default=TimestamptzNow(), index=True)
    requeued_at = Timestamptz(null=True, default=None)
    requeued_by = Varchar(length=36, null=True, default=None)
    requeued_message_id = BigInt(null=True, default=None)
