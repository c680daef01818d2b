from __future__ import annotations

import msgspec
from litestar import Controller, get
from litestar.params import FromQuery

from backend.accounts.guards import STAFF, roles
from backend.orgs.tables import OrgLevel, OrgUnit


class OrgUnitOut(msgspec.Struct):
    id: int
    code: str
    name: str
    level: OrgLevel
    parent_id: int | None


class OrgUnitController(Controller):
    path = "/api/v1/org-units"
    tags = ["organisation"]
    opt = roles(*STAFF)

    @get("/", operation_id="listOrgUnits")
    async def list_units(self, level: FromQuery[OrgLevel | None] = None) -> list[OrgUnitOut]:
        """The organisation tree (city › district › street › community); names and codes are public facts."""
        query = OrgUnit.select(OrgUnit.id, OrgUnit.code, OrgUnit.name, OrgUnit.level, OrgUnit.parent).order_by(
            OrgUnit.code
        )
        if level is not None:
            query = query.where(OrgUnit.level == level)
        return [
            OrgUnitOut(
                id=row["id"], code=row["code"], name=row["name"], level=OrgLevel(row["level"]), parent_id=row["parent"]
            )
            for row in await query
        ]
