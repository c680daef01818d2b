from piccolo.columns import (
    JSON,
    UUID,
    Boolean,
    DoublePrecision,
    ForeignKey,
    Integer,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from backend.accounts.tables import Account
from backend.households.tables import Household
from backend.tasks.tables import VisitTask


class Visit(Table, tablename="visit"):
    """What a worker found at a household, as recorded on the phone. One row per phone-side visit:
    ``dedupe_key`` (worker + the phone's Idempotency-Key) is unique, so a retried or doubled upload
    can never make a second row."""

    id = UUID(primary_key=True)
    # Indexed by a raw migration: Piccolo's name for this index ("visit_task") is a table's name.
    task = ForeignKey(VisitTask, on_delete=OnDelete.restrict)
    worker = ForeignKey(Account, on_delete=OnDelete.restrict, index=True)
    dedupe_key = Varchar(length=200, unique=True)
    request_hash = Varchar(length=64)
    found = Text(default="")
    needs = JSON(default=[])
    notes = Text(default="")
    visited_at = Timestamptz()
    lon = DoublePrecision(null=True, default=None)
    lat = DoublePrecision(null=True, default=None)
    accuracy_m = DoublePrecision(null=True, default=None)
    # The sha256 of each photo the phone will upload for this visit; only those are accepted.
    photos = JSON(default=[])
    after_reassignment = Boolean(default=False)
    created_at = Timestamptz(default=TimestamptzNow())


class VisitPhoto(Table, tablename="visit_photo"):
    """A photo that arrived whole and passed the checks; stored re-encoded, without metadata."""

    id = UUID(primary_key=True)
    visit = ForeignKey(Visit, on_delete=OnDelete.cascade, index=True)
    sha256 = Varchar(length=64)  # of the bytes the phone sent
    dedupe_key = Varchar(length=110, unique=True)  # visit id + sha256
    storage_key = Varchar(length=128)
    thumbnail_key = Varchar(length=128)
    width = Integer()
    height = Integer()
    bytes = Integer()
    created_at = Timestamptz(default=TimestamptzNow())


class MaterialPhoto(Table, tablename="material_photo"):
    """A document photographed on the apply screen (the ID card, the signed authorisation) rather than
    on a visit: kept for the task's household, named by an application by its id. Stored like a
    visit photo (re-encoded, without metadata); ``dedupe_key`` (task id + sha256) makes a resent
    photo the same row."""

    id = UUID(primary_key=True)
    task = ForeignKey(VisitTask, on_delete=OnDelete.restrict, index=True)
    household = ForeignKey(Household, on_delete=OnDelete.cascade, index=True)
    worker = ForeignKey(Account, on_delete=OnDelete.restrict, index=True)
    sha256 = Varchar(length=64)  # of the bytes the phone sent
    dedupe_key = Varchar(length=110, unique=True)
    storage_key = Varchar(length=128)
    thumbnail_key = Varchar(length=128)
    width = Integer()
    height = Integer()
    bytes = Integer()
    created_at = Timestamptz(default=TimestamptzNow())
