"""The eligibility rules of the service catalogue, as shipped data, and matching a household to them.

The shipped rule set (rules_v1.json) is the first version; admins' edits become later versions in
the database, and every decision names the version it used. Matching is pure: facts in, verdicts out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from backend.matching.engine import Evaluation, Verdict, check_rule, evaluate
from backend.matching.explain import explain

SHIPPED_RULES = Path(__file__).with_name("rules_v1.json")


@dataclass(frozen=True)
class RuleSet:
    version: int
    params: dict[str, Any]
    services: dict[str, dict[str, Any]]
    materials: dict[str, list[str]] = field(default_factory=dict)

    def check(self) -> None:
        for code, service in self.services.items():
            check_rule(service.get("when"), f"services.{code}.when")


@dataclass(frozen=True)
class ServiceMatch:
    service: str
    verdict: Verdict
    rule_version: int
    reasons_zh: list[str]
    reasons_en: list[str]
    missing: list[str]
    materials: list[str]


def ruleset_from_dict(document: dict[str, Any]) -> RuleSet:
    rules = RuleSet(
        version=int(document["version"]),
        params=dict(document.get("params", {})),
        services=dict(document["services"]),
        materials=dict(document.get("materials", {})),
    )
    rules.check()
    return rules


@cache
def shipped_rules() -> RuleSet:
    return ruleset_from_dict(json.loads(SHIPPED_RULES.read_text(encoding="utf-8")))


def match_one(rules: RuleSet, code: str, facts: dict[str, Any]) -> ServiceMatch:
    service = rules.services[code]
    outcome: Evaluation = evaluate(service["when"], facts, rules.params)
    reasons_zh, reasons_en = explain(outcome)
    return ServiceMatch(
        service=code,
        verdict=outcome.verdict,
        rule_version=rules.version,
        reasons_zh=reasons_zh,
        reasons_en=reasons_en,
        # Unknown facts matter only while they could still change the verdict.
        missing=outcome.missing if outcome.verdict == Verdict.possible else [],
        materials=list(service.get("materials", [])),
    )


def match(rules: RuleSet, facts: dict[str, Any]) -> list[ServiceMatch]:
    """Every service, likely ones first, then those that need facts, then the rest."""
    order = {Verdict.eligible: 0, Verdict.possible: 1, Verdict.ineligible: 2}
    matches = [match_one(rules, code, facts) for code in rules.services]
    return sorted(matches, key=lambda found: (order[found.verdict], found.service))
