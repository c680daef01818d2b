"""Rule versions, a household's known facts, and matching it to the services it likely qualifies for."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from backend.accounts.principal import Principal
from backend.audit.services import record
from backend.households.services import scoped_household

__all__ = ["scoped_household"]
from backend.households.tables import Household, HouseholdCategory, HouseholdMember
from backend.lib.db import load_json, write_transaction
from backend.lib.errors import InvalidInput
from backend.matching.catalogue import RuleSet, ServiceMatch, match, ruleset_from_dict, shipped_rules
from backend.matching.engine import RuleError
from backend.matching.tables import HouseholdFacts, RuleVersion

# The file's categories, as the rules name them.
CATEGORY_FACT = {
    HouseholdCategory.dibao.value: "dibao",
    HouseholdCategory.tekun.value: "tekun",
    HouseholdCategory.dibao_marginal.value: "marginal",
}


async def current_rules() -> RuleSet:
    """The newest saved rule set; the shipped one until an admin saves a change."""
    row = await RuleVersion.select().order_by(RuleVersion.id, ascending=False).first()
    if row is None:
        return shipped_rules()
    return ruleset_from_dict({**load_json(row["document"]), "version": row["id"]})


async def rules_version(version: int) -> RuleSet:
    if version == shipped_rules().version and not await RuleVersion.exists().where(RuleVersion.id == version):
        return shipped_rules()
    row = await RuleVersion.select().where(RuleVersion.id == version).first()
    if row is None:
        raise InvalidInput(f"No rule version {version}.", f"没有第 {version} 版规则", code="rules.unknown_version")
    return ruleset_from_dict({**load_json(row["document"]), "version": row["id"]})


async def save_rules(principal: Principal, document: dict[str, Any], note: str) -> int:
    """Check the whole rule set, then store it as the next version (never overwrite)."""
    try:
        ruleset_from_dict({**document, "version": 0})
    except (RuleError, KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"The rules are not valid: {exc}", f"规则格式不正确：{exc}", code="rules.invalid") from exc
    async with write_transaction():
        latest = await RuleVersion.select(RuleVersion.id).order_by(RuleVersion.id, ascending=False).first()
        version = max(latest["id"] if latest else 0, shipped_rules().version) + 1
        body = {key: value for key, value in document.items() if key != "version"}
        await RuleVersion.insert(RuleVersion(id=version, document=body, note=note, created_by=principal.account_id))
    await record(
        "rules.save", actor=principal.actor, object_type="rules", object_id=str(version), detail={"note": note}
    )
    return version


async def file_facts(household_id: UUID) -> dict[str, Any]:
    """What the household file itself says: category, size, the most severe disability."""
    household = await Household.select(Household.category).where(Household.id == household_id).first()
    members = await HouseholdMember.select(HouseholdMember.disability_grade).where(
        HouseholdMember.household == household_id
    )
    facts: dict[str, Any] = {}
    if household is not None:
        facts["category"] = CATEGORY_FACT.get(household["category"], "none")
    if members:
        facts["household_size"] = len(members)
        grades = [member["disability_grade"] for member in members if member["disability_grade"]]
        facts["disability_grade"] = min(grades) if grades else 0
    return facts


async def known_facts(household_id: UUID) -> dict[str, Any]:
    """The file's facts overlaid with what workers recorded (their word is newer)."""
    recorded = await HouseholdFacts.select(HouseholdFacts.facts).where(HouseholdFacts.household == household_id).first()
    return {**await file_facts(household_id), **(load_json(recorded["facts"]) if recorded else {})}


async def record_facts(principal: Principal, household_id: UUID, facts: dict[str, Any]) -> dict[str, Any]:
    """Merge facts a worker learnt (null forgets one) into the household's record."""
    await scoped_household(principal, household_id, "household.facts")
    async with write_transaction():
        row = await HouseholdFacts.select().where(HouseholdFacts.household == household_id).first()
        merged = {**(load_json(row["facts"]) if row else {}), **facts}
        merged = {name: value for name, value in merged.items() if value is not None}
        if row is None:
            await HouseholdFacts.insert(
                HouseholdFacts(household=household_id, facts=merged, updated_by=principal.account_id)
            )
        else:
            await HouseholdFacts.update(
                {
                    HouseholdFacts.facts: merged,
                    HouseholdFacts.updated_by: principal.account_id,
                    HouseholdFacts.updated_at: datetime.now(UTC),
                }
            ).where(HouseholdFacts.household == household_id)
    await record(
        "household.facts",
        actor=principal.actor,
        object_type="household",
        object_id=str(household_id),
        detail={"facts": sorted(facts)},  # names only: the values are the family's circumstances
    )
    return merged


async def match_household(
    principal: Principal, household_id: UUID, extra: dict[str, Any] | None = None
) -> tuple[RuleSet, dict[str, Any], list[ServiceMatch]]:
    """Evaluate every service on the known facts plus what the visit just found (not yet saved)."""
    await scoped_household(principal, household_id, "household.match")
    rules = await current_rules()
    facts = {**await known_facts(household_id), **(extra or {})}
    return rules, facts, match(rules, facts)
