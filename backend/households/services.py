"""Household files: scoped reads, masked by default, full values only through an audited reveal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID, uuid4

import numpy as np
from litestar.stores.base import Store

from backend.accounts.principal import Principal
from backend.accounts.tables import Role
from backend.audit.services import Actor, record, refuse_unseen
from backend.audit.tables import Outcome
from backend.grids.index_cache import current_layer
from backend.grids.placement import place_points
from backend.grids.tables import Grid
from backend.households.schemas import HouseholdDetail, HouseholdIn, HouseholdSummary, MemberOut
from backend.households.scope import NO_ACCESS, household_scope
from backend.households.tables import Household, HouseholdCategory, HouseholdMember, PlacementFlag, Relation
from backend.lib import pii
from backend.lib.db import write_transaction
from backend.lib.errors import Conflict, InvalidInput, NotFound, TooManyRequests
from backend.settings import get_settings
from geo.crs import CrsError, parse_crs, to_wgs84

_SUMMARY_COLUMNS = (
    Household.id,
    Household.code,
    Household.head_name,
    Household.address,
    Household.category,
    Household.grid_code,
    Household.placement,
    Household.lon,
    Household.lat,
    Household.phone_sealed,
)


def _summary(row: dict[str, Any]) -> HouseholdSummary:
    return HouseholdSummary(
        id=row["id"],
        code=row["code"],
        head_name=row["head_name"],
        address=row["address"],
        category=HouseholdCategory(row["category"]),
        grid_code=row["grid_code"],
        placement=PlacementFlag(row["placement"]),
        lon=row["lon"],
        lat=row["lat"],
        phone_masked=pii.mask_phone(pii.unseal_phone(row["phone_sealed"])) if row["phone_sealed"] else None,
    )


async def list_households(
    principal: Principal, *, grid_code: str | None, category: HouseholdCategory | None, limit: int, offset: int
) -> tuple[list[HouseholdSummary], int]:
    scope = household_scope(principal)
    if scope is NO_ACCESS:
        return [], 0
    clauses = [
        clause
        for clause in (
            scope,
            Household.grid_code == grid_code if grid_code else None,
            Household.category == category if category else None,
        )
        if clause is not None
    ]
    query = Household.select(*_SUMMARY_COLUMNS).order_by(Household.code)
    count = Household.count()
    if clauses:
        query = query.where(*clauses)
        count = count.where(*clauses)
    rows = await query.limit(limit).offset(offset)
    return [_summary(row) for row in rows], await count


async def _scoped_row(principal: Principal, household_id: UUID, action: str) -> dict[str, Any]:
    """The household if the caller may see it; otherwise 404 (never 403) and an audit row."""
    scope = household_scope(principal)
    row = None
    if scope is not NO_ACCESS:
        query = Household.select().where(Household.id == household_id)
        if scope is not None:
            query = query.where(scope)
        row = await query.first()
    if row is None:
        await refuse_unseen(
            principal.actor,
            action,
            "household",
            household_id,
            exists=await Household.exists().where(Household.id == household_id),
            code="household.not_found",
        )
    return row


async def scoped_household(principal: Principal, household_id: UUID, action: str) -> dict[str, Any]:
    """For other slices: the household row if the caller may see it, else 404 and a denied audit row."""
    return await _scoped_row(principal, household_id, action)


async def get_household(principal: Principal, household_id: UUID) -> HouseholdDetail:
    row = await _scoped_row(principal, household_id, "household.view")
    members = (
        await HouseholdMember.select().where(HouseholdMember.household == household_id).order_by(HouseholdMember.name)
    )
    # Opening a household file is a read of sensitive personal data: it is audited like a write.
    await record("household.view", actor=principal.actor, object_type="household", object_id=str(household_id))
    summary = _summary(row)
    return HouseholdDetail(
        **{field: getattr(summary, field) for field in summary.__struct_fields__},
        community_id=row["community"],
        street_id=row["street"],
        members=[
            MemberOut(
                id=member["id"],
                name=member["name"],
                relation=Relation(member["relation"]),
                id_number_masked=pii.mask_id_number(pii.unseal_id_number(member["id_number_sealed"])),
                birth_year=member["birth_year"],
                disability_grade=member["disability_grade"],
                is_main_earner=member["is_main_earner"],
            )
            for member in members
        ],
        updated_at=row["updated_at"],
    )


async def lookup_by_id_number(principal: Principal, id_number: str) -> HouseholdSummary:
    """Find the household of a person by ID number, through the keyed hash only."""
    try:
        index = pii.id_number_index(id_number)
    except pii.InvalidIdentifier as exc:
        raise InvalidInput(str(exc), "身份证号码不正确", code=exc.code) from exc
    member = (
        await HouseholdMember.select(HouseholdMember.household).where(HouseholdMember.id_number_index == index).first()
    )
    scope = household_scope(principal)
    row = None
    if member is not None and scope is not NO_ACCESS:
        query = Household.select(*_SUMMARY_COLUMNS).where(Household.id == member["household"])
        row = await (query.where(scope) if scope is not None else query).first()
    outcome = Outcome.success if row else Outcome.denied if member else Outcome.failure
    await record(
        "household.lookup",
        actor=principal.actor,
        object_type="household",
        object_id=str(member["household"]) if member else "",
        outcome=outcome,
    )
    if row is None:
        raise NotFound(code="household.not_found")
    return _summary(row)


async def reveal(
    principal: Principal, household_id: UUID, field: str, member_id: UUID | None, reason: str, *, store: Store
) -> str:
    """The full value of one personal field, for a stated reason. Audited and capped per day."""
    row = await _scoped_row(principal, household_id, "pii.reveal")
    limit = get_settings().auth.reveals_per_day
    key = f"reveal:{principal.account_id}:{datetime.now(UTC):%Y%m%d}"
    used = int((await store.get(key)) or 0)
    if used >= limit:
        await record(
            "pii.reveal",
            actor=principal.actor,
            object_type="household",
            object_id=str(household_id),
            outcome=Outcome.denied,
            detail={"field": field, "reason": "daily_cap"},
        )
        raise TooManyRequests(
            f"At most {limit} reveals a day", f"每天最多查看 {limit} 次完整信息", code="pii.reveal_cap"
        )
    if field == "phone":
        if not row["phone_sealed"]:
            raise NotFound("No phone on file", "未登记电话", code="household.no_phone")
        value = pii.unseal_phone(row["phone_sealed"])
        object_type, object_id = "household", str(household_id)
    else:
        member = (
            await HouseholdMember.select(HouseholdMember.id_number_sealed)
            .where(HouseholdMember.id == member_id, HouseholdMember.household == household_id)
            .first()
            if member_id
            else None
        )
        if member is None:
            raise NotFound(code="household.member_not_found")
        value = pii.unseal_id_number(member["id_number_sealed"])
        object_type, object_id = "household_member", str(member_id)
    await store.set(key, str(used + 1), expires_in=26 * 3600)
    # The reason is free text a person typed; it is kept, the revealed value never is.
    await record(
        "pii.reveal",
        actor=principal.actor,
        object_type=object_type,
        object_id=object_id,
        detail={"field": field, "household_id": str(household_id), "reason": reason},
    )
    return value


@dataclass(frozen=True)
class _Place:
    grid_code: str | None
    flag: PlacementFlag
    community_id: int | None
    street_id: int | None
    lon: float | None
    lat: float | None


async def _place_for(principal: Principal, data: HouseholdIn) -> _Place:
    """Where a new household belongs, and whether the caller may put it there."""
    place = await where_household(data)
    if place is None:
        raise InvalidInput(
            "Give the grid or the household's position", "请提供网格或住户位置", code="household.place_required"
        )
    allowed = (
        principal.role == Role.admin
        or (principal.role == Role.supervisor and place.street_id == principal.street_id)
        or (principal.role == Role.grid_worker and place.grid_code in principal.grid_codes)
    )
    if not allowed:
        raise InvalidInput("That place is not in your area", "该位置不在您的范围内", code="household.grid_out_of_scope")
    return place


class _WherePlace(Protocol):
    """What names a household's place: a grid code, a point in a datum, or both (HouseholdIn, PlaceIn)."""

    @property
    def grid_code(self) -> str | None: ...
    @property
    def lon(self) -> float | None: ...
    @property
    def lat(self) -> float | None: ...
    @property
    def crs(self) -> str: ...


async def where_household(data: _WherePlace) -> _Place | None:
    """The grid a household's point or grid code names; None when neither is given."""
    lon = lat = None
    if data.lon is not None and data.lat is not None:
        lon, lat, located = await _locate(data.lon, data.lat, data.crs)
        if data.grid_code and located.grid_code != data.grid_code:
            raise InvalidInput(
                f"The point lies in grid {located.grid_code or '(none)'}, not {data.grid_code}",
                f"该位置位于网格 {located.grid_code or '（无）'}，而非 {data.grid_code}",
                code="household.grid_mismatch",
            )
        place = _Place(located.grid_code, located.flag, located.community_id, located.street_id, lon, lat)
    elif data.grid_code:
        grid = (
            await Grid.select(Grid.code, Grid.community, Grid.community.parent.as_alias("street"))
            .where(Grid.code == data.grid_code, Grid.layer._.is_current.eq(True))
            .first()
        )
        if grid is None:
            raise InvalidInput("Unknown grid", "网格不存在", code="household.grid_unknown")
        place = _Place(grid["code"], PlacementFlag.inside, grid["community"], grid["street"], None, None)
    else:
        return None
    return place


async def _locate(lon: float, lat: float, crs: str) -> tuple[float, float, Any]:
    try:
        x, y = to_wgs84(np.array([lon]), np.array([lat]), parse_crs(crs))
    except CrsError as exc:
        raise InvalidInput(str(exc), "坐标系不正确", code="household.crs_invalid") from exc
    layer = await current_layer()
    if layer is None:
        raise InvalidInput("No grid map has been imported yet", "尚未导入网格图层", code="grids.no_layer")
    located = place_points(layer, np.asarray(x, dtype=float), np.asarray(y, dtype=float))[0]
    return float(x[0]), float(y[0]), located


async def create_household(principal: Principal, data: HouseholdIn) -> UUID:
    return await _insert(data, await _place_for(principal, data), principal.actor)


async def register_household(data: HouseholdIn, actor: Actor) -> UUID:
    """A household file opened from a resident's own request: no staff scope applies; with neither a
    point nor a grid it is opened unplaced and lands on the supervisors' "unplaced" list."""
    place = await where_household(data) or _Place(None, PlacementFlag.unplaced, None, None, None, None)
    return await _insert(data, place, actor)


async def _insert(data: HouseholdIn, place: _Place, actor: Actor) -> UUID:
    errors: list[dict[str, Any]] = []
    sealed_members = []
    for position, member in enumerate(data.members):
        try:
            sealed_members.append((member, *pii.seal_id_number(member.id_number)))
        except pii.InvalidIdentifier as exc:
            errors.append({"key": f"members[{position}].id_number", "message": exc.code})
    phone_sealed = phone_index = None
    if data.phone:
        try:
            phone_sealed, phone_index = pii.seal_phone(data.phone)
        except pii.InvalidIdentifier as exc:
            errors.append({"key": "phone", "message": exc.code})
    if errors:
        raise InvalidInput(
            "Some identifiers are not valid",
            "部分证件号码或电话不正确",
            code="household.invalid_identifiers",
            errors=errors,
        )
    household_id = uuid4()
    async with write_transaction():
        if await Household.exists().where(Household.code == data.code):
            raise Conflict("A household with this code exists", "该户编号已存在", code="household.exists")
        indexes = [index for _, _, index in sealed_members]
        if indexes and await HouseholdMember.exists().where(HouseholdMember.id_number_index.is_in(indexes)):
            raise Conflict(
                "A member already belongs to a household", "有成员已登记在其他户中", code="household.member_exists"
            )
        await Household.insert(
            Household(
                id=household_id,
                code=data.code,
                head_name=data.head_name,
                address=data.address,
                category=data.category,
                phone_sealed=phone_sealed,
                phone_index=phone_index,
                lon=place.lon,
                lat=place.lat,
                grid_code=place.grid_code,
                placement=place.flag,
                community=place.community_id,
                street=place.street_id,
            )
        )
        if sealed_members:
            await HouseholdMember.insert(
                *[
                    HouseholdMember(
                        household=household_id,
                        name=member.name,
                        relation=member.relation,
                        id_number_sealed=sealed,
                        id_number_index=index,
                        birth_year=member.birth_year,
                        disability_grade=member.disability_grade,
                        is_main_earner=member.is_main_earner,
                    )
                    for member, sealed, index in sealed_members
                ]
            )
        await record(
            "household.create",
            actor=actor,
            object_type="household",
            object_id=str(household_id),
            detail={"grid_code": place.grid_code, "placement": place.flag.value, "members": len(sealed_members)},
        )
    return household_id
