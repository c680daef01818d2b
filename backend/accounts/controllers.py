from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, get, patch, post, put
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from backend.accounts import services, sessions
from backend.accounts.guards import ALL_ROLES, ALLOW_MFA_PENDING_OPT, roles
from backend.accounts.principal import Principal
from backend.accounts.rate_limit import login_rate_limit
from backend.accounts.schemas import (
    AccountIn,
    AccountOut,
    AccountPage,
    AccountPatch,
    LoginIn,
    MeOut,
    PasswordChangeIn,
    RefreshIn,
    RevokedOut,
    RolePolicyIn,
    RolePolicyOut,
    TokensOut,
    TotpConfirmIn,
    TotpEnrolOut,
)
from backend.accounts.tables import Account, Role, RolePolicy
from backend.audit.services import Actor, record
from backend.audit.tables import Outcome
from backend.lib import pii
from backend.lib.errors import NotAuthenticated, NotFound
from backend.lib.net import client_address, request_id

LOGIN_FAILURE_STORE = "login_failures"


def _tokens_out(tokens: sessions.IssuedTokens, role: Role, mfa: bool) -> TokensOut:
    return TokensOut(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        token_type="Bearer",  # noqa: S106 — the scheme name, not a secret
        access_expires_at=tokens.access_expires_at,
        refresh_expires_at=tokens.refresh_expires_at,
        role=role,
        mfa_enrolment_required=mfa,
    )


def masked_phone(sealed: str | None) -> str | None:
    return pii.mask_phone(pii.unseal_phone(sealed)) if sealed else None


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]

    @post(
        "/login",
        operation_id="login",
        opt={"public": True},
        middleware=[login_rate_limit.middleware],
        status_code=HTTP_200_OK,
    )
    async def login(self, request: Request[Any, Any, Any], data: JSONBody[LoginIn]) -> TokensOut:
        result = await services.login(
            data.login,
            data.password,
            data.otp,
            store=request.app.stores.get(LOGIN_FAILURE_STORE),
            client=client_address(request),
            user_agent=request.headers.get("user-agent", ""),
            request_id=request_id(request),
        )
        return _tokens_out(result.tokens, result.role, result.mfa_enrolment_required)

    @post("/refresh", operation_id="refreshTokens", opt={"public": True}, status_code=HTTP_200_OK)
    async def refresh(self, request: Request[Any, Any, Any], data: JSONBody[RefreshIn]) -> TokensOut:
        actor = Actor(None, "", client_address(request), request_id(request))
        try:
            tokens = await sessions.refresh_session(data.refresh_token)
        except sessions.RefreshRejected as exc:
            await record("auth.refresh", actor=actor, outcome=Outcome.denied, detail={"reason": exc.reason})
            raise NotAuthenticated("Sign in again", "请重新登录", code=f"auth.refresh_{exc.reason}") from exc
        session = (
            await sessions.AuthSession.select(
                sessions.AuthSession.mfa_pending, sessions.AuthSession.account.role.as_alias("role")
            )
            .where(sessions.AuthSession.id == tokens.session_id)
            .first()
        )
        assert session is not None
        return _tokens_out(tokens, Role(session["role"]), session["mfa_pending"])

    @post(
        "/logout",
        operation_id="logout",
        opt={**roles(*ALL_ROLES), ALLOW_MFA_PENDING_OPT: True},
        status_code=HTTP_204_NO_CONTENT,
    )
    async def logout(self, request: Request[Principal, Any, Any]) -> None:
        principal = request.user
        await sessions.revoke_session(principal.session_id, "logout")
        await record("auth.logout", actor=principal.actor, object_type="session", object_id=str(principal.session_id))

    @get("/me", operation_id="me", opt={**roles(*ALL_ROLES), ALLOW_MFA_PENDING_OPT: True})
    async def me(self, request: Request[Principal, Any, Any]) -> MeOut:
        principal = request.user
        row = (
            await Account.select(Account.phone_sealed, Account.totp_enabled)
            .where(Account.id == principal.account_id)
            .first()
        )
        assert row is not None
        return MeOut(
            id=principal.account_id,
            username=principal.username,
            display_name=principal.display_name,
            role=principal.role,
            phone_masked=masked_phone(row["phone_sealed"]),
            street_id=principal.street_id,
            department_id=principal.department_id,
            grid_codes=sorted(principal.grid_codes),
            totp_enabled=row["totp_enabled"],
            mfa_enrolment_required=principal.mfa_pending,
        )

    @post(
        "/totp/enrol",
        operation_id="startTotpEnrolment",
        opt={**roles(*ALL_ROLES), ALLOW_MFA_PENDING_OPT: True},
        status_code=HTTP_200_OK,
    )
    async def totp_enrol(self, request: Request[Principal, Any, Any]) -> TotpEnrolOut:
        secret, uri = await services.start_totp_enrolment(request.user)
        return TotpEnrolOut(secret=secret, otpauth_uri=uri)

    @post(
        "/totp/confirm",
        operation_id="confirmTotpEnrolment",
        opt={**roles(*ALL_ROLES), ALLOW_MFA_PENDING_OPT: True},
        status_code=HTTP_204_NO_CONTENT,
    )
    async def totp_confirm(self, request: Request[Principal, Any, Any], data: JSONBody[TotpConfirmIn]) -> None:
        await services.confirm_totp_enrolment(request.user, data.code)

    @post("/password", operation_id="changePassword", opt=roles(*ALL_ROLES), status_code=HTTP_204_NO_CONTENT)
    async def change_password(self, request: Request[Principal, Any, Any], data: JSONBody[PasswordChangeIn]) -> None:
        principal = request.user
        await services.change_password(
            principal.account_id,
            data.current_password,
            data.new_password,
            actor=principal.actor,
            keep_session=principal.session_id,
        )


def _account_out(row: dict[str, Any]) -> AccountOut:
    return AccountOut(
        id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        role=Role(row["role"]),
        phone_masked=masked_phone(row["phone_sealed"]),
        is_active=row["is_active"],
        totp_enabled=row["totp_enabled"],
        street_id=row["street"],
        department_id=row["department"],
    )


_ACCOUNT_COLUMNS = (
    Account.id,
    Account.username,
    Account.display_name,
    Account.role,
    Account.phone_sealed,
    Account.is_active,
    Account.totp_enabled,
    Account.street,
    Account.department,
)


class AccountController(Controller):
    path = "/api/v1/accounts"
    tags = ["accounts"]
    opt = roles(Role.admin)

    @get("/", operation_id="listAccounts")
    async def list_accounts(
        self,
        role: FromQuery[Role | None] = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        offset: Annotated[int, Parameter(ge=0)] = 0,
    ) -> AccountPage:
        query = Account.select(*_ACCOUNT_COLUMNS).order_by(Account.username)
        count = Account.count()
        if role is not None:
            query = query.where(Account.role == role)
            count = count.where(Account.role == role)
        rows = await query.limit(limit).offset(offset)
        return AccountPage(items=[_account_out(row) for row in rows], total=await count)

    @post("/", operation_id="createAccount", status_code=HTTP_201_CREATED)
    async def create_account(self, request: Request[Principal, Any, Any], data: JSONBody[AccountIn]) -> AccountOut:
        account_id = await services.create_account(
            services.NewAccount(
                username=data.username,
                display_name=data.display_name,
                password=data.password,
                role=data.role,
                phone=data.phone,
                street_code=data.street_code,
                department_code=data.department_code,
            ),
            actor=request.user.actor,
        )
        return await self._one(account_id)

    @get("/{account_id:uuid}", operation_id="getAccount")
    async def get_account(self, account_id: FromPath[UUID]) -> AccountOut:
        return await self._one(account_id)

    @patch("/{account_id:uuid}", operation_id="changeAccount")
    async def change_account(
        self, request: Request[Principal, Any, Any], account_id: FromPath[UUID], data: JSONBody[AccountPatch]
    ) -> AccountOut:
        await services.change_account(
            account_id,
            services.AccountChange(
                display_name=data.display_name,
                role=data.role,
                is_active=data.is_active,
                street_code=data.street_code,
                department_code=data.department_code,
            ),
            actor=request.user.actor,
        )
        return await self._one(account_id)

    @post("/{account_id:uuid}/revoke-sessions", operation_id="revokeAccountSessions", status_code=HTTP_200_OK)
    async def revoke_sessions(self, request: Request[Principal, Any, Any], account_id: FromPath[UUID]) -> RevokedOut:
        await self._one(account_id)
        count = await sessions.revoke_all_sessions(account_id, "admin_revoke")
        await record(
            "account.revoke_sessions",
            actor=request.user.actor,
            object_type="account",
            object_id=str(account_id),
            detail={"sessions_revoked": count},
        )
        return RevokedOut(sessions_revoked=count)

    @staticmethod
    async def _one(account_id: FromPath[UUID]) -> AccountOut:
        row = await Account.select(*_ACCOUNT_COLUMNS).where(Account.id == account_id).first()
        if row is None:
            raise NotFound(code="account.not_found")
        return _account_out(row)


class RolePolicyController(Controller):
    path = "/api/v1/role-policies"
    tags = ["accounts"]
    opt = roles(Role.admin)

    @get("/", operation_id="listRolePolicies")
    async def list_policies(self) -> list[RolePolicyOut]:
        rows = {row["role"]: row["totp_required"] for row in await RolePolicy.select()}
        return [RolePolicyOut(role=role, totp_required=bool(rows.get(role.value, False))) for role in Role]

    @put("/{role:str}", operation_id="setRolePolicy")
    async def set_policy(
        self, request: Request[Principal, Any, Any], role: FromPath[Role], data: JSONBody[RolePolicyIn]
    ) -> RolePolicyOut:
        await services.set_role_policy(role, data.totp_required, actor=request.user.actor)
        return RolePolicyOut(role=role, totp_required=data.totp_required)
