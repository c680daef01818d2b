from __future__ import annotations

from typing import Annotated, Any

import msgspec

from backend.lib.schema import InputStruct, OutputStruct

FactValue = bool | int | float | Annotated[str, msgspec.Meta(max_length=48)] | None
FactMap = Annotated[dict[Annotated[str, msgspec.Meta(max_length=48)], FactValue], msgspec.Meta(max_length=60)]


class FactOut(OutputStruct):
    name: str
    kind: str
    label_zh: str
    label_en: str
    unit_zh: str
    unit_en: str
    options: list[str]


class RulesOut(OutputStruct):
    """Everything the phone needs to match offline: the rules as data and the fact vocabulary."""

    version: int
    params: dict[str, Any]
    services: dict[str, Any]
    materials: dict[str, list[str]]
    facts: list[FactOut]


class RulesIn(InputStruct):
    document: dict[str, Any]
    note: Annotated[str, msgspec.Meta(max_length=500)] = ""


class RulesSaved(OutputStruct):
    version: int


class RuleVersionOut(OutputStruct):
    version: int
    note: str
    created_by: str | None
    created_at: str


class FactsIn(InputStruct):
    facts: FactMap


class FactsOut(OutputStruct):
    facts: dict[str, Any]


class MatchIn(InputStruct):
    """What the visit just found, not yet saved; the file's facts fill the rest."""

    facts: FactMap = msgspec.field(default_factory=dict)


class ServiceMatchOut(OutputStruct):
    service: str
    name_zh: str
    name_en: str
    department: str
    verdict: str
    reasons_zh: list[str]
    reasons_en: list[str]
    missing: list[str]
    materials: list[str]


class MatchOut(OutputStruct):
    rule_version: int
    facts: dict[str, Any]
    matches: list[ServiceMatchOut]
