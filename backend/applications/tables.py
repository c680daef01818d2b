from enum import Enum

from piccolo.columns import JSON, UUID, Boolean, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from backend.accounts.tables import Account
from backend.departments.tables import Department
from backend.households.tables import Household
from backend.orgs.tables import OrgUnit
from backend.tasks.tables import VisitTask


class CaseState(str, Enum):
    new = "new"  # routed, not yet looked at
    accepted = "accepted"  # the department is working on it
    info_requested = "info_requested"  # waiting for the grid worker to bring more information
    approved = "approved"
    rejected = "rejected"


DECIDED_STATES = (CaseState.approved, CaseState.rejected)
# The department's clock runs in these; it stops while the case waits for the family's information.
CLOCK_RUNNING_STATES = (CaseState.new, CaseState.accepted)


class Period(str, Enum):
    one_off = "one_off"
    monthly = "monthly"
    yearly = "yearly"


class Application(Table, tablename="application"):
    """An assistance application (救助申请), usually made by the grid worker on the family's behalf.

    ``id`` is the phone's own UUID, sent as ``Idempotency-Key``: a retried upload can never make a
    second application. Answers, materials and consent are as submitted; the department cases made
    from it live in ``DepartmentCase``."""

    id = UUID(primary_key=True)
    household = ForeignKey(Household, on_delete=OnDelete.restrict, index=True)
    # Where the household was when it applied (for scope queries and the street's escalations).
    street = ForeignKey(OrgUnit, null=True, on_delete=OnDelete.restrict, index=True)
    grid_code = Varchar(length=32, null=True, default=None)
    created_by = ForeignKey(Account, on_delete=OnDelete.restrict, index=True)
    on_behalf = Boolean(default=True)
    applicant_member = UUID(null=True, default=None)  # household_member.id, never the ID number
    services = JSON(default=[])  # service codes, in the order picked
    answers = JSON(default={})  # service code -> {question: plain value}
    materials = JSON(default={})  # material code -> {"photos": [...], "to_follow": bool}
    consent = JSON(default={})  # who (member id / name), how, when
    rule_version = Integer()  # the server's rules the verdicts below were made with
    client_rule_version = Integer(null=True, default=None)  # the rules the phone matched with
    verdicts = JSON(default={})  # service code -> eligible / possible / ineligible at submission
    created_at = Timestamptz(default=TimestamptzNow(), index=True)


class DepartmentCase(Table, tablename="department_case"):
    """One selected service of one application, for the department that decides it.

    ``dedupe_key`` (application id + service code) is unique: a routing job that runs twice, or two
    that run at once, make one case."""

    id = UUID(primary_key=True)
    application = ForeignKey(Application, on_delete=OnDelete.restrict, index=True)
    dedupe_key = Varchar(length=100, unique=True)
    service = Varchar(length=48, index=True)
    department = ForeignKey(Department, on_delete=OnDelete.restrict, index=True)
    state = Varchar(length=16, choices=CaseState, default=CaseState.new, index=True)
    rule_version = Integer()
    verdict = Varchar(length=16, default="")
    due_at = Timestamptz(index=True)
    # 0 on time; 1 overdue, officers told; 2 street told; 3 district told (see cases/escalation.py).
    escalation = Integer(default=0, index=True)
    amount_yuan = Integer(null=True, default=None)
    period = Varchar(length=16, null=True, default=None)
    period_months = Integer(null=True, default=None)
    reason = Text(default="")  # why it was rejected
    info_request = Text(default="")  # what the department asked for last
    info_task = ForeignKey(VisitTask, null=True, on_delete=OnDelete.set_null)
    # When the department asked for more information: the deadline moves on by the time waited.
    paused_at = Timestamptz(null=True, default=None)
    decided_at = Timestamptz(null=True, default=None)
    decided_by = ForeignKey(Account, null=True, on_delete=OnDelete.set_null)
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    updated_at = Timestamptz(default=TimestamptzNow())
