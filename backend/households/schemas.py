from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from backend.households.tables import HouseholdCategory, PlacementFlag, Relation
from backend.lib.schema import InputStruct, OutputStruct

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
IdNumber = Annotated[str, msgspec.Meta(min_length=15, max_length=20)]
Reason = Annotated[str, msgspec.Meta(min_length=2, max_length=200)]


class MemberOut(OutputStruct):
    id: UUID
    name: str
    relation: Relation
    id_number_masked: str
    birth_year: int | None
    disability_grade: int | None
    is_main_earner: bool


class MemberBrief(OutputStruct):
    """A member as the worker's phone keeps it, to say who consented: the name masked, never an ID
    number or a phone."""

    id: UUID
    name_masked: str
    relation: Relation


class HouseholdSummary(OutputStruct):
    id: UUID
    code: str
    head_name: str
    address: str
    category: HouseholdCategory
    grid_code: str | None
    placement: PlacementFlag
    lon: float | None
    lat: float | None
    phone_masked: str | None


class HouseholdDetail(HouseholdSummary):
    community_id: int | None
    street_id: int | None
    members: list[MemberOut]
    updated_at: datetime


class HouseholdPage(OutputStruct):
    items: list[HouseholdSummary]
    total: int
    limit: int
    offset: int


class MemberIn(InputStruct):
    name: Name
    relation: Relation
    id_number: IdNumber
    birth_year: Annotated[int, msgspec.Meta(ge=1900, le=2100)] | None = None
    disability_grade: Annotated[int, msgspec.Meta(ge=1, le=4)] | None = None
    is_main_earner: bool = False


class HouseholdIn(InputStruct):
    code: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9\-]{3,32}$")]
    head_name: Name
    address: Annotated[str, msgspec.Meta(min_length=2, max_length=255)]
    # Either the grid, or the household's point (and its datum) to locate it: or both, which must agree.
    grid_code: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None = None
    category: HouseholdCategory = HouseholdCategory.ordinary
    phone: Annotated[str, msgspec.Meta(min_length=7, max_length=20)] | None = None
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)] | None = None
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)] | None = None
    crs: Annotated[str, msgspec.Meta(min_length=4, max_length=16)] = "wgs84"
    members: Annotated[list[MemberIn], msgspec.Meta(min_length=1, max_length=30)] = msgspec.field(default_factory=list)


class LookupIn(InputStruct):
    id_number: IdNumber


class RevealIn(InputStruct):
    field: Literal["phone", "member_id_number"]
    reason: Reason
    member_id: UUID | None = None


class RevealOut(OutputStruct):
    field: str
    value: str


class PlaceIn(InputStruct):
    """Where an unplaced household really is: a grid, or a point (and its datum)."""

    grid_code: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None = None
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)] | None = None
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)] | None = None
    crs: Annotated[str, msgspec.Meta(min_length=4, max_length=16)] = "wgs84"


class PlacedOut(OutputStruct):
    grid_code: str
