from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from backend.lib.schema import InputStruct, OutputStruct

MAX_PHOTOS = 6
Sha256 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]


class VisitIn(InputStruct):
    """What the worker found, as the phone recorded it (perhaps hours ago, offline)."""

    found: Annotated[str, msgspec.Meta(max_length=2000)]
    needs: Annotated[list[Annotated[str, msgspec.Meta(max_length=48)]], msgspec.Meta(max_length=30)] = msgspec.field(
        default_factory=list
    )
    notes: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    visited_at: datetime | None = None
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)] | None = None
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)] | None = None
    accuracy_m: Annotated[float, msgspec.Meta(ge=0, le=100_000)] | None = None
    # The sha256 (lowercase hex) of each photo the phone will upload next, for this visit.
    photos: Annotated[list[Sha256], msgspec.Meta(max_length=MAX_PHOTOS)] = msgspec.field(default_factory=list)


class VisitRecorded(OutputStruct):
    visit_id: UUID
    task_id: str
    state: str
    attributed_to: str
    after_reassignment: bool
    photos_missing: list[str]


class UploadStatus(OutputStruct):
    received: int
    complete: bool
    photo_id: UUID | None = None


class VisitPhotoOut(OutputStruct):
    sha256: str
    complete: bool
    photo_id: UUID | None
    width: int | None
    height: int | None


class VisitOut(OutputStruct):
    id: UUID
    task_id: UUID
    worker_id: UUID
    visited_at: datetime
    found: str
    needs: list[str]
    notes: str
    lon: float | None
    lat: float | None
    accuracy_m: float | None
    after_reassignment: bool
    created_at: datetime
    photos: list[VisitPhotoOut]
