"""Logging in, staying logged in through an offline spell, and being logged out when it matters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from backend.accounts.services import NewAccount, create_account
from backend.accounts.tables import Account, AuthSession, Role
from backend.audit.services import Actor
from backend.audit.tables import AuditLog
from tests.integration.conftest import PASSWORD, Api

pytestmark = pytest.mark.anyio


async def _new_account(role: Role = Role.resident, phone: str | None = None, **scope: str) -> str:
    import secrets

    username = f"u_{secrets.token_hex(4)}"
    await create_account(
        NewAccount(username=username, display_name="测试", password=PASSWORD, role=role, phone=phone, **scope),
        actor=Actor.system("tests"),
    )
    return username


async def test_login_by_username_or_phone_and_me(api: Api, world) -> None:
    username = await _new_account(Role.grid_worker, phone="13900001111")
    assert (await api.login(username)).status_code == 200
    me = (await api.get("/api/v1/auth/me")).json()
    assert me["username"] == username and me["role"] == "grid_worker"
    assert me["phone_masked"] == "139****1111"

    by_phone = Api(api.client)
    response = await by_phone.login("139 0000 1111")
    assert response.status_code == 200, response.text
    assert (await by_phone.get("/api/v1/auth/me")).json()["username"] == username


async def test_password_is_stored_as_argon2id(world) -> None:
    row = await Account.select(Account.password_hash).where(Account.username == world.usernames["admin"]).first()
    assert row["password_hash"].startswith("$argon2id$")


async def test_wrong_password_and_unknown_user_look_the_same(api: Api, world) -> None:
    wrong = await api.login(world.usernames["resident"], "not-the-password")
    unknown = await api.login("nobody_here_at_all", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.headers["content-type"].startswith("application/problem+json")
    assert wrong.json()["code"] == unknown.json()["code"] == "auth.invalid_credentials"
    assert {k: v for k, v in wrong.json().items() if k != "instance"} == {
        k: v for k, v in unknown.json().items() if k != "instance"
    }


async def test_account_locks_after_repeated_failures_without_touching_others(http, world) -> None:
    victim = await _new_account()
    bystander = await _new_account()
    for attempt in range(5):
        assert (await Api(http).login(victim, "wrong-password")).status_code == 401, attempt
    locked = await Api(http).login(victim, PASSWORD)  # even the right password, from another device
    assert locked.status_code == 429
    assert locked.json()["code"] == "auth.locked"
    assert int(locked.headers["retry-after"]) > 0
    assert (await Api(http).login(bystander)).status_code == 200


async def test_login_is_rate_limited_per_client(http, world) -> None:
    device = Api(http)
    statuses = [(await device.login(f"nobody_{n}", "whatever-pass")).status_code for n in range(21)]
    assert statuses[:20] == [401] * 20
    assert statuses[20] == 429
    # Another client is not affected by this one's burst.
    assert (await Api(http).login(world.usernames["resident"])).status_code == 200


async def test_refresh_after_offline_expiry_keeps_the_session(api: Api, world) -> None:
    assert (await api.login(world.usernames["worker_a"])).status_code == 200
    old_access, old_refresh = api.access_token, api.refresh_token
    # The phone was offline past the access token's life.
    await AuthSession.update({AuthSession.access_expires_at: datetime.now(UTC) - timedelta(minutes=1)}).where(
        AuthSession.refresh_hash == _digest(old_refresh)
    )
    expired = await api.get("/api/v1/auth/me")
    assert expired.status_code == 401 and expired.json()["code"] == "auth.token_invalid"

    refreshed = await api.post("/api/v1/auth/refresh", json={"refresh_token": old_refresh})
    assert refreshed.status_code == 200, refreshed.text
    api.access_token = refreshed.json()["access_token"]
    assert api.access_token != old_access
    assert (await api.get("/api/v1/auth/me")).status_code == 200


async def test_lost_refresh_answer_may_be_retried_but_later_reuse_ends_the_session(api: Api, world) -> None:
    await api.login(world.usernames["worker_b"])
    first = api.refresh_token
    rotated = await api.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert rotated.status_code == 200
    # The answer was lost on a bad network: the phone retries with the token it still holds.
    retried = await api.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert retried.status_code == 200
    newest = retried.json()

    # Long after the rotation, the old token turning up again means it leaked: end the session.
    await AuthSession.update({AuthSession.rotated_at: datetime.now(UTC) - timedelta(hours=1)}).where(
        AuthSession.refresh_hash == _digest(newest["refresh_token"])
    )
    reused = await api.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert reused.status_code == 401 and reused.json()["code"] == "auth.refresh_reused"
    api.access_token = newest["access_token"]
    assert (await api.get("/api/v1/auth/me")).status_code == 401
    again = await api.post("/api/v1/auth/refresh", json={"refresh_token": newest["refresh_token"]})
    assert again.status_code == 401


async def test_logout_revokes_access_and_refresh(api: Api, world) -> None:
    await api.login(world.usernames["resident"])
    refresh = api.refresh_token
    assert (await api.post("/api/v1/auth/logout")).status_code == 204
    assert (await api.get("/api/v1/auth/me")).status_code == 401
    assert (await api.post("/api/v1/auth/refresh", json={"refresh_token": refresh})).status_code == 401


async def test_disabling_an_account_ends_its_sessions_at_once(http, as_role, world) -> None:
    username = await _new_account(Role.grid_worker)
    device = Api(http)
    await device.login(username)
    refresh = device.refresh_token
    admin = await as_role("admin")
    account_id = (await Account.select(Account.id).where(Account.username == username).first())["id"]
    response = await admin.request("PATCH", f"/api/v1/accounts/{account_id}", json={"is_active": False})
    assert response.status_code == 200, response.text
    assert (await device.get("/api/v1/auth/me")).status_code == 401
    assert (await device.post("/api/v1/auth/refresh", json={"refresh_token": refresh})).status_code == 401
    relogin = await Api(http).login(username)
    assert relogin.status_code == 401 and relogin.json()["code"] == "auth.account_disabled"


async def test_role_change_ends_sessions_but_a_rename_does_not(http, as_role, world) -> None:
    username = await _new_account(Role.grid_worker)
    account_id = (await Account.select(Account.id).where(Account.username == username).first())["id"]
    device = Api(http)
    await device.login(username)
    admin = await as_role("admin")
    await admin.request("PATCH", f"/api/v1/accounts/{account_id}", json={"display_name": "新名字"})
    assert (await device.get("/api/v1/auth/me")).status_code == 200
    await admin.request("PATCH", f"/api/v1/accounts/{account_id}", json={"role": "resident"})
    assert (await device.get("/api/v1/auth/me")).status_code == 401
    await device.login(username)
    assert (await device.get("/api/v1/auth/me")).json()["role"] == "resident"


async def test_totp_enrolment_then_login_needs_a_fresh_code(http, world) -> None:
    username = await _new_account(Role.grid_worker)
    device = Api(http)
    await device.login(username)
    enrol = (await device.post("/api/v1/auth/totp/enrol")).json()
    assert enrol["otpauth_uri"].startswith("otpauth://totp/")
    totp = pyotp.TOTP(enrol["secret"])
    confirm = await device.post("/api/v1/auth/totp/confirm", json={"code": totp.now()})
    assert confirm.status_code == 204, confirm.text

    needs_code = await Api(http).login(username)
    assert needs_code.status_code == 401 and needs_code.json()["code"] == "auth.otp_required"
    wrong = await Api(http).login(username, otp="000000" if totp.now() != "000000" else "111111")
    assert wrong.status_code == 401
    # The code used to confirm enrolment cannot be replayed; the next step's code works.
    import time

    next_code = totp.at(time.time() + 30)
    assert (await Api(http).login(username, otp=next_code)).status_code == 200
    assert (await Api(http).login(username, otp=next_code)).status_code == 401  # replay refused


async def test_admin_can_require_totp_for_a_role(http, as_role, world) -> None:
    admin = await as_role("admin")
    username = await _new_account(Role.department_officer, department_code="civil_affairs")
    assert (
        await admin.request("PUT", "/api/v1/role-policies/department_officer", json={"totp_required": True})
    ).status_code == 200
    try:
        device = Api(http)
        login = await device.login(username)
        assert login.status_code == 200 and login.json()["mfa_enrolment_required"] is True
        blocked = await device.get("/api/v1/departments")
        assert blocked.status_code == 403 and blocked.json()["code"] == "auth.mfa_enrolment_required"
        secret = (await device.post("/api/v1/auth/totp/enrol")).json()["secret"]
        assert (
            await device.post("/api/v1/auth/totp/confirm", json={"code": pyotp.TOTP(secret).now()})
        ).status_code == 204
        assert (await device.get("/api/v1/departments")).status_code == 200
    finally:
        await admin.request("PUT", "/api/v1/role-policies/department_officer", json={"totp_required": False})


async def test_logins_are_audited(api: Api, world) -> None:
    await api.login(world.usernames["resident"], "bad-password-here")
    row = (
        await AuditLog.select()
        .where(AuditLog.action == "auth.login", AuditLog.actor_id == world.account_ids["resident"])
        .order_by(AuditLog.id, ascending=False)
        .first()
    )
    assert row["outcome"] == "denied" and row["client"] == api.ip


def _digest(token: str) -> str:
    from backend.accounts.sessions import token_digest

    return token_digest(token)
