from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec

from backend.applications.tables import Period
from backend.lib.schema import InputStruct, OutputStruct

Text = Annotated[str, msgspec.Meta(min_length=2, max_length=500)]


class ApproveIn(InputStruct):
    amount_yuan: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)]
    period: Period
    # How many months (or years) a recurring payment runs; empty for open-ended or one-off help.
    period_months: Annotated[int, msgspec.Meta(ge=1, le=120)] | None = None


class RejectIn(InputStruct):
    reason: Text


class InfoRequestIn(InputStruct):
    message: Annotated[str, msgspec.Meta(min_length=2, max_length=200)]


class HouseholdMasked(OutputStruct):
    id: UUID
    code: str
    head_name_masked: str
    category: str
    grid_code: str | None
    phone_masked: str | None


class MemberMasked(OutputStruct):
    id: UUID
    name_masked: str
    relation: str
    id_number_masked: str
    birth_year: int | None
    disability_grade: int | None


class CaseOut(OutputStruct):
    id: UUID
    application_id: UUID
    service: str
    service_name_zh: str
    service_name_en: str
    department: str
    state: str
    due_at: datetime
    overdue: bool
    escalation: int
    verdict: str
    rule_version: int
    amount_yuan: int | None
    period: str | None
    period_months: int | None
    reason: str
    info_request: str
    info_task_id: UUID | None
    created_at: datetime
    decided_at: datetime | None
    household: HouseholdMasked


class CasePage(OutputStruct):
    items: list[CaseOut]
    total: int


class MaterialStatus(OutputStruct):
    material: str
    name_zh: str
    name_en: str
    status: str  # provided | to_follow | missing
    photos: list[dict[str, Any]]


class ConsentOut(OutputStruct):
    method: str
    at: str
    by_masked: str
    relation: str


class CaseDetail(CaseOut, kw_only=True):
    answers: dict[str, Any]
    materials: list[MaterialStatus]
    consent: ConsentOut
    applicant: MemberMasked | None
    members: list[MemberMasked]
    submitted_by: UUID
    submitted_at: datetime
