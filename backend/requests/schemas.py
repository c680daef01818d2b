from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from backend.lib.schema import InputStruct, OutputStruct

Phone = Annotated[str, msgspec.Meta(min_length=7, max_length=20)]


class CodeIn(InputStruct):
    phone: Phone


class SignupIn(InputStruct):
    phone: Phone
    code: Annotated[str, msgspec.Meta(pattern=r"^\d{6}$")]
    password: Annotated[str, msgspec.Meta(min_length=8, max_length=128)]
    display_name: Annotated[str, msgspec.Meta(min_length=1, max_length=50)]


class SignupOut(OutputStruct):
    account_id: UUID


class LocationIn(InputStruct):
    source: Literal["gps", "pin"]
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)]
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    crs: Annotated[str, msgspec.Meta(min_length=4, max_length=16)] = "wgs84"
    accuracy_m: Annotated[float, msgspec.Meta(ge=0, le=100_000)] | None = None


class RequestIn(InputStruct):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
    id_number: Annotated[str, msgspec.Meta(min_length=15, max_length=20)]
    phone: Phone
    description: Annotated[str, msgspec.Meta(min_length=2, max_length=2000)]
    # A point (GPS or a pin on the map), or only an address for the grid worker to confirm.
    location: LocationIn | None = None
    address: Annotated[str, msgspec.Meta(max_length=255)] = ""
    needs: Annotated[list[Annotated[str, msgspec.Meta(max_length=48)]], msgspec.Meta(max_length=20)] = msgspec.field(
        default_factory=list
    )


class StatusOut(OutputStruct):
    """What a resident (or a guest with the tracking code) sees: no one's personal data."""

    tracking_code: str
    stage: str
    status_zh: str
    status_en: str
    created_at: datetime


class RequestPhotoOut(OutputStruct):
    """A photo sent with a request; its bytes come from ``GET /api/v1/requests/{id}/photos/{photo_id}``."""

    id: UUID
    sha256: str
    width: int
    height: int
    created_at: datetime


class RequestOut(StatusOut):
    id: UUID
    photos: list[RequestPhotoOut]


class SubmittedOut(RequestOut):
    """The answer to a submission. ``upload_token`` lets this phone (and only whoever got this answer)
    add photos to the request without an account; it is shown here and nowhere else."""

    upload_token: str


class MatchSummary(OutputStruct):
    service: str
    verdict: str


class StaffRequestOut(OutputStruct):
    """For the grid worker and supervisor: the request, personal data masked."""

    id: UUID
    tracking_code: str
    name_masked: str
    id_number_masked: str
    phone_masked: str
    location_source: str
    lon: float | None
    lat: float | None
    accuracy_m: float | None
    address: str
    description: str
    needs: list[str]
    household_id: UUID | None
    task_id: UUID | None
    outcome: str | None
    stage: str
    matches: list[MatchSummary]
    rule_version: int | None
    created_at: datetime
    photos: list[RequestPhotoOut]
