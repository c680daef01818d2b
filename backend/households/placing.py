"""Placing a household that no grid contains (a resident who gave only an address, a point outside
every grid): the supervisor or admin puts it in a grid, and its open task follows to that grid's worker."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from backend.accounts.principal import Principal
from backend.accounts.tables import Role
from backend.audit.services import record
from backend.households.schemas import PlaceIn
from backend.households.services import scoped_household, where_household
from backend.households.tables import Household, PlacementFlag
from backend.lib.db import write_transaction
from backend.lib.errors import InvalidInput
from backend.tasks.rehome import rehome_open_tasks


async def place_household(principal: Principal, household_id: UUID, data: PlaceIn) -> str:
    """Returns the grid code. Supervisors place into their own street's grids; admins anywhere."""
    row = await scoped_household(principal, household_id, "household.place")
    place = await where_household(data)
    if place is None or place.grid_code is None:
        raise InvalidInput("That place is in no grid", "该位置不在任何网格内", code="household.place_outside_grids")
    if principal.role == Role.supervisor and place.street_id != principal.street_id:
        raise InvalidInput("That grid is not in your street", "该网格不在您的街道", code="household.grid_out_of_scope")
    changes: dict[Any, Any] = {
        Household.grid_code: place.grid_code,
        Household.placement: PlacementFlag.inside,
        Household.community: place.community_id,
        Household.street: place.street_id,
        Household.updated_at: datetime.now(UTC),
    }
    if place.lon is not None:
        changes[Household.lon] = place.lon
        changes[Household.lat] = place.lat
    async with write_transaction():
        await Household.update(changes).where(Household.id == household_id)
        moved = await rehome_open_tasks([household_id])
    await record(
        "household.place",
        actor=principal.actor,
        object_type="household",
        object_id=str(household_id),
        detail={"from_grid": row["grid_code"], "to_grid": place.grid_code, "tasks_moved": moved},
    )
    return place.grid_code
