"""The department officers' inbox: their department's cases, one case, and the decision steps."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery, JSONBody, Parameter, QueryParameter
from litestar.status_codes import HTTP_200_OK

from backend.accounts.guards import roles
from backend.accounts.principal import Principal
from backend.accounts.tables import Role
from backend.applications.tables import CaseState
from backend.cases import services
from backend.cases.schemas import ApproveIn, CaseDetail, CasePage, InfoRequestIn, RejectIn
from backend.outbox.relaying import relay_soon

OFFICERS = roles(Role.department_officer)


class CaseController(Controller):
    path = "/api/v1/cases"
    tags = ["cases"]

    @get("/", operation_id="listCases", opt=roles(Role.department_officer, Role.admin))
    async def list_cases(
        self,
        request: Request[Principal, Any, Any],
        case_state: Annotated[CaseState | None, QueryParameter(name="state")] = None,
        overdue: FromQuery[bool | None] = None,
        service: Annotated[str | None, Parameter(max_length=48)] = None,
        include_decided: FromQuery[bool] = False,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        offset: Annotated[int, Parameter(ge=0)] = 0,
    ) -> CasePage:
        """The caller's department's cases, soonest deadline first (undecided ones unless asked)."""
        items, total = await services.list_cases(
            request.user,
            state=case_state,
            overdue=overdue,
            service=service,
            include_decided=include_decided,
            limit=limit,
            offset=offset,
        )
        return CasePage(items=items, total=total)

    @get("/{case_id:uuid}", operation_id="getCase", opt=roles(Role.department_officer, Role.admin))
    async def get_case(self, request: Request[Principal, Any, Any], case_id: FromPath[UUID]) -> CaseDetail:
        """One case: the household masked, the application's answers for this service, materials, consent."""
        return await services.case_detail(request.user, case_id)

    @post("/{case_id:uuid}/accept", operation_id="acceptCase", opt=OFFICERS, status_code=HTTP_200_OK)
    async def accept(self, request: Request[Principal, Any, Any], case_id: FromPath[UUID]) -> CaseDetail:
        detail = await services.step(request.user, case_id, "accept")
        await relay_soon(request.app)
        return detail

    @post("/{case_id:uuid}/request-info", operation_id="requestCaseInfo", opt=OFFICERS, status_code=HTTP_200_OK)
    async def request_info(
        self, request: Request[Principal, Any, Any], case_id: FromPath[UUID], data: JSONBody[InfoRequestIn]
    ) -> CaseDetail:
        """Ask for more information: the household's grid worker gets a visit task saying what is needed."""
        detail = await services.step(request.user, case_id, "request_info", message=data.message)
        await relay_soon(request.app)
        return detail

    @post("/{case_id:uuid}/approve", operation_id="approveCase", opt=OFFICERS, status_code=HTTP_200_OK)
    async def approve(
        self, request: Request[Principal, Any, Any], case_id: FromPath[UUID], data: JSONBody[ApproveIn]
    ) -> CaseDetail:
        detail = await services.step(
            request.user,
            case_id,
            "approve",
            amount_yuan=data.amount_yuan,
            period=data.period.value,
            period_months=data.period_months,
        )
        await relay_soon(request.app)
        return detail

    @post("/{case_id:uuid}/reject", operation_id="rejectCase", opt=OFFICERS, status_code=HTTP_200_OK)
    async def reject(
        self, request: Request[Principal, Any, Any], case_id: FromPath[UUID], data: JSONBody[RejectIn]
    ) -> CaseDetail:
        detail = await services.step(request.user, case_id, "reject", reason=data.reason)
        await relay_soon(request.app)
        return detail
