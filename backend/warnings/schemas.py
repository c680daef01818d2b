from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec

from backend.lib.schema import InputStruct, OutputStruct

Scalar = str | int | float | bool


class WarningIn(InputStruct):
    source_record_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    type: Annotated[str, msgspec.Meta(min_length=1, max_length=48)]
    id_number: Annotated[str, msgspec.Meta(min_length=15, max_length=20)] | None = None
    household_id: UUID | None = None
    lon: float | None = None
    lat: float | None = None
    crs: Annotated[str, msgspec.Meta(min_length=4, max_length=16)] = "wgs84"
    occurred_on: Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = None
    facts: Annotated[dict[Annotated[str, msgspec.Meta(max_length=48)], Scalar], msgspec.Meta(max_length=20)] = (
        msgspec.field(default_factory=dict)
    )


class WarningBatchIn(InputStruct):
    warnings: Annotated[list[WarningIn], msgspec.Meta(min_length=1, max_length=1000)]


class WarningResultOut(OutputStruct):
    source_record_id: str
    status: str
    outcome: str | None
    warning_id: str | None
    task_id: str | None
    error_code: str | None
    error: str | None


class WarningBatchOut(OutputStruct):
    created: int
    duplicates: int
    rejected: int
    results: list[WarningResultOut]


class ApiKeyIn(InputStruct):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class ApiKeyOut(OutputStruct):
    department: str
    api_key: str  # shown once


class WarningTypeIn(InputStruct):
    code: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{2,47}$")]
    name_zh: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    name_en: Annotated[str, msgspec.Meta(min_length=1, max_length=150)]
    priority: Annotated[int, msgspec.Meta(ge=1, le=4)] = 3
    deadline_amount: Annotated[int, msgspec.Meta(ge=1, le=90)] = 5
    deadline_unit: str = "working_days"


class WarningTypeOut(OutputStruct):
    code: str
    name_zh: str
    name_en: str
    priority: int
    deadline_amount: int
    deadline_unit: str
    builtin: bool
    active: bool


class UnmatchedOut(OutputStruct):
    id: str
    source: str
    source_record_id: str
    type_code: str
    id_number_masked: str | None
    received_at: str
    street_id: int | None
