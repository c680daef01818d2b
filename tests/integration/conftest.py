"""A small world shared by the integration tests, built through the real services and API.

Two streets (A, B), a community in each, grids GA1 and GA2 in A and GB1 in B, one account for
every role (supervisors and workers on each side), and a household in GA1 and one in GB1.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from litestar import Litestar

from tests.helpers import id_number, random_ip

PASSWORD = "correct-horse-battery"


@dataclass
class Api:
    """One device: its own client address, and the tokens of whoever logged in on it."""

    client: httpx.AsyncClient
    ip: str = field(default_factory=random_ip)
    access_token: str | None = None
    refresh_token: str | None = None

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"x-forwarded-for": self.ip}
        if self.access_token:
            headers["authorization"] = f"Bearer {self.access_token}"
        return {**headers, **(extra or {})}

    async def login(self, username: str, password: str = PASSWORD, otp: str | None = None) -> Any:
        body: dict[str, Any] = {"login": username, "password": password}
        if otp:
            body["otp"] = otp
        response = await self.client.post("/api/v1/auth/login", json=body, headers=self.headers())
        if response.status_code == 200:
            self.access_token = response.json()["access_token"]
            self.refresh_token = response.json()["refresh_token"]
        return response

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = self.headers(kwargs.pop("headers", None))
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> Any:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Any:
        return await self.request("POST", path, **kwargs)


@dataclass
class World:
    tag: str
    usernames: dict[str, str]
    account_ids: dict[str, str]
    grid_codes: dict[str, str]
    street_codes: dict[str, str]
    households: dict[str, str]  # "A" / "B" -> household id
    id_numbers: dict[str, str]  # "A" / "B" -> head's ID number
    member_ids: dict[str, str]


@pytest.fixture(scope="session")
async def app(migrated: None) -> Litestar:
    from backend.app import create_app

    return create_app()


@pytest.fixture(scope="session")
async def http(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    # The app runs in the test's own event loop (Litestar's AsyncTestClient would run it in a
    # portal thread, and the PostgreSQL pool it opens would then belong to another loop).
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client,
    ):
        yield client


@pytest.fixture
def api(http: httpx.AsyncClient) -> Api:
    return Api(http)


_PLACE_SLOTS = itertools.count()


async def _make_place(tag: str) -> tuple[dict[str, str], dict[str, str]]:
    """Org units and current-layer grids for the world (written directly: this is fixture data)."""
    slot = next(_PLACE_SLOTS)
    import shapely

    from backend.grids.tables import Grid, GridVersion
    from backend.lib.db import write_transaction
    from backend.orgs.tables import OrgLevel, OrgUnit

    async with write_transaction():
        city = (
            await OrgUnit.insert(OrgUnit(code=f"C{tag}", name=f"测试市{tag}", level=OrgLevel.city)).returning(
                OrgUnit.id
            )
        )[0]["id"]
        district = (
            await OrgUnit.insert(
                OrgUnit(code=f"D{tag}", name="测试区", level=OrgLevel.district, parent=city)
            ).returning(OrgUnit.id)
        )[0]["id"]
        streets, communities = {}, {}
        for side in ("A", "B"):
            code = f"S{side}{tag}"
            streets[side] = code
            street_id = (
                await OrgUnit.insert(
                    OrgUnit(code=code, name=f"{side}街道", level=OrgLevel.street, parent=district)
                ).returning(OrgUnit.id)
            )[0]["id"]
            communities[side] = (
                await OrgUnit.insert(
                    OrgUnit(code=f"M{side}{tag}", name=f"{side}社区", level=OrgLevel.community, parent=street_id)
                ).returning(OrgUnit.id)
            )[0]["id"]
        current = await GridVersion.select(GridVersion.id).where(GridVersion.is_current.eq(True)).first()
        if current is None:
            version_id = (
                await GridVersion.insert(GridVersion(number=1, source="tests", is_current=True)).returning(
                    GridVersion.id
                )
            )[0]["id"]
        else:
            version_id = current["id"]
        grids = {}
        for index, (name, side) in enumerate((("GA1", "A"), ("GA2", "A"), ("GB1", "B"))):
            code = f"{name}{tag}"
            grids[name] = code
            # Each place gets its own strip of land: grids of one layer must never overlap.
            south = 31.7 + 0.05 * slot
            polygon = shapely.box(119.9 + index * 0.01, south, 119.91 + index * 0.01, south + 0.01)
            await Grid.insert(
                Grid(
                    layer=version_id,
                    code=code,
                    name=name,
                    community=communities[side],
                    geometry=shapely.to_wkb(polygon),
                    min_lon=polygon.bounds[0],
                    min_lat=polygon.bounds[1],
                    max_lon=polygon.bounds[2],
                    max_lat=polygon.bounds[3],
                )
            )
    return streets, grids


@pytest.fixture(scope="session")
async def world(http: httpx.AsyncClient) -> World:
    from backend.accounts.services import NewAccount, create_account
    from backend.accounts.tables import Role
    from backend.audit.services import Actor
    from backend.departments.tables import Department
    from backend.grids.tables import GridAssignment

    tag = secrets.token_hex(3)
    if not await Department.exists().where(Department.code == "civil_affairs"):
        await Department.insert(Department(code="civil_affairs", name_zh="民政局", name_en="Civil Affairs Bureau"))
    streets, grids = await _make_place(tag)
    specs = {
        "admin": (Role.admin, {}),
        "supervisor_a": (Role.supervisor, {"street_code": streets["A"]}),
        "supervisor_b": (Role.supervisor, {"street_code": streets["B"]}),
        "worker_a": (Role.grid_worker, {}),
        "worker_b": (Role.grid_worker, {}),
        "officer": (Role.department_officer, {"department_code": "civil_affairs"}),
        "resident": (Role.resident, {}),
    }
    usernames, account_ids = {}, {}
    for key, (role, scope) in specs.items():
        username = f"{key}_{tag}"
        usernames[key] = username
        account_ids[key] = str(
            await create_account(
                NewAccount(username=username, display_name=key, password=PASSWORD, role=role, **scope),
                actor=Actor.system("tests"),
            )
        )
    for grid, worker in (("GA1", "worker_a"), ("GA2", "worker_a"), ("GB1", "worker_b")):
        await GridAssignment.insert(GridAssignment(grid_code=grids[grid], worker=account_ids[worker]))

    admin = Api(http)
    assert (await admin.login(usernames["admin"])).status_code == 200
    households, id_numbers, member_ids = {}, {}, {}
    for side, grid in (("A", "GA1"), ("B", "GB1")):
        head_id = id_number()
        response = await admin.post(
            "/api/v1/households",
            json={
                "code": f"H{side}{tag}",
                "head_name": f"{side}户主",
                "address": f"测试路{side}号",
                "grid_code": grids[grid],
                "category": "dibao",
                "phone": "13812345678",
                "members": [{"name": f"{side}户主", "relation": "head", "id_number": head_id, "is_main_earner": True}],
            },
        )
        assert response.status_code == 201, response.text
        households[side] = response.json()["id"]
        member_ids[side] = response.json()["members"][0]["id"]
        id_numbers[side] = head_id
    return World(tag, usernames, account_ids, grids, streets, households, id_numbers, member_ids)


@pytest.fixture
async def as_role(http: httpx.AsyncClient, world: World) -> Any:
    """``await as_role("worker_a")`` → an Api logged in as that world account."""

    async def login(key: str) -> Api:
        device = Api(http)
        response = await device.login(world.usernames[key])
        assert response.status_code == 200, response.text
        return device

    return login
