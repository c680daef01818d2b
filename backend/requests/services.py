"""A resident's request becomes a visit task for the grid worker of where they live.

The request rides the warnings pipeline as a ``resident_request`` warning: the same household
lookup by keyed hash, the same "one household, one open task" merging, the same notifications and
the same unplaced/unmatched queues. A person with no household file yet gets one, opened from the
request and placed where their point lies (or unplaced, for the supervisor, when only an address
was given); the grid worker confirms it on the visit.
"""

from __future__ import annotations

import secrets
from typing import Any
from uuid import UUID

import numpy as np

from backend.accounts.principal import Principal
from backend.audit.services import Actor, record
from backend.households.schemas import HouseholdIn, MemberIn
from backend.households.scope import NO_ACCESS, household_scope
from backend.households.services import register_household
from backend.households.tables import Household, HouseholdMember, Relation
from backend.lib import pii
from backend.lib.db import load_json, write_transaction
from backend.lib.errors import Conflict, InvalidInput, NotFound
from backend.matching.catalogue import match
from backend.matching.engine import Verdict
from backend.matching.services import current_rules, known_facts
from backend.requests.photos import photos_of
from backend.requests.schemas import (
    MatchSummary,
    RequestIn,
    RequestOut,
    RequestPhotoOut,
    StaffRequestOut,
    StatusOut,
)
from backend.requests.status import plain_status
from backend.requests.tables import HelpRequest, LocationSource, RequestOutcome
from backend.tasks.tables import OPEN_STATES, VisitTask
from backend.warnings.services import IncomingWarning, ingest
from geo.crs import CrsError, parse_crs, to_wgs84

SOURCE = "resident_request"
# No 0/O, 1/I/L: a code read over the phone must survive it.
_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def _tracking_code() -> str:
    body = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    return f"{body[:4]}-{body[4:]}"


def _wgs84(data: RequestIn) -> tuple[float | None, float | None]:
    if data.location is None:
        return None, None
    try:
        x, y = to_wgs84(np.array([data.location.lon]), np.array([data.location.lat]), parse_crs(data.location.crs))
    except CrsError as exc:
        raise InvalidInput(str(exc), "坐标系不正确", code="request.crs_invalid") from exc
    return float(x[0]), float(y[0])


def _sealed(data: RequestIn) -> tuple[tuple[str, str], tuple[str, str]]:
    errors: list[dict[str, Any]] = []
    id_pair = phone_pair = ("", "")
    try:
        id_pair = pii.seal_id_number(data.id_number)
    except pii.InvalidIdentifier as exc:
        errors.append({"key": "id_number", "message": exc.code})
    try:
        phone_pair = pii.seal_phone(data.phone)
    except pii.InvalidIdentifier as exc:
        errors.append({"key": "phone", "message": exc.code})
    if errors:
        raise InvalidInput(
            "The ID number or phone is not valid",
            "身份证号或手机号不正确",
            code="request.invalid_identifiers",
            errors=errors,
        )
    if data.location is None and len(data.address.strip()) < 2:
        raise InvalidInput(
            "Say where you live: your position, a pin on the map or an address",
            "请提供您的位置：定位、在地图上选点或填写地址",
            code="request.place_required",
        )
    return id_pair, phone_pair


async def _household_of_person(id_index: str) -> UUID | None:
    member = (
        await HouseholdMember.select(HouseholdMember.household)
        .where(HouseholdMember.id_number_index == id_index)
        .first()
    )
    return UUID(str(member["household"])) if member is not None else None


async def _household_for(data: RequestIn, id_index: str, actor: Actor) -> UUID:
    """The person's household file, opened from this request when they have none yet."""
    known = await _household_of_person(id_index)
    if known is not None:
        return known
    location = data.location
    draft = HouseholdIn(
        code=f"RQ-{secrets.token_hex(6).upper()}",
        head_name=data.name,
        address=data.address.strip() or "（居民定位，待网格员确认）",
        phone=data.phone,
        lon=location.lon if location else None,
        lat=location.lat if location else None,
        crs=location.crs if location else "wgs84",
        members=[MemberIn(name=data.name, relation=Relation.head, id_number=data.id_number)],
    )
    try:
        return await register_household(draft, actor)
    except Conflict:
        # The same person asked twice at the same moment: the other request opened the file.
        known = await _household_of_person(id_index)
        if known is None:
            raise
        return known


async def _matches(household_id: UUID) -> tuple[int, list[dict[str, str]]]:
    rules = await current_rules()
    found = match(rules, await known_facts(household_id))
    return rules.version, [
        {"service": item.service, "verdict": item.verdict.value} for item in found if item.verdict != Verdict.ineligible
    ]


async def submit(data: RequestIn, *, request_id: UUID, account_id: UUID | None, actor: Actor) -> RequestOut:
    (id_sealed, id_index), (phone_sealed, phone_index) = _sealed(data)
    lon, lat = _wgs84(data)
    if not await _already_have(request_id, account_id, id_index):
        household_id = await _household_for(data, id_index, actor)
        location = data.location
        async with write_transaction():
            if not await _already_have(request_id, account_id, id_index):
                await HelpRequest.insert(
                    HelpRequest(
                        id=request_id,
                        tracking_code=_tracking_code(),
                        account=account_id,
                        name=data.name,
                        id_number_sealed=id_sealed,
                        id_number_index=id_index,
                        phone_sealed=phone_sealed,
                        phone_index=phone_index,
                        location_source=location.source if location else LocationSource.address,
                        lon=lon,
                        lat=lat,
                        accuracy_m=location.accuracy_m if location else None,
                        address=data.address.strip(),
                        description=data.description,
                        needs=data.needs,
                        household=household_id,
                    )
                )
    await _route(request_id, data, actor)
    return await _out(request_id)


async def _route(request_id: UUID, data: RequestIn, actor: Actor) -> None:
    """Turn the stored request into a visit task. Safe to repeat: the warning's dedupe key is the
    request's id, so a retry after a crash between the two steps finishes the job exactly once."""
    row = (
        await HelpRequest.select(HelpRequest.household, HelpRequest.outcome).where(HelpRequest.id == request_id).first()
    )
    if row is None or row["outcome"] is not None:
        return
    location = data.location
    item = IncomingWarning(
        source_record_id=str(request_id),
        type_code=SOURCE,
        household_id=row["household"],
        lon=location.lon if location else None,
        lat=location.lat if location else None,
        crs=location.crs if location else "wgs84",
        facts={"needs": ",".join(data.needs)[:200]} if data.needs else {},
    )
    (result,) = await ingest(SOURCE, [item], actor=actor)
    if result.status == "rejected":
        # Our own warning refused: a bug, not the resident's fault. The row stays, the retry finishes it.
        raise RuntimeError(f"resident request {request_id} was not routed: {result.error_code}")
    if result.task_id is None:
        task = (
            await VisitTask.select(VisitTask.id)
            .where(
                VisitTask.household == row["household"], VisitTask.state.is_in([state.value for state in OPEN_STATES])
            )
            .first()
        )
        task_id = task["id"] if task else None
    else:
        task_id = UUID(result.task_id)
    version, matches = await _matches(row["household"])
    outcome = {"tasked": RequestOutcome.tasked, "no_worker": RequestOutcome.no_worker}.get(
        result.outcome or "", RequestOutcome.unplaced
    )
    await HelpRequest.update(
        {
            HelpRequest.task: task_id,
            HelpRequest.outcome: outcome,
            HelpRequest.matches: matches,
            HelpRequest.rule_version: version,
        }
    ).where(HelpRequest.id == request_id)
    await record(
        "request.submit",
        actor=actor,
        object_type="help_request",
        object_id=str(request_id),
        detail={"outcome": outcome.value, "guest": actor.account_id is None, "location": item.lon is not None},
    )


async def _already_have(request_id: UUID, account_id: UUID | None, id_index: str) -> bool:
    """True when this very request was stored before; a key that names someone else's request is refused."""
    row = (
        await HelpRequest.select(HelpRequest.account, HelpRequest.id_number_index)
        .where(HelpRequest.id == request_id)
        .first()
    )
    if row is None:
        return False
    if row["account"] != account_id or row["id_number_index"] != id_index:
        raise Conflict(
            "This Idempotency-Key was already used", "该 Idempotency-Key 已被使用", code="idempotency.conflict"
        )
    return True


async def _row_with_task(where: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    row = await HelpRequest.select().where(where).first()
    if row is None:
        raise NotFound(code="request.not_found")
    task = None
    if row["task"]:
        task = (
            await VisitTask.select(VisitTask.state, VisitTask.due_at, VisitTask.assignee)
            .where(VisitTask.id == row["task"])
            .first()
        )
    return row, task


def _status(row: dict[str, Any], task: dict[str, Any] | None) -> tuple[str, str, str]:
    return plain_status(row["outcome"], task)


async def _out(request_id: UUID) -> RequestOut:
    row, task = await _row_with_task(HelpRequest.id == request_id)
    stage, zh, en = _status(row, task)
    return RequestOut(
        id=row["id"],
        tracking_code=row["tracking_code"],
        stage=stage,
        status_zh=zh,
        status_en=en,
        created_at=row["created_at"],
        photos=(await photos_of([row["id"]])).get(row["id"], []),
    )


async def mine(account_id: UUID) -> list[RequestOut]:
    rows = (
        await HelpRequest.select(HelpRequest.id)
        .where(HelpRequest.account == account_id)
        .order_by(HelpRequest.created_at, ascending=False)
    )
    return [await _out(row["id"]) for row in rows]


async def track(tracking_code: str, phone_last4: str) -> StatusOut:
    """A guest's view: the code and the last four digits of the phone they gave, and only the status."""
    row, task = await _row_with_task(HelpRequest.tracking_code == tracking_code.strip().upper())
    phone = pii.unseal_phone(row["phone_sealed"])
    if not secrets.compare_digest(phone[-4:], phone_last4):
        raise NotFound(code="request.not_found")
    stage, zh, en = _status(row, task)
    return StatusOut(
        tracking_code=row["tracking_code"], stage=stage, status_zh=zh, status_en=en, created_at=row["created_at"]
    )


def staff_view(
    row: dict[str, Any], task: dict[str, Any] | None, photos: list[RequestPhotoOut] | None = None
) -> StaffRequestOut:
    stage, _, _ = _status(row, task)
    return StaffRequestOut(
        id=row["id"],
        tracking_code=row["tracking_code"],
        name_masked=pii.mask_name(row["name"]),
        id_number_masked=pii.mask_id_number(pii.unseal_id_number(row["id_number_sealed"])),
        phone_masked=pii.mask_phone(pii.unseal_phone(row["phone_sealed"])),
        location_source=row["location_source"],
        lon=row["lon"],
        lat=row["lat"],
        accuracy_m=row["accuracy_m"],
        address=row["address"],
        description=row["description"],
        needs=[str(need) for need in _decoded(row["needs"])],
        household_id=row["household"],
        task_id=row["task"],
        outcome=row["outcome"],
        stage=stage,
        matches=[MatchSummary(**item) for item in _decoded(row["matches"])],
        rule_version=row["rule_version"],
        created_at=row["created_at"],
        photos=photos or [],
    )


def _decoded(value: Any) -> list[Any]:
    decoded = load_json(value) if isinstance(value, str) else value
    return list(decoded or [])


async def staff_list(
    principal: Principal, *, limit: int, offset: int, task_id: UUID | None = None
) -> list[StaffRequestOut]:
    """Requests of the households the caller may see (worker: their grids; supervisor: the street),
    optionally only those of one visit task; the scope applies the same either way."""
    scope = household_scope(principal)
    if scope is NO_ACCESS:
        return []
    query = HelpRequest.select().order_by(HelpRequest.created_at, ascending=False).limit(limit).offset(offset)
    if task_id is not None:
        query = query.where(HelpRequest.task == task_id)
    if scope is not None:
        query = query.where(HelpRequest.household.is_in(Household.select(Household.id).where(scope)))
    rows = await query
    tasks = {
        row["id"]: row
        for row in await VisitTask.select(VisitTask.id, VisitTask.state, VisitTask.due_at, VisitTask.assignee).where(
            VisitTask.id.is_in([row["task"] for row in rows if row["task"]] or [UUID(int=0)])
        )
    }
    photos = await photos_of([row["id"] for row in rows])
    return [staff_view(row, tasks.get(row["task"]), photos.get(row["id"])) for row in rows]
