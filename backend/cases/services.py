"""Department cases for the officers who decide them: the inbox, one case, and each decision step.

An officer sees only their department's cases (``case_scope``); another department's case is
"not found" with a ``denied`` audit row. Each step checks the state it starts from, writes the case,
an audit row and an inbox message (with a push) to the grid worker who submitted the application
and to the household's resident accounts. Asking for more information becomes a visit task for the
household's grid worker through the warnings pipeline (type ``info_requested``), which joins the
household's open task if there is one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from backend.accounts.principal import Principal
from backend.accounts.tables import Role
from backend.applications.services import linked_residents
from backend.applications.tables import CLOCK_RUNNING_STATES, Application, CaseState, DepartmentCase
from backend.audit.services import record, refuse_unseen
from backend.cases.schemas import (
    CaseDetail,
    CaseOut,
    ConsentOut,
    HouseholdMasked,
    MaterialStatus,
    MemberMasked,
)
from backend.departments.tables import Service
from backend.households.scope import NO_ACCESS
from backend.households.tables import Household, HouseholdMember
from backend.lib import pii
from backend.lib.db import as_utc, load_json, write_transaction
from backend.lib.errors import Conflict
from backend.matching.services import rules_version
from backend.notifications.services import notify
from backend.warnings.services import IncomingWarning, ingest

INFO_TASK_TYPE = "info_requested"

# Which step may follow which.
STEPS: dict[str, tuple[frozenset[CaseState], CaseState]] = {
    "accept": (frozenset({CaseState.new, CaseState.info_requested}), CaseState.accepted),
    "request_info": (frozenset({CaseState.new, CaseState.accepted}), CaseState.info_requested),
    # Emergency help is often given at once ("先行救助"): approving a case nobody accepted yet is allowed.
    "approve": (frozenset({CaseState.new, CaseState.accepted, CaseState.info_requested}), CaseState.approved),
    "reject": (frozenset({CaseState.new, CaseState.accepted, CaseState.info_requested}), CaseState.rejected),
}

_TITLES = {
    "accept": ("{zh}：部门已受理", "{en}: accepted by the department"),
    "request_info": ("{zh}：部门要求补充材料", "{en}: the department asks for more information"),
    "approve": ("{zh}：已批准", "{en}: approved"),
    "reject": ("{zh}：未获批准", "{en}: not approved"),
}

CASE_COLUMNS = (
    DepartmentCase.id,
    DepartmentCase.application,
    DepartmentCase.service,
    DepartmentCase.department.code.as_alias("department_code"),
    DepartmentCase.state,
    DepartmentCase.due_at,
    DepartmentCase.paused_at,
    DepartmentCase.escalation,
    DepartmentCase.verdict,
    DepartmentCase.rule_version,
    DepartmentCase.amount_yuan,
    DepartmentCase.period,
    DepartmentCase.period_months,
    DepartmentCase.reason,
    DepartmentCase.info_request,
    DepartmentCase.info_task,
    DepartmentCase.created_at,
    DepartmentCase.decided_at,
    DepartmentCase.application.household.as_alias("household"),
)


def case_scope(principal: Principal) -> Any:
    """A WHERE clause; ``None`` for all; NO_ACCESS for none."""
    match principal.role:
        case Role.admin:
            return None
        case Role.department_officer if principal.department_id is not None:
            return DepartmentCase.department == principal.department_id
        case _:
            return NO_ACCESS


async def scoped_case(principal: Principal, case_id: UUID, action: str) -> dict[str, Any]:
    scope = case_scope(principal)
    row = None
    if scope is not NO_ACCESS:
        query = DepartmentCase.select(*CASE_COLUMNS).where(DepartmentCase.id == case_id)
        row = await (query.where(scope) if scope is not None else query).first()
    if row is None:
        await refuse_unseen(
            principal.actor,
            action,
            "case",
            case_id,
            exists=await DepartmentCase.exists().where(DepartmentCase.id == case_id),
            code="case.not_found",
        )
    return row


async def list_cases(
    principal: Principal,
    *,
    state: CaseState | None,
    overdue: bool | None,
    service: str | None,
    include_decided: bool,
    limit: int,
    offset: int,
) -> tuple[list[CaseOut], int]:
    scope = case_scope(principal)
    if scope is NO_ACCESS:
        return [], 0
    clauses = [clause for clause in (scope,) if clause is not None]
    if state is not None:
        clauses.append(DepartmentCase.state == state)
    elif not include_decided:
        clauses.append(DepartmentCase.state.not_in([s.value for s in (CaseState.approved, CaseState.rejected)]))
    if overdue is not None:
        now = datetime.now(UTC)
        clauses.append(DepartmentCase.due_at < now if overdue else DepartmentCase.due_at >= now)
        if overdue:
            clauses.append(DepartmentCase.state.is_in([state.value for state in CLOCK_RUNNING_STATES]))
    if service:
        clauses.append(DepartmentCase.service == service)
    query = DepartmentCase.select(*CASE_COLUMNS).order_by(DepartmentCase.due_at).limit(limit).offset(offset)
    count = DepartmentCase.count()
    if clauses:
        query, count = query.where(*clauses), count.where(*clauses)
    rows = await query
    return await cases_out(rows), await count


async def cases_out(rows: list[dict[str, Any]]) -> list[CaseOut]:
    if not rows:
        return []
    households = {
        row["id"]: row
        for row in await Household.select(
            Household.id,
            Household.code,
            Household.head_name,
            Household.category,
            Household.grid_code,
            Household.phone_sealed,
        ).where(Household.id.is_in(list({row["household"] for row in rows})))
    }
    names = {
        row["code"]: row
        for row in await Service.select(Service.code, Service.name_zh, Service.name_en).where(
            Service.code.is_in(list({row["service"] for row in rows}))
        )
    }
    now = datetime.now(UTC)
    out = []
    for row in rows:
        household = households[row["household"]]
        name = names.get(row["service"], {"name_zh": row["service"], "name_en": row["service"]})
        due = as_utc(row["due_at"])
        out.append(
            CaseOut(
                id=row["id"],
                application_id=row["application"],
                service=row["service"],
                service_name_zh=name["name_zh"],
                service_name_en=name["name_en"],
                department=row["department_code"],
                state=row["state"],
                due_at=due,
                overdue=due < now and row["state"] in {state.value for state in CLOCK_RUNNING_STATES},
                escalation=row["escalation"],
                verdict=row["verdict"],
                rule_version=row["rule_version"],
                amount_yuan=row["amount_yuan"],
                period=row["period"],
                period_months=row["period_months"],
                reason=row["reason"],
                info_request=row["info_request"],
                info_task_id=row["info_task"],
                created_at=as_utc(row["created_at"]),
                decided_at=as_utc(row["decided_at"]) if row["decided_at"] else None,
                household=HouseholdMasked(
                    id=household["id"],
                    code=household["code"],
                    head_name_masked=pii.mask_name(household["head_name"]),
                    category=household["category"],
                    grid_code=household["grid_code"],
                    phone_masked=pii.mask_phone(pii.unseal_phone(household["phone_sealed"]))
                    if household["phone_sealed"]
                    else None,
                ),
            )
        )
    return out


def _member(row: dict[str, Any]) -> MemberMasked:
    return MemberMasked(
        id=row["id"],
        name_masked=pii.mask_name(row["name"]),
        relation=row["relation"],
        id_number_masked=pii.mask_id_number(pii.unseal_id_number(row["id_number_sealed"])),
        birth_year=row["birth_year"],
        disability_grade=row["disability_grade"],
    )


async def case_detail(principal: Principal, case_id: UUID) -> CaseDetail:
    row = await scoped_case(principal, case_id, "case.view")
    (case,) = await cases_out([row])
    application = await Application.select().where(Application.id == row["application"]).first()
    assert application is not None
    members = {
        member["id"]: member
        for member in await HouseholdMember.select().where(HouseholdMember.household == row["household"])
    }
    rules = await rules_version(application["rule_version"])
    given = load_json(application["materials"]) or {}
    materials = []
    for code in rules.services.get(row["service"], {}).get("materials", []):
        entry = given.get(code) or {}
        photos = list(entry.get("photos", []))
        status = "provided" if photos else "to_follow" if entry.get("to_follow") else "missing"
        zh, en = (rules.materials.get(code) or [code, code])[:2]
        materials.append(MaterialStatus(material=code, name_zh=zh, name_en=en, status=status, photos=photos))
    consent = load_json(application["consent"]) or {}
    by = consent.get("name") or ""
    if consent.get("member_id"):
        member = members.get(UUID(consent["member_id"]))
        by = member["name"] if member else ""
    applicant = members.get(application["applicant_member"]) if application["applicant_member"] else None
    await record("case.view", actor=principal.actor, object_type="case", object_id=str(case_id))
    return CaseDetail(
        **{name: getattr(case, name) for name in case.__struct_fields__},
        answers=(load_json(application["answers"]) or {}).get(row["service"], {}),
        materials=materials,
        consent=ConsentOut(
            method=consent.get("method", ""),
            at=consent.get("at", ""),
            by_masked=pii.mask_name(by),
            relation=consent.get("relation", ""),
        ),
        applicant=_member(applicant) if applicant else None,
        members=[_member(member) for member in members.values()],
        submitted_by=application["created_by"],
        submitted_at=as_utc(application["created_at"]),
    )


async def _info_task(principal: Principal, case: dict[str, Any], message: str) -> UUID | None:
    """A visit task for the household's grid worker (or the household's open task, joined)."""
    (result,) = await ingest(
        case["department_code"],
        [
            IncomingWarning(
                source_record_id=f"case:{case['id']}:{uuid4().hex[:12]}",
                type_code=INFO_TASK_TYPE,
                household_id=case["household"],
                facts={"case": str(case["id"]), "service": case["service"], "request": message[:200]},
            )
        ],
        actor=principal.actor,
    )
    if result.status != "created":
        raise Conflict(
            f"Could not create the visit task: {result.error or result.status}",
            "未能生成补充材料的走访任务",
            code="case.info_task_failed",
        )
    return UUID(result.task_id) if result.task_id else None


async def step(principal: Principal, case_id: UUID, action: str, **data: Any) -> CaseDetail:
    allowed_from, target = STEPS[action]
    # Scope first, outside the write: a denial's audit row must not roll back with the refusal.
    await scoped_case(principal, case_id, f"case.{action}")
    async with write_transaction():
        case = await DepartmentCase.select(*CASE_COLUMNS).where(DepartmentCase.id == case_id).first()
        assert case is not None
        state = CaseState(case["state"])
        if state not in allowed_from:
            raise Conflict(
                f"A case that is {state.value} cannot be {action.replace('_', ' ')}ed",
                f"案件当前状态（{state.value}）不能执行该操作",
                code="case.bad_state",
            )
        now = datetime.now(UTC)
        values: dict[Any, Any] = {DepartmentCase.state: target, DepartmentCase.updated_at: now}
        detail: dict[str, Any] = {"from": state.value, "to": target.value, "service": case["service"]}
        if action == "approve":
            values.update(
                {
                    DepartmentCase.amount_yuan: data["amount_yuan"],
                    DepartmentCase.period: data["period"],
                    DepartmentCase.period_months: data.get("period_months"),
                }
            )
            detail.update(amount_yuan=data["amount_yuan"], period=data["period"])
        if action == "reject":
            values[DepartmentCase.reason] = data["reason"]
        if target in (CaseState.approved, CaseState.rejected):
            values.update({DepartmentCase.decided_at: now, DepartmentCase.decided_by: principal.account_id})
        if state == CaseState.info_requested and case["paused_at"] is not None:
            # The information came (or the department decided without it): the time the family was
            # waited for does not count against the department's deadline.
            waited = now - as_utc(case["paused_at"])
            values.update({DepartmentCase.due_at: as_utc(case["due_at"]) + waited, DepartmentCase.paused_at: None})
            detail["clock_stopped_s"] = int(waited.total_seconds())
        if action == "request_info":
            values[DepartmentCase.paused_at] = now
            task_id = await _info_task(principal, case, data["message"])
            values.update({DepartmentCase.info_request: data["message"], DepartmentCase.info_task: task_id})
            detail["task"] = str(task_id) if task_id else None
        await DepartmentCase.update(values).where(DepartmentCase.id == case_id)
        await record(f"case.{action}", actor=principal.actor, object_type="case", object_id=str(case_id), detail=detail)
        await _tell_family_side(case, action)
    return await case_detail(principal, case_id)


async def _tell_family_side(case: dict[str, Any], action: str) -> None:
    """The grid worker who submitted the application, and the household's resident accounts."""
    application = (
        await Application.select(Application.created_by, Application.household)
        .where(Application.id == case["application"])
        .first()
    )
    assert application is not None
    name = await Service.select(Service.name_zh, Service.name_en).where(Service.code == case["service"]).first()
    zh, en = _TITLES[action]
    people = [application["created_by"], *await linked_residents(application["household"])]
    await notify(
        people,
        kind=f"case.{action}",
        title_zh=zh.format(zh=name["name_zh"] if name else case["service"]),
        title_en=en.format(en=name["name_en"] if name else case["service"]),
        detail={"application": str(case["application"]), "case": str(case["id"]), "service": case["service"]},
    )
