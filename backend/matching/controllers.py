"""Smart matching over HTTP: the rules for the phone, a household's facts, and its candidate services."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post, put
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_304_NOT_MODIFIED

from backend.accounts.guards import ALL_ROLES, roles
from backend.accounts.principal import Principal
from backend.accounts.tables import Role
from backend.departments.tables import Service
from backend.matching import services
from backend.matching.facts import FACTS, checked_facts
from backend.matching.schemas import (
    FactOut,
    FactsIn,
    FactsOut,
    MatchIn,
    MatchOut,
    RulesIn,
    RulesOut,
    RulesSaved,
    RuleVersionOut,
    ServiceMatchOut,
)
from backend.matching.tables import RuleVersion

FIELD_ROLES = roles(Role.grid_worker, Role.supervisor, Role.admin)


class RulesController(Controller):
    path = "/api/v1/matching"
    tags = ["matching"]

    @get("/rules", operation_id="getRules", opt=roles(*ALL_ROLES))
    async def rules(self, request: Request[Principal, Any, Any]) -> Response[RulesOut]:
        """The current rule set as data; the phone keeps it and matches offline. ETag = version."""
        current = await services.current_rules()
        etag = f'"rules-{current.version}"'
        if request.headers.get("if-none-match") == etag:
            return Response(None, status_code=HTTP_304_NOT_MODIFIED, headers={"ETag": etag})  # type: ignore[arg-type]
        body = RulesOut(
            version=current.version,
            params=current.params,
            services=current.services,
            materials=current.materials,
            facts=[
                FactOut(
                    name=fact.name,
                    kind=fact.kind,
                    label_zh=fact.label_zh,
                    label_en=fact.label_en,
                    unit_zh=fact.unit_zh,
                    unit_en=fact.unit_en,
                    options=list(fact.options),
                )
                for fact in FACTS
            ],
        )
        return Response(body, headers={"ETag": etag})

    @put("/rules", operation_id="saveRules", opt=roles(Role.admin), status_code=HTTP_201_CREATED)
    async def save(self, request: Request[Principal, Any, Any], data: JSONBody[RulesIn]) -> RulesSaved:
        """A change to the rules is a new version; decisions made earlier keep naming theirs."""
        return RulesSaved(version=await services.save_rules(request.user, data.document, data.note))

    @get("/rules/versions", operation_id="listRuleVersions", opt=roles(Role.admin))
    async def versions(self) -> list[RuleVersionOut]:
        rows = await RuleVersion.select(
            RuleVersion.id, RuleVersion.note, RuleVersion.created_by, RuleVersion.created_at
        ).order_by(RuleVersion.id, ascending=False)
        return [
            RuleVersionOut(
                version=row["id"],
                note=row["note"],
                created_by=str(row["created_by"]) if row["created_by"] else None,
                created_at=str(row["created_at"]),
            )
            for row in rows
        ]


class HouseholdMatchingController(Controller):
    path = "/api/v1/households/{household_id:uuid}"
    tags = ["matching"]
    opt = FIELD_ROLES

    @get("/facts", operation_id="getHouseholdFacts")
    async def facts(self, request: Request[Principal, Any, Any], household_id: FromPath[UUID]) -> FactsOut:
        await services.scoped_household(request.user, household_id, "household.facts")
        return FactsOut(facts=await services.known_facts(household_id))

    @put("/facts", operation_id="recordHouseholdFacts")
    async def record_facts(
        self, request: Request[Principal, Any, Any], household_id: FromPath[UUID], data: JSONBody[FactsIn]
    ) -> FactsOut:
        await services.record_facts(request.user, household_id, checked_facts(dict(data.facts)))
        return FactsOut(facts=await services.known_facts(household_id))

    @post("/match", operation_id="matchHousehold", status_code=HTTP_200_OK)
    async def match(
        self, request: Request[Principal, Any, Any], household_id: FromPath[UUID], data: JSONBody[MatchIn]
    ) -> MatchOut:
        """Every service with its verdict and the reasons to read aloud; likely ones first."""
        rules, facts, found = await services.match_household(
            request.user, household_id, checked_facts(dict(data.facts))
        )
        catalogue = {
            row["code"]: row
            for row in await Service.select(
                Service.code, Service.name_zh, Service.name_en, Service.department.code.as_alias("department")
            )
        }
        return MatchOut(
            rule_version=rules.version,
            facts=facts,
            matches=[
                ServiceMatchOut(
                    service=item.service,
                    name_zh=catalogue.get(item.service, {}).get("name_zh", item.service),
                    name_en=catalogue.get(item.service, {}).get("name_en", item.service),
                    department=catalogue.get(item.service, {}).get("department", ""),
                    verdict=item.verdict.value,
                    reasons_zh=item.reasons_zh,
                    reasons_en=item.reasons_en,
                    missing=item.missing,
                    materials=item.materials,
                )
                for item in found
                if item.service in catalogue  # a service retired from the catalogue is never offered
            ],
        )
