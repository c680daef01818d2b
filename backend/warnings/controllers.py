from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from backend.accounts.guards import roles
from backend.accounts.principal import Principal
from backend.accounts.tables import Role
from backend.audit.services import Actor, record
from backend.idempotency.services import check_key, once
from backend.lib import pii
from backend.lib.errors import Conflict, InvalidInput
from backend.lib.net import client_address, request_id
from backend.outbox.relaying import relay_soon
from backend.warnings import apikeys
from backend.warnings.schemas import (
    ApiKeyIn,
    ApiKeyOut,
    UnmatchedOut,
    WarningBatchIn,
    WarningBatchOut,
    WarningResultOut,
    WarningTypeIn,
    WarningTypeOut,
)
from backend.warnings.services import IncomingWarning, ingest
from backend.warnings.tables import DeadlineUnit, Warning, WarningStatus, WarningType

MAX_BATCH_BYTES = 2 * 1024 * 1024


def batch_out(results: list[Any]) -> WarningBatchOut:
    return WarningBatchOut(
        created=sum(r.status == "created" for r in results),
        duplicates=sum(r.status == "duplicate" for r in results),
        rejected=sum(r.status == "rejected" for r in results),
        results=[WarningResultOut(**{f: getattr(r, f) for f in WarningResultOut.__struct_fields__}) for r in results],
    )


class WarningController(Controller):
    path = "/api/v1/warnings"
    tags = ["warnings"]

    @post(
        "/",
        operation_id="postWarnings",
        opt={"public": True},
        status_code=HTTP_200_OK,
        request_max_body_size=MAX_BATCH_BYTES,
    )
    async def post_warnings(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        """A department system's batch (≤ 1,000). Authenticated by ``X-Api-Key``; ``Idempotency-Key`` required.
        Each row is answered: created (with its outcome), duplicate (already had it) or rejected (why)."""
        caller = await apikeys.authenticate(request.headers.get("x-api-key") or request.headers.get("authorization"))
        key = check_key(request.headers.get("idempotency-key"))
        body = await request.body()

        async def run() -> tuple[int, bytes]:
            try:
                batch = msgspec.json.decode(body, type=WarningBatchIn)
            except msgspec.ValidationError as exc:
                raise InvalidInput(
                    f"The batch is not valid: {exc}", "批量数据格式不正确", code="warning.batch_invalid"
                ) from exc
            except msgspec.DecodeError as exc:
                raise InvalidInput("The body is not JSON", "请求体不是 JSON", code="warning.batch_invalid") from exc
            actor = Actor(None, f"system:{caller.department_code}", client_address(request), request_id(request))
            results = await ingest(
                caller.department_code,
                [
                    IncomingWarning(
                        source_record_id=w.source_record_id,
                        type_code=w.type,
                        id_number=w.id_number,
                        household_id=w.household_id,
                        lon=w.lon,
                        lat=w.lat,
                        crs=w.crs,
                        occurred_on=w.occurred_on,
                        facts=dict(w.facts),
                    )
                    for w in batch.warnings
                ],
                actor=actor,
            )
            return HTTP_200_OK, msgspec.json.encode(batch_out(results))

        answer = await once(f"apikey:{caller.key_id}", key, body, run)
        await relay_soon(request.app)
        headers = {"Idempotent-Replayed": "true"} if answer.replayed else {}
        return Response(answer.body, status_code=answer.status_code, media_type="application/json", headers=headers)

    @get("/unmatched", operation_id="listUnmatchedWarnings", opt=roles(Role.supervisor, Role.admin))
    async def unmatched(self, request: Request[Principal, Any, Any]) -> list[UnmatchedOut]:
        """Warnings whose ID number matched no household: kept for a person to resolve, never dropped."""
        query = Warning.select().where(Warning.status == WarningStatus.unmatched).order_by(Warning.received_at)
        if request.user.role == Role.supervisor:
            query = query.where(Warning.street == request.user.street_id)
        rows = await query.limit(500)
        return [
            UnmatchedOut(
                id=str(row["id"]),
                source=row["source"],
                source_record_id=row["source_record_id"],
                type_code=row["type_code"],
                id_number_masked=pii.mask_id_number(pii.unseal_id_number(row["id_number_sealed"]))
                if row["id_number_sealed"]
                else None,
                received_at=row["received_at"].isoformat(),
                street_id=row["street"],
            )
            for row in rows
        ]

    @get("/types", operation_id="listWarningTypes", opt=roles(Role.admin, Role.supervisor, Role.grid_worker))
    async def list_types(self) -> list[WarningTypeOut]:
        rows = await WarningType.select().order_by(WarningType.priority, WarningType.code)
        return [WarningTypeOut(**{f: row[f] for f in WarningTypeOut.__struct_fields__}) for row in rows]

    @post("/types", operation_id="createWarningType", opt=roles(Role.admin), status_code=HTTP_201_CREATED)
    async def create_type(self, request: Request[Principal, Any, Any], data: JSONBody[WarningTypeIn]) -> WarningTypeOut:
        try:
            unit = DeadlineUnit(data.deadline_unit)
        except ValueError as exc:
            raise InvalidInput(
                "deadline_unit is working_days, calendar_days or hours", "期限单位不正确", code="warning.deadline_unit"
            ) from exc
        if await WarningType.exists().where(WarningType.code == data.code):
            raise Conflict("A warning type with this code exists", "该预警类型已存在", code="warning.type_exists")
        await WarningType.insert(
            WarningType(
                code=data.code,
                name_zh=data.name_zh,
                name_en=data.name_en,
                priority=data.priority,
                deadline_amount=data.deadline_amount,
                deadline_unit=unit,
                builtin=False,
            )
        )
        await record("warning_type.create", actor=request.user.actor, object_type="warning_type", object_id=data.code)
        return WarningTypeOut(
            code=data.code,
            name_zh=data.name_zh,
            name_en=data.name_en,
            priority=data.priority,
            deadline_amount=data.deadline_amount,
            deadline_unit=unit.value,
            builtin=False,
            active=True,
        )


class ApiKeyController(Controller):
    path = "/api/v1/departments/{department_code:str}/api-keys"
    tags = ["warnings"]
    opt = roles(Role.admin)

    @post("/", operation_id="createDepartmentApiKey", status_code=HTTP_201_CREATED)
    async def create(
        self, request: Request[Principal, Any, Any], department_code: FromPath[str], data: JSONBody[ApiKeyIn]
    ) -> ApiKeyOut:
        key = await apikeys.create_key(department_code, data.name)
        await record(
            "department.api_key_create",
            actor=request.user.actor,
            object_type="department",
            object_id=department_code,
            detail={"name": data.name},
        )
        return ApiKeyOut(department=department_code, api_key=key)
