from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any
from uuid import UUID

import msgspec

from backend.lib.schema import InputStruct, OutputStruct
from backend.matching.schemas import FactMap

Code = Annotated[str, msgspec.Meta(min_length=1, max_length=48)]
Sha256 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
AnswerValue = Annotated[str, msgspec.Meta(max_length=500)] | int | float | bool
MAX_SERVICES = 32
MAX_PHOTOS_PER_MATERIAL = 6


class PhotoRef(InputStruct):
    """A photo taken for the household: its id once uploaded (a visit photo, or a material photo taken
    on the apply screen), or a visit's id and the content hash while a visit photo is on its way."""

    photo_id: UUID | None = None
    visit_id: UUID | None = None
    sha256: Sha256 | None = None


class MaterialIn(InputStruct):
    photos: Annotated[list[PhotoRef], msgspec.Meta(max_length=MAX_PHOTOS_PER_MATERIAL)] = msgspec.field(
        default_factory=list
    )
    # The family will hand it in later (the department may ask for it).
    to_follow: bool = False


class ServicePick(InputStruct):
    service: Code
    answers: Annotated[dict[Code, AnswerValue], msgspec.Meta(max_length=30)] = msgspec.field(default_factory=dict)


class ConsentMethod(str, Enum):
    signed_authorisation = "signed_authorisation"  # 一证一书: the signed authorisation letter
    verbal = "verbal"  # said so to the worker, who recorded it
    in_app = "in_app"  # the resident confirmed in the app


class ConsentIn(InputStruct):
    """Who agreed to the application and the economic-status check, how, and when."""

    method: ConsentMethod
    at: datetime
    member_id: UUID | None = None  # a member of the household, or …
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=50)] | None = None  # … a guardian by name
    relation: Annotated[str, msgspec.Meta(max_length=32)] = ""


class ApplicationIn(InputStruct):
    applicant_id_number: Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
    services: Annotated[list[ServicePick], msgspec.Meta(min_length=1, max_length=MAX_SERVICES)]
    consent: ConsentIn
    # Material code (id_card, authorisation, income_proof, …) → its photos, or "to follow".
    materials: Annotated[dict[Code, MaterialIn], msgspec.Meta(max_length=40)] = msgspec.field(default_factory=dict)
    # The rule version the phone matched with (offline it may be older than the server's).
    rule_version: int | None = None
    # Facts the worker added on the apply screen (what the visit found): the verdicts use them, and
    # they are recorded for the household as the worker's word, like PUT .../facts.
    facts: FactMap = msgspec.field(default_factory=dict)


class ServiceStatusOut(OutputStruct):
    service: str
    name_zh: str
    name_en: str
    department: str | None
    case_id: UUID | None
    state: str  # submitted (not yet routed) | new | accepted | info_requested | approved | rejected
    due_at: datetime | None
    amount_yuan: int | None
    period: str | None
    period_months: int | None
    reason: str
    decided_at: datetime | None


class ApplicationOut(OutputStruct):
    id: UUID
    household_id: UUID
    created_at: datetime
    created_by: UUID
    on_behalf: bool
    rule_version: int
    services: list[ServiceStatusOut]
    total: int
    decided: int
    summary_zh: str
    summary_en: str


class ApplicationBrief(OutputStruct):
    id: UUID
    created_at: datetime
    total: int
    decided: int
    summary_zh: str
    summary_en: str


class MaterialOut(OutputStruct):
    material: str
    name_zh: str
    name_en: str
    status: str  # provided | to_follow | missing
    photos: list[dict[str, Any]]


class ResidentApplicationOut(OutputStruct):
    """An application made for the resident's household, as the family sees it: its services' states and
    one sentence; the household named only by its head's masked name."""

    id: UUID
    created_at: datetime
    on_behalf: bool
    household_name_masked: str
    services: list[ServiceStatusOut]
    total: int
    decided: int
    summary_zh: str
    summary_en: str
