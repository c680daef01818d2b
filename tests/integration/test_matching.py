"""Smart matching over the API: what a worker sees at the kitchen table, and how rules change."""

from __future__ import annotations

import copy
import json
import secrets
from typing import Any

import pytest

from backend.audit.tables import AuditLog
from backend.matching.catalogue import SHIPPED_RULES
from tests.helpers import id_number
from tests.integration.conftest import Api, World

pytestmark = pytest.mark.anyio


async def _disabled_household(admin: Api, grid: str) -> str:
    response = await admin.post(
        "/api/v1/households",
        json={
            "code": f"MT{secrets.token_hex(4)}",
            "head_name": "冯某",
            "address": "研判路1号",
            "grid_code": grid,
            "category": "dibao",
            "members": [
                {"name": "冯某", "relation": "head", "id_number": id_number(), "disability_grade": 1},
                {"name": "冯妻", "relation": "spouse", "id_number": id_number()},
            ],
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _by_service(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["service"]: item for item in body["matches"]}


async def test_a_visit_finding_and_the_file_together_name_the_services_and_why(world: World, as_role: Any) -> None:
    household = await _disabled_household(await as_role("admin"), world.grid_codes["GA2"])
    worker = await as_role("worker_a")

    response = await worker.post(
        f"/api/v1/households/{household}/match",
        json={"facts": {"income_per_capita": 1000, "assets_per_capita": 3000, "chronic_illness": True}},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    found = _by_service(body)
    # From the file alone: dibao family, two people, a grade-1 disability.
    assert body["facts"]["category"] == "dibao" and body["facts"]["household_size"] == 2
    assert body["facts"]["disability_grade"] == 1
    likely = [item["service"] for item in body["matches"] if item["verdict"] == "eligible"]
    assert {"dibao", "severe_disability_care_subsidy", "disability_living_subsidy", "family_doctor_care"} <= set(likely)
    assert body["matches"][: len(likely)] == [found[code] for code in likely]  # likely ones first
    care = found["severe_disability_care_subsidy"]
    assert care["department"] == "disabled_persons_federation" and care["name_zh"] == "重度残疾人护理补贴（两项补贴）"
    assert care["reasons_zh"] == ["符合：最重残疾等级属于1级、2级（实际：1级）"]
    assert care["materials"][:2] == ["id_card", "authorisation"]
    # What is still unknown is said, so the worker knows what to ask next.
    assert found["temporary_emergency"]["verdict"] == "possible"
    assert found["temporary_emergency"]["missing"] == ["sudden_hardship"]
    # Matching did not save the visit's findings.
    assert "income_per_capita" not in (await worker.get(f"/api/v1/households/{household}/facts")).json()["facts"]


async def test_recorded_facts_are_kept_checked_and_audited_without_their_values(world: World, as_role: Any) -> None:
    household = await _disabled_household(await as_role("admin"), world.grid_codes["GA2"])
    worker = await as_role("worker_a")
    path = f"/api/v1/households/{household}/facts"

    saved = await worker.request("PUT", path, json={"facts": {"income_per_capita": 1500, "renting": True}})
    assert saved.status_code == 200, saved.text
    forgot = await worker.request("PUT", path, json={"facts": {"renting": None, "unemployed_members": 1}})
    assert forgot.json()["facts"] == {
        "category": "dibao",
        "household_size": 2,
        "disability_grade": 1,
        "income_per_capita": 1500,
        "unemployed_members": 1,
    }
    matched = _by_service((await worker.post(f"/api/v1/households/{household}/match", json={})).json())
    assert matched["dibao"]["verdict"] == "ineligible"  # 1500 is above the 1160 line
    assert matched["employment_assistance"]["verdict"] == "eligible"

    unknown = await worker.request("PUT", path, json={"facts": {"shoe_size": 42}})
    assert unknown.status_code == 422 and unknown.json()["code"] == "facts.unknown"
    wrong = await worker.request("PUT", path, json={"facts": {"category": "rich"}})
    assert wrong.status_code == 422 and wrong.json()["code"] == "facts.invalid"
    negative = await worker.request("PUT", path, json={"facts": {"income_per_capita": -5}})
    assert negative.status_code == 422
    typed = await worker.request("PUT", path, json={"facts": {"unemployed_members": True}})
    assert typed.status_code == 422  # a yes is not a head count

    rows = await AuditLog.select(AuditLog.detail).where(
        AuditLog.action == "household.facts", AuditLog.object_id == household
    )
    assert len(rows) == 2
    assert "1500" not in json.dumps([row["detail"] for row in rows])


async def test_an_admin_changes_the_rules_as_a_new_version_the_phone_picks_up(world: World, as_role: Any) -> None:
    admin, worker = await as_role("admin"), await as_role("worker_a")
    household = await _disabled_household(admin, world.grid_codes["GA2"])
    before = await worker.get("/api/v1/matching/rules")
    assert before.status_code == 200
    etag, version = before.headers["etag"], before.json()["version"]
    assert {fact["name"] for fact in before.json()["facts"]} >= {"income_per_capita", "disability_grade"}
    assert len(before.json()["services"]) == 32
    assert (await worker.get("/api/v1/matching/rules", headers={"if-none-match": etag})).status_code == 304

    shipped = json.loads(SHIPPED_RULES.read_text(encoding="utf-8"))
    changed = copy.deepcopy(shipped)
    changed["params"]["dibao_line"] = 1600  # a new, higher minimum-living line
    saved = await admin.request("PUT", "/api/v1/matching/rules", json={"document": changed, "note": "2027 标准"})
    assert saved.status_code == 201, saved.text
    try:
        assert saved.json()["version"] == version + 1
        after = await worker.get("/api/v1/matching/rules", headers={"if-none-match": etag})
        assert after.status_code == 200 and after.json()["params"]["dibao_line"] == 1600
        matched = await worker.post(
            f"/api/v1/households/{household}/match", json={"facts": {"income_per_capita": 1500}}
        )
        assert matched.json()["rule_version"] == version + 1
        assert _by_service(matched.json())["dibao"]["verdict"] != "ineligible"
        listed = (await admin.get("/api/v1/matching/rules/versions")).json()
        assert listed[0]["version"] == version + 1 and listed[0]["note"] == "2027 标准"
    finally:
        # Other tests in this session expect the shipped line: restoring is itself a new version.
        restored = await admin.request("PUT", "/api/v1/matching/rules", json={"document": shipped, "note": "restore"})
        assert restored.status_code == 201


async def test_a_broken_rule_set_is_refused_with_where_it_is_broken(as_role: Any) -> None:
    admin = await as_role("admin")
    shipped = json.loads(SHIPPED_RULES.read_text(encoding="utf-8"))
    shipped["services"]["dibao"]["when"]["all"][0]["op"] = "≈"
    before = (await admin.get("/api/v1/matching/rules")).json()["version"]

    refused = await admin.request("PUT", "/api/v1/matching/rules", json={"document": shipped})

    assert refused.status_code == 422
    assert refused.json()["code"] == "rules.invalid" and "services.dibao.when.all[0]" in refused.json()["detail"]
    assert (await admin.get("/api/v1/matching/rules")).json()["version"] == before
