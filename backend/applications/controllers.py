"""Applications over HTTP: a grid worker submits on the family's behalf; everyone concerned reads one status."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath
from litestar.status_codes import HTTP_201_CREATED

from backend.accounts.guards import roles
from backend.accounts.principal import Principal
from backend.accounts.tables import Role
from backend.applications import services
from backend.applications.schemas import ApplicationBrief, ApplicationIn, ApplicationOut, ResidentApplicationOut
from backend.households.services import scoped_household
from backend.idempotency.services import check_key, once
from backend.lib.errors import InvalidInput
from backend.outbox.relaying import relay_soon


def _application_id(key: str) -> UUID:
    try:
        return UUID(key)
    except ValueError:
        raise InvalidInput(
            "The Idempotency-Key of an application is its id: a UUID made on the phone",
            "申请的 Idempotency-Key 即申请编号，须为手机生成的 UUID",
            code="application.key_not_uuid",
        ) from None


class HouseholdApplicationController(Controller):
    path = "/api/v1/households/{household_id:uuid}/applications"
    tags = ["applications"]

    @post("/", operation_id="submitApplication", opt=roles(Role.grid_worker), status_code=HTTP_201_CREATED)
    async def submit(self, request: Request[Principal, Any, Any], household_id: FromPath[UUID]) -> Response[bytes]:
        """An application on the household's behalf (代办). ``Idempotency-Key`` (a UUID) is the application's
        id: a retry gets the same answer, the same key with another body gets 409. Routing to the
        departments happens in the background; the answer shows each service as "submitted" until then."""
        await scoped_household(request.user, household_id, "application.create")
        key = check_key(request.headers.get("idempotency-key"))
        application_id = _application_id(key)
        body = await request.body()

        async def run() -> tuple[int, bytes]:
            try:
                data = msgspec.json.decode(body, type=ApplicationIn)
            except msgspec.ValidationError as exc:
                raise InvalidInput(
                    f"The application is not valid: {exc}", f"申请内容不符合要求：{exc}", code="application.invalid"
                ) from exc
            except msgspec.DecodeError as exc:
                raise InvalidInput("The body is not JSON", "请求体不是 JSON", code="application.invalid") from exc
            status = await services.submit(request.user, household_id, application_id, data)
            return HTTP_201_CREATED, msgspec.json.encode(status)

        answer = await once(f"account:{request.user.account_id}", key, body, run)
        await relay_soon(request.app)
        return Response(
            answer.body,
            status_code=answer.status_code,
            media_type="application/json",
            headers={"Idempotent-Replayed": "true"} if answer.replayed else {},
        )

    @get("/", operation_id="listHouseholdApplications", opt=roles(Role.grid_worker, Role.supervisor, Role.admin))
    async def list_for_household(
        self, request: Request[Principal, Any, Any], household_id: FromPath[UUID]
    ) -> list[ApplicationBrief]:
        """The household's applications, newest first, each with its one-sentence status."""
        return await services.household_applications(request.user, household_id)


class ApplicationController(Controller):
    path = "/api/v1/applications"
    tags = ["applications"]

    @get("/mine", operation_id="listMyApplications", opt=roles(Role.resident))
    async def mine(self, request: Request[Principal, Any, Any]) -> list[ResidentApplicationOut]:
        """Applications made for the signed-in resident's household (by a grid worker, on its behalf),
        newest first, each with its services' states and one plain-language sentence."""
        return await services.resident_applications(request.user)

    @get(
        "/{application_id:uuid}",
        operation_id="getApplication",
        opt=roles(Role.grid_worker, Role.supervisor, Role.admin, Role.resident),
    )
    async def get_application(
        self, request: Request[Principal, Any, Any], application_id: FromPath[UUID]
    ) -> ApplicationOut:
        """Every service's state and one plain-language sentence (zh and en) for the whole application."""
        await services.scoped_application(request.user, application_id, "application.view")
        return await services.application_status(application_id)
