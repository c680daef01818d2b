"""The dead-letter list for admins: what failed on every try, why, and a way to run it again."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import FromQuery, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK

from backend.accounts.guards import roles
from backend.accounts.principal import Principal
from backend.accounts.tables import Role
from backend.lib.db import as_utc, load_json
from backend.lib.schema import InputStruct, OutputStruct
from backend.outbox import deadletters
from backend.outbox.relaying import relay_soon


class DeadLetterOut(OutputStruct):
    id: int
    message_id: int
    kind: str
    payload: dict[str, Any]
    error: str
    attempts: int
    parked_at: datetime
    requeued_at: datetime | None
    requeued_message_id: int | None


class RequeueIn(InputStruct):
    ids: Annotated[list[int], msgspec.Meta(min_length=1, max_length=500)]


class RequeueOut(OutputStruct):
    requeued: list[int]
    not_found: list[int]


class DeadLetterController(Controller):
    path = "/api/v1/dead-letters"
    tags = ["jobs"]
    opt = roles(Role.admin)

    @get("/", operation_id="listDeadLetters")
    async def list_dead_letters(
        self,
        kind: Annotated[str | None, Parameter(max_length=48)] = None,
        include_requeued: FromQuery[bool] = False,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        offset: Annotated[int, Parameter(ge=0)] = 0,
    ) -> list[DeadLetterOut]:
        """Jobs parked after their last try, newest first; re-queued ones only when asked for."""
        rows = await deadletters.list_dead_letters(
            kind=kind, include_requeued=include_requeued, limit=limit, offset=offset
        )
        return [
            DeadLetterOut(
                id=row["id"],
                message_id=row["message_id"],
                kind=row["kind"],
                payload=load_json(row["payload"]),
                error=row["error"],
                attempts=row["attempts"],
                parked_at=as_utc(row["parked_at"]),
                requeued_at=as_utc(row["requeued_at"]) if row["requeued_at"] else None,
                requeued_message_id=row["requeued_message_id"],
            )
            for row in rows
        ]

    @post("/requeue", operation_id="requeueDeadLetters", status_code=HTTP_200_OK)
    async def requeue(self, request: Request[Principal, Any, Any], data: JSONBody[RequeueIn]) -> RequeueOut:
        """Hand each listed dead letter to the worker again, as a new outbox message."""
        done, missing = await deadletters.requeue(data.ids, actor=request.user.actor, by=request.user.account_id)
        await relay_soon(request.app)
        return RequeueOut(requeued=done, not_found=missing)
