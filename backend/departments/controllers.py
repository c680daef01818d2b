from __future__ import annotations

import msgspec
from litestar import Controller, get

from backend.accounts.guards import ALL_ROLES, roles
from backend.departments.tables import Department, Service


class ServiceOut(msgspec.Struct):
    code: str
    name_zh: str
    name_en: str
    category: str
    description_zh: str
    decision_days: int


class DepartmentOut(msgspec.Struct):
    code: str
    name_zh: str
    name_en: str
    services: list[ServiceOut]


class CatalogueController(Controller):
    """The assistance catalogue: which department decides which service. Every role may read it."""

    path = "/api/v1/departments"
    tags = ["catalogue"]
    opt = roles(*ALL_ROLES)

    @get("/", operation_id="listDepartments")
    async def list_departments(self) -> list[DepartmentOut]:
        departments = await Department.select().order_by(Department.code)
        services = await Service.select().order_by(Service.code)
        by_department: dict[int, list[ServiceOut]] = {}
        for row in services:
            by_department.setdefault(row["department"], []).append(
                ServiceOut(
                    code=row["code"],
                    name_zh=row["name_zh"],
                    name_en=row["name_en"],
                    category=row["category"],
                    description_zh=row["description_zh"],
                    decision_days=row["decision_days"],
                )
            )
        return [
            DepartmentOut(
                code=row["code"],
                name_zh=row["name_zh"],
                name_en=row["name_en"],
                services=by_department.get(row["id"], []),
            )
            for row in departments
        ]
