"""Department systems authenticate with an API key: ``gak_<prefix>_<secret>``; we keep its SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from backend.departments.tables import Department
from backend.lib.errors import NotAuthenticated, NotFound
from backend.warnings.tables import DepartmentApiKey

PREFIX = "gak_"


@dataclass(frozen=True)
class ApiCaller:
    key_id: int
    department_code: str


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_key(department_code: str, name: str) -> str:
    department = await Department.select(Department.id).where(Department.code == department_code).first()
    if department is None:
        raise NotFound("No such department", "部门不存在", code="department.not_found")
    prefix = secrets.token_hex(4)
    key = f"{PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    await DepartmentApiKey.insert(
        DepartmentApiKey(department=department["id"], name=name[:100], prefix=prefix, key_hash=_digest(key))
    )
    return key


async def authenticate(header: str | None) -> ApiCaller:
    key = (header or "").strip()
    if key.lower().startswith("apikey "):
        key = key[7:].strip()
    if not key.startswith(PREFIX):
        raise NotAuthenticated("A department API key is required", "需要部门接口密钥", code="auth.api_key_required")
    row = (
        await DepartmentApiKey.select(DepartmentApiKey.id, DepartmentApiKey.department.code.as_alias("department_code"))
        .where(DepartmentApiKey.key_hash == _digest(key), DepartmentApiKey.revoked_at.is_null())
        .first()
    )
    if row is None:
        raise NotAuthenticated("Unknown or revoked API key", "接口密钥无效或已停用", code="auth.api_key_invalid")
    return ApiCaller(key_id=row["id"], department_code=row["department_code"])
