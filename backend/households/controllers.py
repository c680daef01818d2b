from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from backend.accounts.guards import roles
from backend.accounts.principal import Principal
from backend.accounts.tables import Role
from backend.households import services
from backend.households.placing import place_household
from backend.households.schemas import (
    HouseholdDetail,
    HouseholdIn,
    HouseholdPage,
    HouseholdSummary,
    LookupIn,
    PlacedOut,
    PlaceIn,
    RevealIn,
    RevealOut,
)
from backend.households.tables import HouseholdCategory

REVEAL_STORE = "reveals"


class HouseholdController(Controller):
    path = "/api/v1/households"
    tags = ["households"]
    opt = roles(Role.grid_worker, Role.supervisor, Role.admin)

    @get("/", operation_id="listHouseholds")
    async def list_households(
        self,
        request: Request[Principal, Any, Any],
        grid_code: Annotated[str | None, Parameter(max_length=32)] = None,
        category: FromQuery[HouseholdCategory | None] = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        offset: Annotated[int, Parameter(ge=0)] = 0,
    ) -> HouseholdPage:
        items, total = await services.list_households(
            request.user, grid_code=grid_code, category=category, limit=limit, offset=offset
        )
        return HouseholdPage(items=items, total=total, limit=limit, offset=offset)

    @post("/", operation_id="createHousehold", status_code=HTTP_201_CREATED)
    async def create_household(
        self, request: Request[Principal, Any, Any], data: JSONBody[HouseholdIn]
    ) -> HouseholdDetail:
        household_id = await services.create_household(request.user, data)
        return await services.get_household(request.user, household_id)

    @get("/{household_id:uuid}", operation_id="getHousehold")
    async def get_household(
        self, request: Request[Principal, Any, Any], household_id: FromPath[UUID]
    ) -> HouseholdDetail:
        return await services.get_household(request.user, household_id)

    @post(
        "/{household_id:uuid}/place",
        operation_id="placeHousehold",
        opt=roles(Role.supervisor, Role.admin),
        status_code=HTTP_200_OK,
    )
    async def place(
        self, request: Request[Principal, Any, Any], household_id: FromPath[UUID], data: JSONBody[PlaceIn]
    ) -> PlacedOut:
        """Put a household no grid contained into a grid; its open task moves to that grid's worker."""
        return PlacedOut(grid_code=await place_household(request.user, household_id, data))

    @post("/lookup", operation_id="lookupHouseholdByIdNumber", status_code=HTTP_200_OK)
    async def lookup(self, request: Request[Principal, Any, Any], data: JSONBody[LookupIn]) -> HouseholdSummary:
        return await services.lookup_by_id_number(request.user, data.id_number)

    @post("/{household_id:uuid}/reveal", operation_id="revealHouseholdField", status_code=HTTP_200_OK)
    async def reveal(
        self, request: Request[Principal, Any, Any], household_id: FromPath[UUID], data: JSONBody[RevealIn]
    ) -> RevealOut:
        value = await services.reveal(
            request.user,
            household_id,
            data.field,
            data.member_id,
            data.reason,
            store=request.app.stores.get(REVEAL_STORE),
        )
        return RevealOut(field=data.field, value=value)
