from enum import Enum

from piccolo.columns import (
    JSON,
    UUID,
    Boolean,
    DoublePrecision,
    ForeignKey,
    Integer,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from backend.departments.tables import Department
from backend.orgs.tables import OrgUnit
from backend.tasks.tables import VisitTask


class DeadlineUnit(str, Enum):
    working_days = "working_days"  # China's calendar: holidays off, make-up weekend days on
    calendar_days = "calendar_days"
    hours = "hours"


class WarningType(Table, tablename="warning_type"):
    """What a warning means for the visit: how urgent, and how long the worker has."""

    id = Serial(primary_key=True)
    code = Varchar(length=48, unique=True, index=True)
    name_zh = Varchar(length=100)
    name_en = Varchar(length=150)
    priority = Integer(default=2)  # 1 (highest) … 4
    deadline_amount = Integer(default=3)
    deadline_unit = Varchar(length=16, choices=DeadlineUnit, default=DeadlineUnit.working_days)
    builtin = Boolean(default=False)
    active = Boolean(default=True)


class WarningStatus(str, Enum):
    tasked = "tasked"  # created a visit task, or joined the household's open one
    unmatched = "unmatched"  # no household with this ID number: on the supervisor's unmatched list
    unplaced = "unplaced"  # a household but no grid: on the street's unplaced list
    no_worker = "no_worker"  # a grid nobody owns: the task waits with the supervisor
    resolved = "resolved"  # an unmatched warning someone dealt with


class Warning(Table, tablename="hardship_warning"):
    """One warning from a department's system. (source, source_record_id) is the dedupe key."""

    id = UUID(primary_key=True)
    # Indexed by the unique (source, source_record_id) index a migration adds: no index of its own.
    source = Varchar(length=48)
    source_record_id = Varchar(length=128)
    type_code = Varchar(length=48)
    # No household column: a matched warning's household is its task's, and an unmatched one has none.
    # Keyed hash of the ID number as given, so an unmatched warning can be matched later (indexed
    # only while unmatched, by a partial index a migration adds).
    id_number_index = Varchar(length=64, null=True, default=None)
    # Kept sealed only while unmatched, so a supervisor can find the family (reveal is audited).
    id_number_sealed = Text(null=True, default=None)
    lon = DoublePrecision(null=True, default=None)  # WGS84, after conversion from the sender's datum
    lat = DoublePrecision(null=True, default=None)
    # The supervisors' unmatched list reads (street, received_at) of unmatched warnings only: one
    # partial index a migration adds serves it. Nine in ten warnings are tasked and never looked up
    # by these columns, so indexing every row by each of them was most of the cost of writing one.
    # Set only on a warning without a task (a tasked warning's street is its task's): the key's
    # check cost each tasked warning a lookup and a row lock for a value nobody reads.
    street = ForeignKey(OrgUnit, null=True, on_delete=OnDelete.restrict)
    status = Varchar(length=16, choices=WarningStatus)
    task = ForeignKey(VisitTask, null=True, on_delete=OnDelete.set_null, index=True)
    occurred_on = Varchar(length=10, default="")  # the sender's date, as given (YYYY-MM-DD)
    # Amounts, grades, free text codes: never a name, ID number or phone.
    facts = JSON(default={})
    received_at = Timestamptz(default=TimestamptzNow())


class DepartmentApiKey(Table, tablename="department_api_key"):
    """A department system's credential for posting warnings. Only the SHA-256 of the key is kept."""

    id = Serial(primary_key=True)
    department = ForeignKey(Department, on_delete=OnDelete.cascade, index=True)
    name = Varchar(length=100)
    prefix = Varchar(length=12, index=True)
    key_hash = Varchar(length=64, unique=True)
    created_at = Timestamptz(default=TimestamptzNow())
    revoked_at = Timestamptz(null=True, default=None)
