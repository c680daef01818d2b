"""Accounts: creating and changing them, logging in, and building the caller's scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from litestar.stores.base import Store

from backend.accounts import passwords, sessions, totp
from backend.accounts.principal import Principal
from backend.accounts.tables import STAFF_ROLES, Account, AuthSession, Role, RolePolicy
from backend.audit.services import Actor, record
from backend.audit.tables import Outcome
from backend.departments.tables import Department
from backend.grids.tables import GridAssignment
from backend.lib import crypto, pii
from backend.lib.db import as_utc, write_transaction
from backend.lib.errors import Conflict, GridAidError, InvalidInput, NotFound, TooManyRequests
from backend.orgs.tables import OrgLevel, OrgUnit
from backend.settings import get_settings


class InvalidCredentials(GridAidError):
    status_code = 401
    code = "auth.invalid_credentials"
    message_zh = "用户名或密码错误"
    message_en = "Wrong username or password"


class OtpRequired(GridAidError):
    status_code = 401
    code = "auth.otp_required"
    message_zh = "请输入动态验证码"
    message_en = "Enter the code from your authenticator app"


class AccountDisabled(GridAidError):
    status_code = 401
    code = "auth.account_disabled"
    message_zh = "账号已停用，请联系管理员"
    message_en = "This account is disabled; contact your administrator"


# ---------------------------------------------------------------------------------------------
# Creating and changing accounts


@dataclass(frozen=True)
class NewAccount:
    username: str
    display_name: str
    password: str
    role: Role
    phone: str | None = None
    street_code: str | None = None
    department_code: str | None = None
    # For bulk seeding of accounts that share one password (the demo): hash once, reuse.
    # The caller vouches that it is the hash of ``password``; verifying would cost a hash each.
    password_hash: str | None = None


async def _scope_ids(role: Role, street_code: str | None, department_code: str | None) -> tuple[int | None, int | None]:
    street_id = department_id = None
    if role == Role.supervisor:
        if not street_code:
            raise InvalidInput(
                "A supervisor needs a street", "街道管理员须指定所属街道", code="account.street_required"
            )
        street = (
            await OrgUnit.select(OrgUnit.id)
            .where(OrgUnit.code == street_code, OrgUnit.level == OrgLevel.street)
            .first()
        )
        if street is None:
            raise InvalidInput("Unknown street code", "街道编码不存在", code="account.street_unknown")
        street_id = street["id"]
    if role == Role.department_officer:
        if not department_code:
            raise InvalidInput(
                "An officer needs a department", "部门经办人须指定部门", code="account.department_required"
            )
        dept = await Department.select(Department.id).where(Department.code == department_code).first()
        if dept is None:
            raise InvalidInput("Unknown department code", "部门编码不存在", code="account.department_unknown")
        department_id = dept["id"]
    return street_id, department_id


async def create_account(new: NewAccount, *, actor: Actor) -> UUID:
    passwords.check_policy(new.password)
    street_id, department_id = await _scope_ids(new.role, new.street_code, new.department_code)
    phone_sealed = phone_index = None
    if new.phone:
        try:
            phone_sealed, phone_index = pii.seal_phone(new.phone)
        except pii.InvalidIdentifier as exc:
            raise InvalidInput(str(exc), "手机号格式不正确", code=exc.code) from exc
    account_id = uuid4()
    async with write_transaction():
        same_login: Any = Account.username == new.username
        if phone_index:
            same_login = same_login | (Account.phone_index == phone_index)
        if await Account.exists().where(same_login):
            raise Conflict("Username or phone already in use", "用户名或手机号已被使用", code="account.exists")
        await Account.insert(
            Account(
                id=account_id,
                username=new.username,
                display_name=new.display_name,
                password_hash=new.password_hash or passwords.hash_password(new.password),
                role=new.role,
                phone_sealed=phone_sealed,
                phone_index=phone_index,
                street=street_id,
                department=department_id,
            )
        )
        await record(
            "account.create",
            actor=actor,
            object_type="account",
            object_id=str(account_id),
            detail={"role": new.role.value},
        )
    return account_id


@dataclass(frozen=True)
class AccountChange:
    display_name: str | None = None
    role: Role | None = None
    is_active: bool | None = None
    street_code: str | None = None
    department_code: str | None = None


async def change_account(account_id: UUID, change: AccountChange, *, actor: Actor) -> None:
    """Admin changes. Anything that narrows what the account may do ends its sessions at once."""
    async with write_transaction():
        row = await Account.select().where(Account.id == account_id).first()
        if row is None:
            raise NotFound(code="account.not_found")
        # String keys: Piccolo columns overload ``==``, which makes them poor dict keys.
        values: dict[str, Any] = {}
        role = change.role or Role(row["role"])
        if change.display_name is not None:
            values["display_name"] = change.display_name
        if change.role is not None or change.street_code is not None or change.department_code is not None:
            street_id, department_id = await _scope_ids(
                role,
                change.street_code or await _street_code(row["street"]),
                change.department_code or await _department_code(row["department"]),
            )
            values.update({"role": role.value, "street": street_id, "department": department_id})
        if change.is_active is not None:
            values["is_active"] = change.is_active
        changes: dict[Any, Any] = {**values, "updated_at": datetime.now(UTC)}
        await Account.update(changes).where(Account.id == account_id)
        narrowed = any(key in values and values[key] != row[key] for key in ("role", "street", "department")) or (
            values.get("is_active") is False
        )
        revoked = await sessions.revoke_all_sessions(account_id, "account_changed") if narrowed else 0
        fields = sorted(values)
        await record(
            "account.change",
            actor=actor,
            object_type="account",
            object_id=str(account_id),
            detail={"fields": fields, "sessions_revoked": revoked},
        )


async def _street_code(street_id: int | None) -> str | None:
    if street_id is None:
        return None
    row = await OrgUnit.select(OrgUnit.code).where(OrgUnit.id == street_id).first()
    return row["code"] if row else None


async def _department_code(department_id: int | None) -> str | None:
    if department_id is None:
        return None
    row = await Department.select(Department.code).where(Department.id == department_id).first()
    return row["code"] if row else None


async def change_password(account_id: UUID, current: str, new: str, *, actor: Actor, keep_session: UUID) -> None:
    row = await Account.select(Account.password_hash).where(Account.id == account_id).first()
    if row is None or not passwords.verify_password(row["password_hash"], current):
        raise InvalidCredentials("Current password is wrong", "当前密码不正确")
    passwords.check_policy(new)
    async with write_transaction():
        await Account.update({Account.password_hash: passwords.hash_password(new)}).where(Account.id == account_id)
        # Every other device must log in again with the new password.
        await sessions.AuthSession.update(
            {sessions.AuthSession.revoked_at: datetime.now(UTC), sessions.AuthSession.revoke_reason: "password_changed"}
        ).where(
            sessions.AuthSession.account == account_id,
            sessions.AuthSession.id != keep_session,
            sessions.AuthSession.revoked_at.is_null(),
        )
        await record("account.password_change", actor=actor, object_type="account", object_id=str(account_id))


# ---------------------------------------------------------------------------------------------
# Logging in


@dataclass(frozen=True)
class LoginResult:
    tokens: sessions.IssuedTokens
    account_id: UUID
    role: Role
    mfa_enrolment_required: bool


async def _find_by_login(login: str) -> dict[str, Any] | None:
    login = login.strip()
    row = await Account.select().where(Account.username == login).first()
    if row is None:
        try:
            index = pii.phone_index(login)
        except pii.InvalidIdentifier:
            return None
        row = await Account.select().where(Account.phone_index == index).first()
    return row


def _failure_key(login: str) -> str:
    # Keyed hash: the login may be a phone number, which must not sit in Redis in clear.
    return "login-fail:" + crypto.blind_index(login.strip().lower(), kind="login")[:32]


async def totp_required_for(role: Role) -> bool:
    policy = await RolePolicy.select(RolePolicy.totp_required).where(RolePolicy.role == role).first()
    return bool(policy and policy["totp_required"])


async def login(
    login_name: str, password: str, otp: str | None, *, store: Store, client: str, user_agent: str, request_id: str
) -> LoginResult:
    settings = get_settings().auth
    key = _failure_key(login_name)
    failures = int((await store.get(key)) or 0)
    if failures >= settings.login_failures_per_account:
        ttl = await store.expires_in(key)
        await record(
            "auth.login",
            actor=Actor(None, "", client, request_id),
            outcome=Outcome.denied,
            detail={"reason": "account_locked"},
        )
        raise TooManyRequests(
            "Too many failed sign-ins for this account; try again later",
            "该账号登录失败次数过多，请稍后再试",
            code="auth.locked",
            headers={"Retry-After": str(ttl or settings.login_lock_s)},
        )

    row = await _find_by_login(login_name)
    password_ok = passwords.verify_password(row["password_hash"] if row else None, password)

    async def fail(reason: str, error: GridAidError) -> GridAidError:
        await store.set(key, str(failures + 1), expires_in=settings.login_lock_s)
        actor = Actor(str(row["id"]) if row else None, row["role"] if row else "", client, request_id)
        await record(
            "auth.login",
            actor=actor,
            object_type="account",
            object_id=str(row["id"]) if row else "",
            outcome=Outcome.denied,
            detail={"reason": reason},
        )
        return error

    if row is None or not password_ok:
        raise await fail("bad_credentials", InvalidCredentials())
    if not row["is_active"]:
        raise await fail("account_disabled", AccountDisabled())
    role = Role(row["role"])
    if row["totp_enabled"]:
        if not otp:
            raise OtpRequired()
        step = totp.accepted_step(row["totp_secret_sealed"], otp, row["totp_last_step"])
        if step is None:
            raise await fail(
                "bad_otp", InvalidCredentials("Wrong or reused code", "动态验证码错误或已使用", code="auth.otp_invalid")
            )
        await Account.update({Account.totp_last_step: step}).where(Account.id == row["id"])

    enrolment_required = role in STAFF_ROLES and not row["totp_enabled"] and await totp_required_for(role)
    if passwords.needs_rehash(row["password_hash"]):
        await Account.update({Account.password_hash: passwords.hash_password(password)}).where(Account.id == row["id"])
    tokens = await sessions.create_session(
        row["id"], mfa_pending=enrolment_required, client=client, user_agent=user_agent
    )
    await store.delete(key)
    await record(
        "auth.login",
        actor=Actor(str(row["id"]), role.value, client, request_id),
        object_type="session",
        object_id=str(tokens.session_id),
        detail={"mfa_enrolment_required": enrolment_required},
    )
    return LoginResult(tokens=tokens, account_id=row["id"], role=role, mfa_enrolment_required=enrolment_required)


async def start_totp_enrolment(principal: Principal) -> tuple[str, str]:
    secret = totp.new_secret()
    await Account.update({Account.totp_secret_sealed: totp.seal_secret(secret), Account.totp_enabled: False}).where(
        Account.id == principal.account_id
    )
    await record(
        "auth.totp_enrol_start", actor=principal.actor, object_type="account", object_id=str(principal.account_id)
    )
    return secret, totp.provisioning_uri(secret, principal.username)


async def confirm_totp_enrolment(principal: Principal, code: str) -> None:
    row = (
        await Account.select(Account.totp_secret_sealed, Account.totp_last_step)
        .where(Account.id == principal.account_id)
        .first()
    )
    if row is None or not row["totp_secret_sealed"]:
        raise InvalidInput("Start enrolment first", "请先开始绑定", code="auth.totp_not_started")
    step = totp.accepted_step(row["totp_secret_sealed"], code, row["totp_last_step"])
    if step is None:
        raise InvalidInput("Wrong code", "验证码错误", code="auth.otp_invalid")
    async with write_transaction():
        await Account.update({Account.totp_enabled: True, Account.totp_last_step: step}).where(
            Account.id == principal.account_id
        )
        await sessions.clear_mfa_pending(principal.session_id)
        await record(
            "auth.totp_enabled", actor=principal.actor, object_type="account", object_id=str(principal.account_id)
        )


async def set_role_policy(role: Role, totp_required: bool, *, actor: Actor) -> None:
    async with write_transaction():
        existing = await RolePolicy.exists().where(RolePolicy.role == role)
        if existing:
            await RolePolicy.update({RolePolicy.totp_required: totp_required}).where(RolePolicy.role == role)
        else:
            await RolePolicy.insert(RolePolicy(role=role, totp_required=totp_required))
        await record(
            "policy.change",
            actor=actor,
            object_type="role_policy",
            object_id=role.value,
            detail={"totp_required": totp_required},
        )


# ---------------------------------------------------------------------------------------------
# Who is calling, and what may they see


# Session, account and (for a worker) current grids in one round trip: this runs before every API
# request, and three queries each time were a third of a phone's sync. Nothing is cached, so a
# logout, a revoked session, a disabled account, a role change or a new grid counts at once.
_PRINCIPAL_SQL = """
SELECT s.id AS session_id, s.account AS account_id, s.mfa_pending, s.access_expires_at, s.last_seen_at,
       a.is_active, a.username, a.display_name, a.role, a.street, a.department, g.grid_code
FROM auth_session s
JOIN account a ON a.id = s.account
LEFT JOIN grid_assignment g
  ON g.worker = s.account AND g.ended_at IS NULL AND a.role = 'grid_worker'
WHERE s.access_hash = {} AND s.revoked_at IS NULL
"""


async def authenticate(token: str, *, client: str, request_id: str) -> Principal | None:
    """The caller behind an access token, or None when the token is unknown, expired or revoked, or
    the account is disabled."""
    if not token.startswith(sessions.ACCESS_PREFIX):
        return None
    rows = await AuthSession.raw(_PRINCIPAL_SQL, sessions.token_digest(token))
    if not rows:
        return None
    row = rows[0]
    now = datetime.now(UTC)
    if not row["is_active"] or as_utc(row["access_expires_at"]) <= now:
        return None
    await sessions.touch(row["session_id"], as_utc(row["last_seen_at"]), now)
    role = Role(row["role"])
    return Principal(
        account_id=_as_uuid(row["account_id"]),
        username=row["username"],
        display_name=row["display_name"],
        role=role,
        session_id=_as_uuid(row["session_id"]),
        mfa_pending=bool(row["mfa_pending"]),
        street_id=row["street"],
        department_id=row["department"],
        grid_codes=frozenset(item["grid_code"] for item in rows if item["grid_code"] is not None),
        client=client,
        request_id=request_id,
    )


def _as_uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


async def load_principal(live: sessions.LiveSession, *, client: str, request_id: str) -> Principal | None:
    row = (
        await Account.select(
            Account.id, Account.username, Account.display_name, Account.role, Account.street, Account.department
        )
        .where(Account.id == live.account_id)
        .first()
    )
    if row is None:
        return None
    role = Role(row["role"])
    grid_codes: frozenset[str] = frozenset()
    if role == Role.grid_worker:
        assignments = await GridAssignment.select(GridAssignment.grid_code).where(
            GridAssignment.worker == row["id"], GridAssignment.ended_at.is_null()
        )
        grid_codes = frozenset(item["grid_code"] for item in assignments)
    return Principal(
        account_id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        role=role,
        session_id=live.session_id,
        mfa_pending=live.mfa_pending,
        street_id=row["street"],
        department_id=row["department"],
        grid_codes=grid_codes,
        client=client,
        request_id=request_id,
    )
