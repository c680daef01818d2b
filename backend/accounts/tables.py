from enum import Enum

from piccolo.columns import UUID, Boolean, ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from backend.departments.tables import Department
from backend.orgs.tables import OrgUnit


class Role(str, Enum):
    grid_worker = "grid_worker"
    supervisor = "supervisor"  # scoped to a street/town
    department_officer = "department_officer"  # scoped to a department
    resident = "resident"
    admin = "admin"


STAFF_ROLES = frozenset({Role.grid_worker, Role.supervisor, Role.department_officer, Role.admin})


class Account(Table, tablename="account"):
    id = UUID(primary_key=True)
    username = Varchar(length=64, unique=True, index=True)
    display_name = Varchar(length=100)
    phone_sealed = Text(null=True, default=None)
    phone_index = Varchar(length=64, unique=True, null=True, default=None)
    password_hash = Varchar(length=255)
    role = Varchar(length=32, choices=Role, index=True)
    street = ForeignKey(OrgUnit, null=True, on_delete=OnDelete.restrict)
    department = ForeignKey(Department, null=True, on_delete=OnDelete.restrict)
    is_active = Boolean(default=True)
    totp_secret_sealed = Text(null=True, default=None)
    totp_enabled = Boolean(default=False)
    # Last accepted TOTP time step: a code is never accepted twice.
    totp_last_step = Integer(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class AuthSession(Table, tablename="auth_session"):
    """One login on one device. Tokens are opaque; only their SHA-256 is stored."""

    id = UUID(primary_key=True)
    account = ForeignKey(Account, on_delete=OnDelete.cascade, index=True)
    access_hash = Varchar(length=64, unique=True, index=True)
    access_expires_at = Timestamptz()
    refresh_hash = Varchar(length=64, unique=True, index=True)
    refresh_expires_at = Timestamptz()
    # The refresh token this one replaced: a phone whose refresh answer was lost may retry it once.
    previous_refresh_hash = Varchar(length=64, null=True, default=None, index=True)
    rotated_at = Timestamptz(null=True, default=None)
    mfa_pending = Boolean(default=False)
    created_at = Timestamptz(default=TimestamptzNow())
    last_seen_at = Timestamptz(default=TimestamptzNow())
    revoked_at = Timestamptz(null=True, default=None)
    revoke_reason = Varchar(length=32, null=True, default=None)
    client = Varchar(length=64, default="")
    user_agent = Varchar(length=255, default="")


class RolePolicy(Table, tablename="role_policy"):
    """Per-role security policy an admin can change; today: whether TOTP is required."""

    id = Serial(primary_key=True)
    role = Varchar(length=32, choices=Role, unique=True)
    totp_required = Boolean(default=False)
