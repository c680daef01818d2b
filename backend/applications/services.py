"""Applications on a household's behalf: checking what the worker sends, storing it with its routing
message in one transaction, and reading back one combined status.

The application's id is the phone's UUID (its ``Idempotency-Key``). Services are checked against
the catalogue and the current rules; each service's materials (from the rules) must be there as
photos or be marked "to follow". The routing job (``applications.routing``) makes the department
cases later; until it has, a service shows as "submitted".
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec

from backend.accounts.principal import Principal
from backend.accounts.tables import Account, Role
from backend.applications.schemas import (
    ApplicationBrief,
    ApplicationIn,
    ApplicationOut,
    MaterialIn,
    PhotoRef,
    ResidentApplicationOut,
    ServiceStatusOut,
)
from backend.applications.status import SUBMITTED, Line, summarise
from backend.applications.tables import Application, DepartmentCase
from backend.audit.services import record, refuse_unseen
from backend.departments.tables import Service
from backend.households.services import scoped_household
from backend.households.tables import Household, HouseholdMember
from backend.lib import pii
from backend.lib.db import as_utc, load_json, write_transaction
from backend.lib.errors import Conflict, InvalidInput, NotFound
from backend.matching.catalogue import match_one
from backend.matching.facts import checked_facts
from backend.matching.services import current_rules, known_facts, record_facts
from backend.outbox import services as outbox
from backend.visits.tables import MaterialPhoto, Visit, VisitPhoto

log = logging.getLogger("gridaid.applications")

ROUTE_JOB = "route_application"
CONSENT_CLOCK_SKEW = timedelta(minutes=10)


# --- checking what was sent ---------------------------------------------------------------------


async def _check_services(codes: list[str], rules: Any) -> dict[str, dict[str, Any]]:
    if len(set(codes)) != len(codes):
        raise InvalidInput("Pick each service once", "每项救助只能选择一次", code="application.service_twice")
    rows = {
        row["code"]: row
        for row in await Service.select(Service.code, Service.name_zh, Service.name_en).where(Service.code.is_in(codes))
    }
    gone = [code for code in codes if code not in rows or code not in rules.services]
    if gone:
        raise InvalidInput(
            f"These services do not exist (any more): {', '.join(gone)}. Match the household again.",
            f"以下救助事项已不存在：{'、'.join(gone)}，请重新研判",
            code="application.service_unknown",
            errors=[{"field": "services", "service": code} for code in gone],
        )
    return rows


def _check_materials(codes: list[str], materials: dict[str, MaterialIn], rules: Any) -> None:
    unknown = sorted(code for code in materials if code not in rules.materials)
    if unknown:
        raise InvalidInput(
            f"Unknown materials: {', '.join(unknown)}",
            f"未知的材料：{'、'.join(unknown)}",
            code="application.material_unknown",
            errors=[{"field": "materials", "material": code} for code in unknown],
        )
    missing = [
        {"field": "materials", "service": code, "material": material}
        for code in codes
        for material in rules.services[code].get("materials", [])
        if material not in materials or not (materials[material].photos or materials[material].to_follow)
    ]
    if missing:
        names = sorted({item["material"] for item in missing})
        zh = "、".join(rules.materials.get(name, [name])[0] for name in names)
        raise InvalidInput(
            f"Materials missing (add photos or mark them 'to follow'): {', '.join(names)}",
            f"缺少材料（请拍照或标记为“后补”）：{zh}",
            code="application.materials_missing",
            errors=missing,
        )


async def _check_photos(household_id: UUID, materials: dict[str, MaterialIn]) -> None:
    refs: list[PhotoRef] = [ref for material in materials.values() for ref in material.photos]
    for ref in refs:
        by_id = ref.photo_id is not None
        by_hash = ref.visit_id is not None and ref.sha256 is not None
        half = (ref.visit_id is None) != (ref.sha256 is None)
        if by_id == by_hash or half:
            raise InvalidInput(
                "A photo is named by photo_id, or by visit_id and sha256 while it uploads",
                "照片请用 photo_id 指明，或在上传中时用 visit_id 和 sha256 指明",
                code="application.photo_ref",
            )
    photo_ids = {ref.photo_id for ref in refs if ref.photo_id}
    visit_ids = {ref.visit_id for ref in refs if ref.visit_id}
    found_photos = await _household_photos(household_id, photo_ids)
    visits = {
        row["id"]: set(load_json(row["photos"]) or [])
        for row in (
            await Visit.select(Visit.id, Visit.photos, Visit.task._.household.as_alias("household")).where(
                Visit.id.is_in(list(visit_ids))
            )
            if visit_ids
            else []
        )
        if row["household"] == household_id
    }
    bad = [str(photo) for photo in photo_ids - found_photos] + [
        f"{ref.visit_id}/{ref.sha256}"
        for ref in refs
        if ref.visit_id and (ref.visit_id not in visits or ref.sha256 not in visits[ref.visit_id])
    ]
    if bad:
        raise InvalidInput(
            "Some photos were not taken for this household",
            "部分照片不是为该户拍摄的",
            code="application.photo_unknown",
            errors=[{"field": "materials", "photo": ref} for ref in bad],
        )


async def _household_photos(household_id: UUID, photo_ids: set[UUID]) -> set[UUID]:
    """Of these photo ids, those taken for the household: on a visit, or on the apply screen."""
    if not photo_ids:
        return set()
    wanted = list(photo_ids)
    visit_photos = await VisitPhoto.select(
        VisitPhoto.id, VisitPhoto.visit._.task._.household.as_alias("household")
    ).where(VisitPhoto.id.is_in(wanted))
    material_photos = await MaterialPhoto.select(MaterialPhoto.id, MaterialPhoto.household).where(
        MaterialPhoto.id.is_in(wanted)
    )
    return {row["id"] for row in [*visit_photos, *material_photos] if row["household"] == household_id}


async def _applicant(household_id: UUID, id_number: str) -> UUID:
    try:
        index = pii.id_number_index(id_number)
    except pii.InvalidIdentifier as exc:
        raise InvalidInput(
            f"The applicant's ID number is not valid: {exc}",
            "申请人身份证号码不正确（请核对位数和校验码）",
            code="application.applicant_id_invalid",
            errors=[{"field": "applicant_id_number", "reason": exc.code}],
        ) from exc
    row = (
        await HouseholdMember.select(HouseholdMember.id)
        .where(HouseholdMember.id_number_index == index, HouseholdMember.household == household_id)
        .first()
    )
    if row is None:
        raise InvalidInput(
            "The applicant is not a member of this household",
            "申请人不是该户家庭成员",
            code="application.applicant_not_member",
        )
    return UUID(str(row["id"]))


async def _consent(household_id: UUID, data: ApplicationIn) -> dict[str, Any]:
    consent = data.consent
    if (consent.member_id is None) == (consent.name is None):
        raise InvalidInput(
            "Say who consented: a household member's id, or a guardian's name",
            "请注明同意人：家庭成员或监护人姓名",
            code="application.consent_who",
        )
    if consent.member_id is not None and not await HouseholdMember.exists().where(
        HouseholdMember.id == consent.member_id, HouseholdMember.household == household_id
    ):
        # A member of another household (a phone's stale copy, a wrong pick): say so, by field.
        raise InvalidInput(
            "The member named as consenting is not a member of this household: pick one of its members, "
            "or name the person who consented",
            "所选同意人不是该户家庭成员，请从该户成员中选择，或填写同意人姓名",
            code="application.consent_not_member",
            errors=[{"field": "consent.member_id", "member_id": str(consent.member_id)}],
        )
    at = consent.at if consent.at.tzinfo else consent.at.replace(tzinfo=UTC)
    if at > datetime.now(UTC) + CONSENT_CLOCK_SKEW:
        raise InvalidInput("Consent cannot be in the future", "同意时间不能晚于现在", code="application.consent_time")
    return {
        "member_id": str(consent.member_id) if consent.member_id else None,
        "name": consent.name,
        "relation": consent.relation,
        "method": consent.method.value,
        "at": at.astimezone(UTC).isoformat(),
    }


def _verdicts(rules: Any, codes: list[str], facts: dict[str, Any]) -> dict[str, str]:
    verdicts = {}
    for code in codes:
        try:
            verdicts[code] = match_one(rules, code, facts).verdict.value
        except Exception:  # a rule that trips over the file's gaps must not refuse the family
            log.warning("rule for %s failed on this household's facts; verdict unknown", code, exc_info=True)
            verdicts[code] = "unknown"
    return verdicts


def _materials_json(materials: dict[str, MaterialIn]) -> dict[str, Any]:
    return {
        code: {
            "photos": [
                {"photo_id": str(ref.photo_id)}
                if ref.photo_id
                else {"visit_id": str(ref.visit_id), "sha256": ref.sha256}
                for ref in material.photos
            ],
            "to_follow": material.to_follow and not material.photos,
        }
        for code, material in materials.items()
    }


# --- submitting ---------------------------------------------------------------------------------


async def submit(principal: Principal, household_id: UUID, application_id: UUID, data: ApplicationIn) -> ApplicationOut:
    """Check everything, then write the application and its routing message in one transaction."""
    household = await scoped_household(principal, household_id, "application.create")
    codes = [pick.service for pick in data.services]
    rules = await current_rules()
    await _check_services(codes, rules)
    _check_materials(codes, data.materials, rules)
    await _check_photos(household_id, data.materials)
    applicant = await _applicant(household_id, data.applicant_id_number)
    consent = await _consent(household_id, data)
    typed = checked_facts(dict(data.facts))
    known = {**await known_facts(household_id), **typed}
    verdicts = _verdicts(rules, codes, {name: value for name, value in known.items() if value is not None})

    created = False
    try:
        async with write_transaction():
            existing = await Application.select(Application.created_by).where(Application.id == application_id).first()
            if existing is not None:
                if existing["created_by"] == principal.account_id:
                    return await application_status(application_id)  # the phone's retry of its own upload
                raise Conflict("This application id is taken", "该申请编号已被使用", code="application.exists")
            await Application.insert(
                Application(
                    id=application_id,
                    household=household_id,
                    street=household["street"],
                    grid_code=household["grid_code"],
                    created_by=principal.account_id,
                    on_behalf=principal.role != Role.resident,
                    applicant_member=applicant,
                    services=msgspec.json.encode(codes).decode(),
                    answers=msgspec.json.encode({pick.service: pick.answers for pick in data.services}).decode(),
                    materials=msgspec.json.encode(_materials_json(data.materials)).decode(),
                    consent=msgspec.json.encode(consent).decode(),
                    rule_version=rules.version,
                    client_rule_version=data.rule_version,
                    verdicts=msgspec.json.encode(verdicts).decode(),
                )
            )
            await outbox.add(ROUTE_JOB, {"application": str(application_id)})
            await record(
                "application.create",
                actor=principal.actor,
                object_type="application",
                object_id=str(application_id),
                detail={
                    "household": str(household_id),
                    "services": codes,
                    "rule_version": rules.version,
                    "to_follow": sorted(code for code, m in data.materials.items() if m.to_follow and not m.photos),
                },
            )
            created = True
    except Exception:
        # Two uploads of one application at once (PostgreSQL): the loser finds the winner's row.
        taken = await Application.select(Application.created_by).where(Application.id == application_id).first()
        if taken is None:
            raise
        if taken["created_by"] != principal.account_id:
            raise Conflict("This application id is taken", "该申请编号已被使用", code="application.exists") from None
    if created and typed:
        # After the application is safe: what the visit found becomes the household's recorded facts.
        await record_facts(principal, household_id, typed)
    return await application_status(application_id)


# --- reading ------------------------------------------------------------------------------------


async def linked_residents(household_id: UUID) -> list[UUID]:
    """Resident accounts that belong to the household.

    A resident account whose phone (verified by SMS code at sign-up) is the household file's phone
    counts as the family's. A request naming someone's ID number is not enough: ID numbers are not
    secrets, and the family's decisions are."""
    household = await Household.select(Household.phone_index).where(Household.id == household_id).first()
    if household is None or not household["phone_index"]:
        return []
    rows = await Account.select(Account.id).where(
        Account.role == Role.resident, Account.is_active.eq(True), Account.phone_index == household["phone_index"]
    )
    return [UUID(str(row["id"])) for row in rows]


async def linked_households(account_id: UUID) -> list[UUID]:
    """The households a resident account belongs to: the same rule as ``linked_residents``, read the
    other way (an active resident account whose SMS-verified phone is the household file's phone)."""
    account = (
        await Account.select(Account.phone_index)
        .where(Account.id == account_id, Account.role == Role.resident, Account.is_active.eq(True))
        .first()
    )
    if account is None or not account["phone_index"]:
        return []
    rows = await Household.select(Household.id).where(Household.phone_index == account["phone_index"])
    return [UUID(str(row["id"])) for row in rows]


async def _may_read(principal: Principal, row: dict[str, Any]) -> bool:
    match principal.role:
        case Role.admin:
            return True
        case Role.supervisor:
            return principal.street_id is not None and row["street"] == principal.street_id
        case Role.grid_worker:
            if row["created_by"] == principal.account_id:
                return True
            grid = await Household.select(Household.grid_code).where(Household.id == row["household"]).first()
            return grid is not None and grid["grid_code"] in principal.grid_codes
        case Role.resident:
            return principal.account_id in await linked_residents(row["household"])
        case _:
            return False


async def scoped_application(principal: Principal, application_id: UUID, action: str) -> dict[str, Any]:
    row = await Application.select().where(Application.id == application_id).first()
    if row is None or not await _may_read(principal, row):
        await refuse_unseen(
            principal.actor,
            action,
            "application",
            application_id,
            exists=row is not None,
            code="application.not_found",
        )
    return row


async def _service_names(codes: set[str]) -> dict[str, dict[str, Any]]:
    if not codes:
        return {}
    rows = await Service.select(
        Service.code, Service.name_zh, Service.name_en, Service.department.code.as_alias("department")
    ).where(Service.code.is_in(sorted(codes)))
    return {row["code"]: row for row in rows}


async def statuses(application_rows: list[dict[str, Any]]) -> dict[UUID, ApplicationOut]:
    """The combined status of each application: per service, and one sentence in zh and en."""
    if not application_rows:
        return {}
    ids = [row["id"] for row in application_rows]
    cases: dict[tuple[Any, str], dict[str, Any]] = {
        (case["application"], case["service"]): case
        for case in await DepartmentCase.select(
            DepartmentCase.id,
            DepartmentCase.application,
            DepartmentCase.service,
            DepartmentCase.state,
            DepartmentCase.due_at,
            DepartmentCase.amount_yuan,
            DepartmentCase.period,
            DepartmentCase.period_months,
            DepartmentCase.reason,
            DepartmentCase.decided_at,
            DepartmentCase.department.code.as_alias("department"),
        ).where(DepartmentCase.application.is_in(ids))
    }
    picked = {row["id"]: list(load_json(row["services"])) for row in application_rows}
    names = await _service_names({code for codes in picked.values() for code in codes})
    out = {}
    for row in application_rows:
        services, lines = [], []
        for code in picked[row["id"]]:
            case = cases.get((row["id"], code))
            name = names.get(code, {"name_zh": code, "name_en": code, "department": None})
            due = as_utc(case["due_at"]) if case else None
            services.append(
                ServiceStatusOut(
                    service=code,
                    name_zh=name["name_zh"],
                    name_en=name["name_en"],
                    department=case["department"] if case else name["department"],
                    case_id=case["id"] if case else None,
                    state=case["state"] if case else SUBMITTED,
                    due_at=due,
                    amount_yuan=case["amount_yuan"] if case else None,
                    period=case["period"] if case else None,
                    period_months=case["period_months"] if case else None,
                    reason=case["reason"] if case else "",
                    decided_at=as_utc(case["decided_at"]) if case and case["decided_at"] else None,
                )
            )
            lines.append(
                Line(
                    name_zh=name["name_zh"],
                    name_en=name["name_en"],
                    state=case["state"] if case else SUBMITTED,
                    due_at=due,
                    amount_yuan=case["amount_yuan"] if case else None,
                    period=case["period"] if case else None,
                    period_months=case["period_months"] if case else None,
                )
            )
        zh, en, decided = summarise(lines)
        out[row["id"]] = ApplicationOut(
            id=row["id"],
            household_id=row["household"],
            created_at=as_utc(row["created_at"]),
            created_by=row["created_by"],
            on_behalf=bool(row["on_behalf"]),
            rule_version=row["rule_version"],
            services=services,
            total=len(services),
            decided=decided,
            summary_zh=zh,
            summary_en=en,
        )
    return out


async def application_status(application_id: UUID) -> ApplicationOut:
    row = await Application.select().where(Application.id == application_id).first()
    if row is None:
        raise NotFound(code="application.not_found")
    return (await statuses([row]))[row["id"]]


async def household_applications(principal: Principal, household_id: UUID) -> list[ApplicationBrief]:
    await scoped_household(principal, household_id, "application.list")
    rows = (
        await Application.select()
        .where(Application.household == household_id)
        .order_by(Application.created_at, ascending=False)
        .limit(100)
    )
    found = await statuses(rows)
    return [
        ApplicationBrief(
            id=status.id,
            created_at=status.created_at,
            total=status.total,
            decided=status.decided,
            summary_zh=status.summary_zh,
            summary_en=status.summary_en,
        )
        for status in (found[row["id"]] for row in rows)
    ]


async def resident_applications(principal: Principal) -> list[ResidentApplicationOut]:
    """The applications of the resident's households, newest first, each with its one sentence.
    Showing them is a read of the family's case: audited (when there is anything to show)."""
    households = await linked_households(principal.account_id)
    if not households:
        return []
    rows = (
        await Application.select()
        .where(Application.household.is_in(households))
        .order_by(Application.created_at, ascending=False)
        .limit(100)
    )
    if not rows:
        return []
    names = {
        row["id"]: pii.mask_name(row["head_name"])
        for row in await Household.select(Household.id, Household.head_name).where(Household.id.is_in(households))
    }
    found = await statuses(rows)
    await record(
        "application.list_mine",
        actor=principal.actor,
        object_type="account",
        object_id=str(principal.account_id),
        detail={"applications": [str(row["id"]) for row in rows]},
    )
    return [
        ResidentApplicationOut(
            id=status.id,
            created_at=status.created_at,
            on_behalf=status.on_behalf,
            household_name_masked=names.get(status.household_id, ""),
            services=status.services,
            total=status.total,
            decided=status.decided,
            summary_zh=status.summary_zh,
            summary_en=status.summary_en,
        )
        for status in (found[row["id"]] for row in rows)
    ]
