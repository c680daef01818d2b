from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, get
from litestar.params import Parameter

from backend.accounts.guards import roles
from backend.accounts.tables import Role
from backend.audit.services import verify_chain
from backend.audit.tables import AuditLog
from backend.lib.db import load_json


class AuditEntryOut(msgspec.Struct):
    id: int
    at: datetime
    actor_id: str | None
    actor_role: str
    action: str
    object_type: str
    object_id: str
    outcome: str
    client: str
    request_id: str
    detail: dict[str, Any]


class AuditPage(msgspec.Struct):
    items: list[AuditEntryOut]


class ChainOut(msgspec.Struct):
    rows_checked: int
    intact: bool
    first_broken_id: int | None


class AuditController(Controller):
    path = "/api/v1/audit"
    tags = ["audit"]
    opt = roles(Role.admin)

    @get("/", operation_id="listAuditEntries")
    async def list_entries(
        self,
        action: Annotated[str | None, Parameter(max_length=64)] = None,
        actor_id: Annotated[str | None, Parameter(max_length=36)] = None,
        object_id: Annotated[str | None, Parameter(max_length=64)] = None,
        before_id: Annotated[int | None, Parameter(ge=1)] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
    ) -> AuditPage:
        query = AuditLog.select().order_by(AuditLog.id, ascending=False).limit(limit)
        for column, value in (
            (AuditLog.action, action),
            (AuditLog.actor_id, actor_id),
            (AuditLog.object_id, object_id),
        ):
            if value is not None:
                query = query.where(column == value)
        if before_id is not None:
            query = query.where(AuditLog.id < before_id)
        rows = await query
        return AuditPage(
            items=[
                AuditEntryOut(
                    **{key: row[key] for key in AuditEntryOut.__struct_fields__ if key != "detail"},
                    detail=load_json(row["detail"]),
                )
                for row in rows
            ]
        )

    @get("/verify", operation_id="verifyAuditChain")
    async def verify(self) -> ChainOut:
        report = await verify_chain()
        return ChainOut(rows_checked=report.rows, intact=report.intact, first_broken_id=report.first_broken_id)
