"""Function-level access: which roles may call a route. Object-level scope lives in the services."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from backend.accounts.principal import Principal
from backend.accounts.tables import Role
from backend.lib.errors import Forbidden

ROLES_OPT = "roles"
ALLOW_MFA_PENDING_OPT = "allow_mfa_pending"


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    return connection.user  # type: ignore[no-any-return]


def role_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Every API route names its roles in ``opt["roles"]``; a route that names none is closed."""
    if handler.opt.get("public"):
        return
    principal = principal_of(connection)
    if principal.mfa_pending and not handler.opt.get(ALLOW_MFA_PENDING_OPT):
        raise Forbidden(
            "Set up your authenticator app before continuing",
            "请先绑定动态验证码（身份验证器）",
            code="auth.mfa_enrolment_required",
        )
    roles: frozenset[Role] = frozenset(handler.opt.get(ROLES_OPT, ()))
    if principal.role not in roles:
        raise Forbidden()


def roles(*allowed: Role) -> dict[str, Any]:
    """``opt=roles(Role.admin, …)`` for a controller or handler."""
    return {ROLES_OPT: frozenset(allowed)}


ALL_ROLES = tuple(Role)
STAFF = (Role.grid_worker, Role.supervisor, Role.department_officer, Role.admin)
