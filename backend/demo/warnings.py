"""The demo's hardship warnings: the featured workers open the app to visit tasks, not an empty list.

They go through the real intake (``backend.warnings.services.ingest``), so tasks, deadlines, inbox
messages and pushes are made exactly as for a department's batch. The source record id is the
household's code: running it again changes nothing.
"""

from __future__ import annotations

from typing import Any

from backend.audit.services import Actor
from backend.households.tables import Household
from backend.matching.tables import HouseholdFacts
from backend.warnings.services import IncomingWarning, ingest

SOURCE = "demo"
# Types in turn, so the demo shows several kinds of deadline and priority.
TYPES = ("large_medical_expense", "disability_change", "death_of_earner", "traffic_accident", "income_drop")
# What a visit might have found, so smart matching has something to say about the first families.
FACTS: tuple[dict[str, Any], ...] = (
    {"income_per_capita": 980, "assets_per_capita": 6000, "medical_out_of_pocket_12m": 46000, "chronic_illness": True},
    {"income_per_capita": 1500, "unemployed_members": 1, "children_compulsory_school": 1},
    {"income_per_capita": 1200, "sudden_hardship": True, "renting": True, "housing_area_per_capita": 11},
)


async def raise_demo_warnings(grid_codes: list[str], actor: Actor) -> int:
    """One warning for every household in ``grid_codes`` (the featured workers' grids)."""
    rows = (
        await Household.select(Household.id, Household.code)
        .where(Household.grid_code.is_in(grid_codes or ["-"]))
        .order_by(Household.code)
    )
    items = [
        IncomingWarning(source_record_id=row["code"], type_code=TYPES[position % len(TYPES)], household_id=row["id"])
        for position, row in enumerate(rows)
    ]
    for row, facts in zip(rows, FACTS, strict=False):
        if not await HouseholdFacts.exists().where(HouseholdFacts.household == row["id"]):
            await HouseholdFacts.insert(HouseholdFacts(household=row["id"], facts=facts))
    results = await ingest(SOURCE, items, actor=actor) if items else []
    return sum(result.status == "created" for result in results)
