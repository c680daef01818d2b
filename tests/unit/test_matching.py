"""Smart matching: the rule semantics, the shipped catalogue rules and the explanations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from backend.departments.catalogue import SERVICES
from backend.matching.catalogue import match, ruleset_from_dict, shipped_rules
from backend.matching.engine import RuleError, Verdict, evaluate
from backend.matching.facts import FACTS_BY_NAME
from scripts.eligibility_vectors import TARGET, render

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
CASES = json.loads((VECTORS / "eligibility_cases.json").read_text(encoding="utf-8"))["cases"]


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_rule_semantics_match_the_shared_vectors(case: dict[str, Any]) -> None:
    result = evaluate(case["rule"], case["facts"], case["params"])
    assert result.verdict.value == case["verdict"]
    assert [leaf.outcome for leaf in result.leaves] == case["leaves"]
    assert result.missing == case["missing"]


def test_the_catalogue_vectors_are_what_the_engine_says_today() -> None:
    # The phone's node test compares against this file: it must never drift from the server.
    assert TARGET.read_text(encoding="utf-8") == render()


def test_every_service_has_a_rule_over_known_facts_and_materials() -> None:
    rules = shipped_rules()
    assert set(rules.services) == {service.code for service in SERVICES}
    for code, service in rules.services.items():
        facts = _facts_of(service["when"])
        assert facts <= set(FACTS_BY_NAME), (code, facts - set(FACTS_BY_NAME))
        assert service["materials"][:2] == ["id_card", "authorisation"], code  # 一证一书, always
        assert set(service["materials"]) <= set(rules.materials), code


def _facts_of(node: dict[str, Any]) -> set[str]:
    if "all" in node or "any" in node:
        return set().union(*(_facts_of(part) for part in node.get("all", node.get("any"))))
    if "not" in node:
        return _facts_of(node["not"])
    return {node["fact"]}


def _likely(facts: dict[str, Any]) -> set[str]:
    return {found.service for found in match(shipped_rules(), facts) if found.verdict == Verdict.eligible}


def test_one_new_severe_disability_in_a_dibao_family_matches_seven_services_or_more() -> None:
    likely = _likely(
        {
            "income_per_capita": 1000,
            "assets_per_capita": 5000,
            "category": "dibao",
            "disability_grade": 1,
            "chronic_illness": True,
            "medical_out_of_pocket_12m": 8000,
            "housing_area_per_capita": 12,
            "renting": True,
        }
    )
    assert {"disability_living_subsidy", "severe_disability_care_subsidy", "medical_assistance"} <= likely
    assert len(likely) >= 7


def test_a_large_hospital_bill_just_above_the_line_matches_what_xiao_shao_got() -> None:
    likely = _likely(
        {
            "income_per_capita": 1500,
            "category": "none",
            "medical_out_of_pocket_12m": 42000,
            "expenditure_burden": 42000,
            "major_illness": True,
            "unemployed_members": 1,
        }
    )
    assert {"temporary_expenditure", "charity_medical_aid", "employment_assistance"} <= likely
    assert "dibao" not in likely


def test_an_empty_file_rules_nothing_out_and_says_what_to_ask() -> None:
    found = {item.service: item for item in match(shipped_rules(), {})}
    assert {item.verdict for item in found.values()} == {Verdict.possible}
    assert found["dibao"].missing == ["income_per_capita", "assets_per_capita"]
    assert found["dibao"].reasons_zh[0] == "尚不清楚：家庭人均月收入低于1160元"


def test_explanations_read_aloud_in_both_languages() -> None:
    (dibao,) = [item for item in match(shipped_rules(), {"income_per_capita": 1500}) if item.service == "dibao"]
    assert dibao.verdict == Verdict.ineligible
    assert dibao.reasons_zh[0] == "不符合：家庭人均月收入低于1160元（实际：1500元）"
    assert dibao.reasons_en[0] == "Does not meet: monthly income per person below 1160 yuan (actual: 1500 yuan)"
    assert dibao.missing == []  # already decided: nothing more to ask


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        ({"all": []}, "services.x.when.all"),
        ({"fact": "income_per_capita", "op": "≈", "value": 1}, "services.x.when"),
        ({"any": [{"fact": "", "op": "<", "value": 1}]}, "services.x.when.any[0]"),
        ({"not": {"fact": "rural", "op": "=="}}, "services.x.when.not"),
    ],
)
def test_a_malformed_rule_is_refused_with_where_it_is_wrong(bad: dict[str, Any], where: str) -> None:
    with pytest.raises(RuleError, match=r"^" + where.replace("[", r"\[").replace("]", r"\]") + ":"):
        ruleset_from_dict({"version": 2, "services": {"x": {"when": bad, "materials": []}}})
