"""Every route × every role, with the caller's own objects and someone else's.

The routes come from the application's own route table, so a new route that is not in POLICY
fails this test until someone decides who may call it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute

from backend.audit.tables import AuditLog
from tests.integration.conftest import PASSWORD, Api, World

pytestmark = pytest.mark.anyio

ROLES = ("admin", "supervisor_a", "worker_a", "officer", "resident")
EVERYONE = frozenset(ROLES)
STAFF = frozenset({"admin", "supervisor_a", "worker_a", "officer"})
HOUSEHOLD_STAFF = frozenset({"admin", "supervisor_a", "worker_a"})
ADMIN = frozenset({"admin"})
SUPERVISOR_UP = frozenset({"admin", "supervisor_a"})
WORKER = frozenset({"worker_a"})
RESIDENT = frozenset({"resident"})
OFFICER = frozenset({"officer"})
OFFICER_UP = frozenset({"officer", "admin"})
PUBLIC = "public"


@dataclass(frozen=True)
class Rule:
    allowed: frozenset[str] | str
    # For routes that name one object: which world object is the caller's own, which is not.
    scoped: bool = False
    # Admins see every household; nobody, admins included, reads another person's inbox.
    admin_sees_all: bool = True


POLICY: dict[tuple[str, str], Rule] = {
    ("GET", "/health"): Rule(PUBLIC),
    ("GET", "/ready"): Rule(PUBLIC),
    ("POST", "/api/v1/auth/login"): Rule(PUBLIC),
    ("POST", "/api/v1/auth/refresh"): Rule(PUBLIC),
    ("POST", "/api/v1/auth/logout"): Rule(EVERYONE),
    ("GET", "/api/v1/auth/me"): Rule(EVERYONE),
    ("POST", "/api/v1/auth/totp/enrol"): Rule(EVERYONE),
    ("POST", "/api/v1/auth/totp/confirm"): Rule(EVERYONE),
    ("POST", "/api/v1/auth/password"): Rule(EVERYONE),
    ("GET", "/api/v1/accounts"): Rule(ADMIN),
    ("POST", "/api/v1/accounts"): Rule(ADMIN),
    ("GET", "/api/v1/accounts/{account_id:uuid}"): Rule(ADMIN),
    ("PATCH", "/api/v1/accounts/{account_id:uuid}"): Rule(ADMIN),
    ("POST", "/api/v1/accounts/{account_id:uuid}/revoke-sessions"): Rule(ADMIN),
    ("GET", "/api/v1/role-policies"): Rule(ADMIN),
    ("PUT", "/api/v1/role-policies/{role:str}"): Rule(ADMIN),
    ("GET", "/api/v1/org-units"): Rule(STAFF),
    ("GET", "/api/v1/departments"): Rule(EVERYONE),
    ("GET", "/api/v1/households"): Rule(HOUSEHOLD_STAFF),
    ("POST", "/api/v1/households"): Rule(HOUSEHOLD_STAFF),
    ("POST", "/api/v1/households/lookup"): Rule(HOUSEHOLD_STAFF),
    ("GET", "/api/v1/households/{household_id:uuid}"): Rule(HOUSEHOLD_STAFF, scoped=True),
    ("POST", "/api/v1/households/{household_id:uuid}/reveal"): Rule(HOUSEHOLD_STAFF, scoped=True),
    ("GET", "/api/v1/grids"): Rule(HOUSEHOLD_STAFF),
    ("POST", "/api/v1/grids/locate"): Rule(HOUSEHOLD_STAFF),
    ("GET", "/api/v1/grids/unplaced"): Rule(frozenset({"admin", "supervisor_a"})),
    ("GET", "/api/v1/grids/versions"): Rule(ADMIN),
    ("POST", "/api/v1/grids/import"): Rule(ADMIN),
    ("GET", "/api/v1/notifications"): Rule(EVERYONE),
    ("POST", "/api/v1/notifications/{notification_id:uuid}/read"): Rule(EVERYONE, scoped=True, admin_sees_all=False),
    ("POST", "/api/v1/warnings"): Rule(PUBLIC),  # department systems: API key, see test_warnings
    ("GET", "/api/v1/warnings/unmatched"): Rule(SUPERVISOR_UP),
    ("GET", "/api/v1/warnings/types"): Rule(HOUSEHOLD_STAFF),
    ("POST", "/api/v1/warnings/types"): Rule(ADMIN),
    ("POST", "/api/v1/departments/{department_code:str}/api-keys"): Rule(ADMIN),
    ("GET", "/api/v1/tasks"): Rule(HOUSEHOLD_STAFF),
    ("GET", "/api/v1/tasks/{task_id:uuid}"): Rule(HOUSEHOLD_STAFF, scoped=True),
    ("POST", "/api/v1/tasks/{task_id:uuid}/accept"): Rule(WORKER, scoped=True),
    ("POST", "/api/v1/tasks/{task_id:uuid}/return"): Rule(WORKER, scoped=True),
    ("POST", "/api/v1/tasks/{task_id:uuid}/close"): Rule(HOUSEHOLD_STAFF, scoped=True),
    ("POST", "/api/v1/tasks/{task_id:uuid}/visit"): Rule(WORKER, scoped=True),
    ("POST", "/api/v1/tasks/reassign"): Rule(SUPERVISOR_UP),
    ("GET", "/api/v1/covers"): Rule(SUPERVISOR_UP),
    ("POST", "/api/v1/covers"): Rule(SUPERVISOR_UP),
    ("GET", "/api/v1/sync"): Rule(EVERYONE),
    ("GET", "/api/v1/push/vapid-public-key"): Rule(EVERYONE),
    ("POST", "/api/v1/push/subscriptions"): Rule(EVERYONE),
    ("DELETE", "/api/v1/push/subscriptions"): Rule(EVERYONE),
    ("GET", "/api/v1/audit"): Rule(ADMIN),
    ("GET", "/api/v1/audit/verify"): Rule(ADMIN),
    # The field app (issue 5): visits, resumable photo uploads, photo reads, sync health, supervisor helpers.
    ("GET", "/api/v1/visits"): Rule(HOUSEHOLD_STAFF),
    ("PUT", "/api/v1/visits/{visit_id:uuid}/photos/{sha256:str}"): Rule(WORKER, scoped=True),
    ("GET", "/api/v1/visits/{visit_id:uuid}/photos/{sha256:str}/status"): Rule(WORKER, scoped=True),
    # A material photo (ID card, authorisation) taken on the apply screen, for the task's household.
    ("PUT", "/api/v1/tasks/{task_id:uuid}/photos/{sha256:str}"): Rule(WORKER, scoped=True),
    # Officers: only photos handed in as material of their department's case (the officer's "own").
    ("GET", "/api/v1/photos/{photo_id:uuid}"): Rule(HOUSEHOLD_STAFF | {"officer"}, scoped=True),
    ("GET", "/api/v1/photos/{photo_id:uuid}/thumbnail"): Rule(HOUSEHOLD_STAFF | {"officer"}, scoped=True),
    ("POST", "/api/v1/sync/health"): Rule(EVERYONE),
    ("GET", "/api/v1/workers"): Rule(SUPERVISOR_UP),
    ("GET", "/api/v1/workers/sync-health"): Rule(SUPERVISOR_UP),
    ("GET", "/api/v1/grids/workload"): Rule(SUPERVISOR_UP),
    ("GET", "/api/v1/matching/rules"): Rule(EVERYONE),
    ("PUT", "/api/v1/matching/rules"): Rule(ADMIN),
    ("GET", "/api/v1/matching/rules/versions"): Rule(ADMIN),
    ("GET", "/api/v1/households/{household_id:uuid}/facts"): Rule(HOUSEHOLD_STAFF, scoped=True),
    ("PUT", "/api/v1/households/{household_id:uuid}/facts"): Rule(HOUSEHOLD_STAFF, scoped=True),
    ("POST", "/api/v1/households/{household_id:uuid}/match"): Rule(HOUSEHOLD_STAFF, scoped=True),
    ("POST", "/api/v1/households/{household_id:uuid}/place"): Rule(SUPERVISOR_UP, scoped=True),
    ("POST", "/api/v1/residents/codes"): Rule(PUBLIC),  # see test_requests
    ("POST", "/api/v1/residents/signup"): Rule(PUBLIC),
    ("POST", "/api/v1/requests/guest"): Rule(PUBLIC),
    ("GET", "/api/v1/requests/track"): Rule(PUBLIC),
    ("POST", "/api/v1/requests"): Rule(RESIDENT),
    ("GET", "/api/v1/requests/mine"): Rule(RESIDENT),
    ("GET", "/api/v1/requests"): Rule(HOUSEHOLD_STAFF),
    # A request's photos (side A: a guest's request in GA1; side B: the world resident's own, in GB1).
    ("PUT", "/api/v1/requests/{request_id:uuid}/photos/{sha256:str}"): Rule(RESIDENT, scoped=True),
    ("PUT", "/api/v1/requests/{request_id:uuid}/guest-photos/{sha256:str}"): Rule(PUBLIC),  # upload token
    ("GET", "/api/v1/requests/{request_id:uuid}/photos/{request_photo_id:uuid}"): Rule(
        HOUSEHOLD_STAFF | RESIDENT, scoped=True
    ),
    ("GET", "/api/v1/requests/{request_id:uuid}/photos/{request_photo_id:uuid}/thumbnail"): Rule(
        HOUSEHOLD_STAFF | RESIDENT, scoped=True
    ),
    ("GET", "/api/v1/applications/mine"): Rule(RESIDENT),
    # Applications, department cases and dead letters (issue 6, sections 3, 5–7).
    ("POST", "/api/v1/households/{household_id:uuid}/applications"): Rule(WORKER, scoped=True),
    ("GET", "/api/v1/households/{household_id:uuid}/applications"): Rule(HOUSEHOLD_STAFF, scoped=True),
    ("GET", "/api/v1/applications/{application_id:uuid}"): Rule(HOUSEHOLD_STAFF | RESIDENT, scoped=True),
    ("GET", "/api/v1/cases"): Rule(OFFICER_UP),
    ("GET", "/api/v1/cases/{case_id:uuid}"): Rule(OFFICER_UP, scoped=True),
    ("POST", "/api/v1/cases/{case_id:uuid}/accept"): Rule(OFFICER, scoped=True),
    ("POST", "/api/v1/cases/{case_id:uuid}/request-info"): Rule(OFFICER, scoped=True),
    ("POST", "/api/v1/cases/{case_id:uuid}/approve"): Rule(OFFICER, scoped=True),
    ("POST", "/api/v1/cases/{case_id:uuid}/reject"): Rule(OFFICER, scoped=True),
    ("GET", "/api/v1/dead-letters"): Rule(ADMIN),
    ("POST", "/api/v1/dead-letters/requeue"): Rule(ADMIN),
}


# Calls that end the caller's session, or every other session of the account.
SESSION_ENDING = {"/api/v1/auth/logout", "/api/v1/auth/password"}


def _route_table(app: Litestar) -> list[tuple[str, str]]:
    pairs = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for method in sorted(route.methods - {"OPTIONS", "HEAD"}):
            pairs.append((method, route.path))
    return pairs


def _is_public_by_design(path: str) -> bool:
    # The OpenAPI documents and the PWA's static files carry no data.
    return path.startswith("/schema") or not path.startswith(("/api/", "/health", "/ready"))


def test_every_route_has_a_policy(app: Litestar) -> None:
    missing = [pair for pair in _route_table(app) if pair not in POLICY and not _is_public_by_design(pair[1])]
    assert missing == [], f"routes without an authorisation rule: {missing}"


class Objects:
    """Concrete values for path parameters and bodies, own and other, per role."""

    def __init__(
        self,
        world: World,
        spare_account: str,
        notifications: dict[str, str],
        tasks: dict[str, str],
        field: dict[str, str] | None = None,
    ) -> None:
        self.field = field or {}
        self.world = world
        self.spare_account = spare_account
        self.notifications = notifications
        self.tasks = tasks

    def household(self, role: str, own: bool) -> str:
        side = "A" if role in ("admin", "supervisor_a", "worker_a") else "B"
        return self.world.households[side if own else ("B" if side == "A" else "A")]

    def path(self, template: str, role: str, own: bool) -> str:
        return (
            template.replace("{account_id:uuid}", self.spare_account)
            .replace("{role:str}", "resident")
            .replace("{household_id:uuid}", self.household(role, own))
            .replace("{notification_id:uuid}", self.notifications[role if own else "supervisor_b"])
            .replace("{task_id:uuid}", self.tasks["A" if own else "B"])
            .replace("{department_code:str}", "civil_affairs")
            .replace("{visit_id:uuid}", self.field.get("visit_A" if own else "visit_B", ""))
            .replace("{sha256:str}", self.field.get("sha_A" if own else "sha_B", ""))
            .replace(
                "{photo_id:uuid}",
                self.field["photo_officer"]
                if role == "officer" and own
                else self.field.get("photo_" + self.side(role, own), ""),
            )
            .replace("{application_id:uuid}", self.field.get("application_" + self.side(role, own), ""))
            .replace("{case_id:uuid}", self.field.get("case_" + self.side(role, own), ""))
            .replace("{request_id:uuid}", self.field.get("request_" + self.side(role, own), ""))
            .replace("{request_photo_id:uuid}", self.field.get("request_photo_" + self.side(role, own), ""))
        )

    def side(self, role: str, own: bool) -> str:
        side = "A" if role in ("admin", "supervisor_a", "worker_a") else "B"
        return side if own else ("B" if side == "A" else "A")

    def body(self, method: str, template: str, role: str, own: bool) -> dict[str, Any] | None:
        if method in ("GET", "DELETE"):
            return None
        world = self.world
        side = "A" if own or role == "admin" else "B"
        bodies: dict[str, dict[str, Any]] = {
            "/api/v1/auth/login": {"login": "nobody", "password": "x-x-x-x-x"},
            "/api/v1/auth/refresh": {"refresh_token": "grt_not-a-real-token"},
            "/api/v1/auth/totp/confirm": {"code": "000000"},
            "/api/v1/auth/password": {"current_password": PASSWORD, "new_password": PASSWORD},
            "/api/v1/accounts": {
                "username": f"m_{secrets.token_hex(4)}",
                "display_name": "m",
                "password": PASSWORD,
                "role": "resident",
            },
            "/api/v1/accounts/{account_id:uuid}": {"display_name": "matrix"},
            "/api/v1/role-policies/{role:str}": {"totp_required": False},
            "/api/v1/households": {
                "code": f"MX{secrets.token_hex(4)}",
                "head_name": "矩阵",
                "address": "矩阵路1号",
                "grid_code": world.grid_codes["GA2"],
                "members": [],
            },
            "/api/v1/households/lookup": {"id_number": world.id_numbers[side]},
            "/api/v1/households/{household_id:uuid}/reveal": {"field": "phone", "reason": "矩阵测试"},
            "/api/v1/grids/locate": {"points": [[119.905, 31.705]]},
            "/api/v1/push/subscriptions": {
                "endpoint": "https://fcm.googleapis.com/fcm/send/gridaid-matrix",
                "expirationTime": None,
                "keys": {
                    "p256dh": "BMmAP4eFXGDE27RxFXwS8UbkdjByPHlD4dKRCIk3TvUbGXNpmMQvQSV6Z9At2wHV4B-YOvzrTbwXo0yPtSAPfU8",
                    "auth": "vDm9gd_RQI0ca4SaF7L-rA",
                },
            },
            "/api/v1/warnings/types": {
                "code": f"matrix_{secrets.token_hex(3)}",
                "name_zh": "矩阵",
                "name_en": "matrix",
            },
            "/api/v1/departments/{department_code:str}/api-keys": {"name": "matrix"},
            "/api/v1/tasks/{task_id:uuid}/return": {"reason": "矩阵测试"},
            # Refused as invalid after the role check: the matrix must not change the shared rules.
            "/api/v1/matching/rules": {"document": {"services": {"x": {"when": {"all": []}}}}},
            "/api/v1/households/{household_id:uuid}/facts": {"facts": {"rural": True}},
            "/api/v1/households/{household_id:uuid}/match": {"facts": {"income_per_capita": 900}},
            # Into the grid the household already lies in: the matrix must not move the world's households.
            "/api/v1/households/{household_id:uuid}/place": {
                "grid_code": world.grid_codes["GA1" if self.household(role, own) == world.households["A"] else "GB1"]
            },
            "/api/v1/tasks/{task_id:uuid}/visit": {"found": "矩阵"},
            "/api/v1/sync/health": {"pending": 0, "needs_attention": 0, "app_version": "matrix"},
            "/api/v1/cases/{case_id:uuid}/request-info": {"message": "矩阵测试"},
            "/api/v1/cases/{case_id:uuid}/approve": {"amount_yuan": 1, "period": "one_off"},
            "/api/v1/cases/{case_id:uuid}/reject": {"reason": "矩阵测试"},
            "/api/v1/tasks/reassign": {
                "task_ids": [self.tasks["A"]],
                "worker_id": world.account_ids["worker_a"],
                "reason": "矩阵测试",
            },
            "/api/v1/covers": {
                "worker_id": world.account_ids["worker_a"],
                "substitute_id": world.account_ids["worker_b"],
                "starts_on": "2099-01-01",
                "ends_on": "2099-01-02",
                "reason": "矩阵",
            },
        }
        return bodies.get(template, {})


@pytest.fixture(scope="module")
async def spare_account(world: World) -> str:
    from backend.accounts.services import NewAccount, create_account
    from backend.accounts.tables import Role
    from backend.audit.services import Actor

    return str(
        await create_account(
            NewAccount(
                username=f"spare_{secrets.token_hex(3)}", display_name="spare", password=PASSWORD, role=Role.resident
            ),
            actor=Actor.system("tests"),
        )
    )


@pytest.fixture(scope="module")
async def notifications(world: World) -> dict[str, str]:
    """One inbox item per role (and one for supervisor_b, as everyone's "someone else")."""
    from backend.notifications.tables import Notification

    ids = {}
    for role in (*ROLES, "supervisor_b"):
        row = await Notification.insert(
            Notification(account=world.account_ids[role], kind="matrix", title_zh="矩阵", title_en="matrix")
        ).returning(Notification.id)
        ids[role] = str(row[0]["id"])
    return ids


@pytest.fixture(scope="module")
async def tasks(world: World) -> dict[str, str]:
    """An open task on each side: A (worker_a, street A) and B (worker_b, street B)."""
    from datetime import UTC, datetime, timedelta

    from backend.tasks.tables import VisitTask

    ids = {}
    for side, worker, street in (("A", "worker_a", "A"), ("B", "worker_b", "B")):
        household = world.households[side]
        existing = (
            await VisitTask.select(VisitTask.id)
            .where(VisitTask.household == household, VisitTask.state != "closed")
            .first()
        )
        if existing:
            ids[side] = str(existing["id"])
            continue
        from backend.orgs.tables import OrgUnit

        street_id = (await OrgUnit.select(OrgUnit.id).where(OrgUnit.code == world.street_codes[street]).first())["id"]
        row = await VisitTask.insert(
            VisitTask(
                household=household,
                assignee=world.account_ids[worker],
                street=street_id,
                grid_code=world.grid_codes[f"G{side}1"],
                type_codes="[]",
                due_at=datetime.now(UTC) + timedelta(days=3),
            )
        ).returning(VisitTask.id)
        ids[side] = str(row[0]["id"])
    return ids


@pytest.fixture(scope="module")
async def field_objects(http, world: World, tasks: dict[str, str]) -> dict[str, str]:
    """A visit with one uploaded photo on each side, recorded by that side's worker."""
    from tests.integration.field import phone_photo, record_visit, sha256, upload

    objects = {}
    for side, worker in (("A", "worker_a"), ("B", "worker_b")):
        device = Api(http)
        assert (await device.login(world.usernames[worker])).status_code == 200
        photo = phone_photo()
        visit = await record_visit(device, tasks[side], (photo,))
        assert visit.status_code == 200, visit.text
        done = await upload(device, visit.json()["visit_id"], photo)
        assert done.status_code == 201, done.text
        objects |= {f"visit_{side}": visit.json()["visit_id"], f"sha_{side}": sha256(photo)}
        objects[f"photo_{side}"] = done.json()["photo_id"]
    return objects


@pytest.fixture(scope="module")
async def application_objects(http, world: World) -> dict[str, str]:
    """A routed application on each side. Side A: household in GA1 (worker_a), an HRSS case, so the
    civil-affairs officer's "other". Side B: household in GB1 (worker_b) whose phone is the world
    resident's (the interim resident ↔ household link), with a civil-affairs case (the officer's own)."""
    from backend.accounts.tables import Account
    from backend.applications.routing import route
    from backend.applications.tables import DepartmentCase
    from backend.lib import pii
    from tests.integration.application_kit import new_family, routing_message, submission, submit

    admin = Api(http)
    assert (await admin.login(world.usernames["admin"])).status_code == 200
    objects = {}
    for side, grid, worker, service in (
        ("A", "GA1", "worker_a", "employment_assistance"),
        ("B", "GB1", "worker_b", "temporary_emergency"),
    ):
        family = await new_family(admin, world, grid)
        if side == "B":
            sealed, index = pii.seal_phone(family.phone)
            await Account.update({Account.phone_sealed: sealed, Account.phone_index: index}).where(
                Account.id == world.account_ids["resident"]
            )
        device = Api(http)
        assert (await device.login(world.usernames[worker])).status_code == 200
        body = submission(family, services=(service,))
        if side == "B":
            # The ID card photographed on a visit, handed in with the application: the officer's own photo.
            photo_id = await _visited_photo(device, world, family.id, grid, worker)
            body["materials"]["id_card"] = {"photos": [{"photo_id": photo_id}]}
            objects["photo_officer"] = photo_id
        response = await submit(device, family, body)
        assert response.status_code == 201, response.text
        application_id = response.json()["id"]
        await route((await routing_message(application_id))["id"], coalesce=False)
        query = DepartmentCase.select(DepartmentCase.id).where(DepartmentCase.application == application_id)
        case = await query.first()
        assert case is not None
        objects |= {f"application_{side}": application_id, f"case_{side}": str(case["id"])}
    return objects


async def _visited_photo(device: Api, world: World, household_id: str, grid: str, worker: str) -> str:
    from datetime import UTC, datetime, timedelta

    from backend.orgs.tables import OrgUnit
    from backend.tasks.tables import VisitTask
    from tests.integration.field import phone_photo, record_visit, upload

    street = await OrgUnit.select(OrgUnit.id).where(OrgUnit.code == world.street_codes[grid[1]]).first()
    assert street is not None
    task = await VisitTask.insert(
        VisitTask(
            household=household_id,
            assignee=world.account_ids[worker],
            street=street["id"],
            grid_code=world.grid_codes[grid],
            type_codes="[]",
            due_at=datetime.now(UTC) + timedelta(days=3),
        )
    ).returning(VisitTask.id)
    photo = phone_photo(seed=7)
    visit = await record_visit(device, str(task[0]["id"]), (photo,))
    assert visit.status_code == 200, visit.text
    done = await upload(device, visit.json()["visit_id"], photo)
    assert done.status_code == 201, done.text
    return str(done.json()["photo_id"])


@pytest.fixture(scope="module")
async def request_objects(http, world: World) -> dict[str, str]:
    """A resident's request with one photo on each side. A: a guest's, in GA1 (worker_a, street A).
    B: the world resident's own, in GB1 (worker_b, street B)."""
    import uuid

    from tests.integration.field import phone_photo, sha256
    from tests.integration.test_requests import _inside, _request

    objects = {}
    for side, grid in (("A", "GA1"), ("B", "GB1")):
        device = Api(http)
        if side == "B":
            assert (await device.login(world.usernames["resident"])).status_code == 200
        lon, lat = await _inside(world.grid_codes[grid])
        sent = await device.post(
            "/api/v1/requests" if side == "B" else "/api/v1/requests/guest",
            json=_request(location={"source": "pin", "lon": lon, "lat": lat}),
            headers={"idempotency-key": str(uuid.uuid4())},
        )
        assert sent.status_code == 201, sent.text
        photo = phone_photo()
        put = await device.request(
            "PUT",
            f"/api/v1/requests/{sent.json()['id']}/guest-photos/{sha256(photo)}",
            content=photo,
            headers={"upload-token": sent.json()["upload_token"]},
        )
        assert put.status_code == 201, put.text
        objects |= {f"request_{side}": sent.json()["id"], f"request_photo_{side}": put.json()["id"]}
    return objects


async def test_matrix(
    app: Litestar,
    http,
    world: World,
    spare_account: str,
    notifications: dict[str, str],
    tasks: dict[str, str],
    field_objects: dict[str, str],
    application_objects: dict[str, str],
    request_objects: dict[str, str],
) -> None:
    objects = Objects(
        world, spare_account, notifications, tasks, {**field_objects, **application_objects, **request_objects}
    )
    failures: list[str] = []
    devices: dict[str, Api] = {}
    for method, template in _route_table(app):
        if _is_public_by_design(template):
            continue
        rule = POLICY[(method, template)]
        if rule.allowed == PUBLIC:
            continue  # login, refresh and the probes answer anyone; their own tests say how
        anonymous = await Api(http).request(
            method, objects.path(template, "admin", True), json=objects.body(method, template, "admin", True)
        )
        if anonymous.status_code != 401:
            failures.append(f"{method} {template} anonymous → {anonymous.status_code}, expected 401")
        for role in ROLES:
            for own in (True, False) if rule.scoped else (True,):
                device = devices.get(role)
                if device is None:
                    device = devices[role] = Api(http)
                    assert (await device.login(world.usernames[role])).status_code == 200
                if template in SESSION_ENDING:
                    devices.pop(role)  # this call ends the device's session (or its siblings'): log in afresh
                path = objects.path(template, role, own)
                response = await device.request(method, path, json=objects.body(method, template, role, own))
                status = response.status_code
                where = f"{method} {path} as {role} ({'own' if own else 'other'}) → {status}"
                if status >= 500:
                    failures.append(f"{where}: server error")
                elif role not in rule.allowed:
                    if status != 403:
                        failures.append(f"{where}: expected 403 for this role")
                elif own or (role == "admin" and rule.admin_sees_all):
                    if status in (401, 403, 404):
                        failures.append(f"{where}: expected to be allowed")
                else:
                    if status != 404:
                        failures.append(f"{where}: expected 404 for another's object")
                    elif not await _denial_audited(world.account_ids[role], path.split("/")[4]):
                        failures.append(f"{where}: denial not audit-logged")
    assert failures == [], "\n".join(failures)


async def _denial_audited(actor_id: str, object_id: str) -> bool:
    return await AuditLog.exists().where(
        AuditLog.actor_id == actor_id, AuditLog.object_id == object_id, AuditLog.outcome == "denied"
    )


async def test_worker_lists_only_their_grids_and_supervisor_only_their_street(as_role, world: World) -> None:
    worker = await as_role("worker_a")
    codes = {item["grid_code"] for item in (await worker.get("/api/v1/households?limit=200")).json()["items"]}
    assert world.grid_codes["GA1"] in codes and world.grid_codes["GB1"] not in codes
    supervisor_b = await as_role("supervisor_b")
    listing = (await supervisor_b.get("/api/v1/households?limit=200")).json()
    ids = {item["id"] for item in listing["items"]}
    assert world.households["B"] in ids and world.households["A"] not in ids
    assert {item["grid_code"] for item in listing["items"]} <= {world.grid_codes["GB1"], None}
    officer = await as_role("officer")
    assert (await officer.get("/api/v1/households")).status_code == 403
