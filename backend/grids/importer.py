"""Importing a city's grid map: read, validate, and only then write, all in one transaction.

The steps a GIS file goes through:
1. read it (any supported format and datum) into WGS84 with standard columns (``geo.reader``);
2. validate it against what the database knows: existing communities and their boundaries, the
   city boundary for the datum check (``geo.validate``). Errors refuse the import unless forced;
3. in one write transaction: create the streets and communities named only in the attributes,
   install the grids as a new current layer version (the old one stays for history), re-home
   every household against the new layer, close assignments of grids that no longer exist, and
   tell the workers and supervisors whose work moved.
A dry run stops after step 2. Nothing is ever half-written.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import shapely
from rich.progress import Progress
from shapely.geometry.base import BaseGeometry

from backend.accounts.tables import Account, Role
from backend.audit.services import Actor, record
from backend.grids import index_cache
from backend.grids.placement import RehomeSummary, rehome_households
from backend.grids.services import GridFeature, install_grid_layer
from backend.grids.tables import GridAssignment, GridVersion
from backend.lib.db import write_transaction
from backend.notifications.services import notify
from backend.orgs.tables import OrgLevel, OrgUnit
from backend.sync.services import record_changes
from backend.tasks.rehome import rehome_open_tasks
from geo.reader import read_grid_layer
from geo.validate import Finding, validate_grid_layer


@dataclass(frozen=True)
class ImportOptions:
    layer: str | None = None
    crs: str | None = None
    encoding: str | None = None
    code_field: str | None = None
    name_field: str | None = None
    parent_field: str | None = None
    level_field: str | None = None
    fix: bool = False
    dry_run: bool = False
    force: bool = False


@dataclass
class ImportOutcome:
    source: str
    grids: int
    findings: list[Finding]
    version: int | None = None
    created_streets: list[str] = field(default_factory=list)
    created_communities: list[str] = field(default_factory=list)
    rehome: RehomeSummary | None = None
    closed_assignments: list[str] = field(default_factory=list)
    tasks_moved: int = 0
    # Workers whose grid disappeared (their assignment was closed): they are told too.
    dropped_workers: set[str] = field(default_factory=set)
    notified: int = 0
    dry_run: bool = False

    @property
    def has_errors(self) -> bool:
        return any(finding.severity == "error" for finding in self.findings)

    @property
    def written(self) -> bool:
        return self.version is not None

    def to_json(self) -> dict[str, Any]:
        from geo.report import report_json

        return {
            "source": self.source,
            "grids": self.grids,
            "written": self.written,
            "dry_run": self.dry_run,
            "version": self.version,
            "created_streets": self.created_streets,
            "created_communities": self.created_communities,
            "rehome": self.rehome.to_json() if self.rehome else None,
            "closed_assignments": self.closed_assignments,
            "tasks_moved": self.tasks_moved,
            "notified": self.notified,
            "report": report_json(self.findings),
        }


async def import_grid_file(
    path: Path,
    options: ImportOptions,
    *,
    actor: Actor,
    source: str | None = None,
    progress: Progress | None = None,  # a rich Progress: the CLI shows the bars
) -> ImportOutcome:
    # Reading and validating are CPU work (seconds for a city): keep them off the event loop.
    layer = await anyio.to_thread.run_sync(
        partial(
            read_grid_layer,
            path,
            layer=options.layer,
            crs=options.crs,
            encoding=options.encoding,
            code_field=options.code_field,
            name_field=options.name_field,
            parent_field=options.parent_field,
            level_field=options.level_field,
            progress=progress,
        )
    )
    known = await _known_places()
    creatable = _creatable_parents(layer.frame, known)
    result = await anyio.to_thread.run_sync(
        partial(
            validate_grid_layer,
            layer,
            fix=options.fix,
            parents=known.community_boundaries,
            known_parent_codes=set(known.communities) | set(creatable.communities),
            reference_boundary=known.city_boundary,
            progress=progress,
        )
    )
    findings = [*layer.findings, *result.findings, *creatable.findings]
    outcome = ImportOutcome(
        source=source or Path(path).name, grids=len(result.frame), findings=findings, dry_run=options.dry_run
    )
    if options.dry_run or (outcome.has_errors and not options.force):
        return outcome
    await _write(result.frame, creatable, known, outcome, actor, forced=outcome.has_errors)
    index_cache.forget()
    return outcome


# ---------------------------------------------------------------------------------------------
# What the database already knows


@dataclass
class KnownPlaces:
    districts: dict[str, tuple[int, BaseGeometry | None]]
    streets: dict[str, int]
    communities: dict[str, int]
    community_boundaries: dict[str, BaseGeometry]
    city_id: int | None
    city_boundary: BaseGeometry | None


async def _known_places() -> KnownPlaces:
    rows = await OrgUnit.select(OrgUnit.id, OrgUnit.code, OrgUnit.level, OrgUnit.boundary)
    known = KnownPlaces({}, {}, {}, {}, None, None)
    for row in rows:
        boundary = shapely.from_wkb(bytes(row["boundary"])) if row["boundary"] else None
        match row["level"]:
            case OrgLevel.city.value:
                known.city_id, known.city_boundary = row["id"], boundary
            case OrgLevel.district.value:
                known.districts[row["code"]] = (row["id"], boundary)
            case OrgLevel.street.value:
                known.streets[row["code"]] = row["id"]
            case OrgLevel.community.value:
                known.communities[row["code"]] = row["id"]
                if boundary is not None:
                    known.community_boundaries[row["code"]] = boundary
    return known


@dataclass
class CreatableParents:
    """Streets and communities named in the grid attributes but not yet in the database."""

    streets: dict[str, tuple[str, str]] = field(default_factory=dict)  # code → (name, district code)
    communities: dict[str, tuple[str, str]] = field(default_factory=dict)  # code → (name, street code)
    findings: list[Finding] = field(default_factory=list)


def _creatable_parents(frame: Any, known: KnownPlaces) -> CreatableParents:
    plan = CreatableParents()
    rows = frame[frame["parent_code"].notna()] if "parent_code" in frame else frame.iloc[0:0]
    by_community = defaultdict(list)
    for row in rows.itertuples():
        if row.parent_code not in known.communities:
            by_community[row.parent_code].append(row)
    for community_code, members in by_community.items():
        first = members[0]
        street_code, street_name = first.street_code, first.street_name
        if not first.parent_name or not street_code:
            continue  # the validator reports it as a missing parent
        if street_code not in known.streets and street_code not in plan.streets:
            district = _district_for(shapely.union_all([m.geometry for m in members]), known)
            if district is None:
                plan.findings.append(
                    _finding(
                        "parent.no_district",
                        str(street_code),
                        f"Street {street_code} ({street_name}) lies in no known district; import the districts first",
                        f"街道 {street_code}（{street_name}）不在任何已知的区县内，请先导入区县",
                    )
                )
                continue
            plan.streets[str(street_code)] = (str(street_name or street_code), district)
        plan.communities[str(community_code)] = (str(first.parent_name), str(street_code))
    return plan


def _district_for(geometry: BaseGeometry, known: KnownPlaces) -> str | None:
    point = geometry.representative_point()
    for code, (_, boundary) in known.districts.items():
        if boundary is not None and boundary.covers(point):
            return code
    return None


def _finding(check: str, feature: str, message: str, message_zh: str) -> Finding:
    return Finding(severity="error", check=check, feature=feature, message=message, message_zh=message_zh, detail={})


# ---------------------------------------------------------------------------------------------
# Writing


async def _write(
    frame: Any, creatable: CreatableParents, known: KnownPlaces, outcome: ImportOutcome, actor: Actor, *, forced: bool
) -> None:
    features = [
        GridFeature(
            code=str(row.code),
            name=str(row.name or row.code),
            community_code=str(row.parent_code),
            geometry=row.geometry,
        )
        for row in frame.itertuples()
        if row.code and row.parent_code and row.geometry is not None and not row.geometry.is_empty
    ]
    async with write_transaction():
        await _create_parents(creatable, known, outcome)
        previous = await _current_codes()
        outcome.version = await install_grid_layer(features, source=outcome.source, actor=actor)
        index_cache.forget()
        layer = await index_cache.current_layer()
        assert layer is not None
        outcome.rehome = await rehome_households(layer)
        outcome.tasks_moved = await rehome_open_tasks()
        await _close_assignments(previous - {f.code for f in features}, outcome)
        outcome.notified = await _tell_people(outcome, layer)
        await GridVersion.update({GridVersion.report: outcome.to_json()}).where(GridVersion.number == outcome.version)
        await record(
            "grids.import",
            actor=actor,
            object_type="grid_version",
            object_id=str(outcome.version),
            detail={
                "source": outcome.source,
                "grids": len(features),
                "forced": forced,
                "created_streets": len(outcome.created_streets),
                "created_communities": len(outcome.created_communities),
                "households_moved": outcome.rehome.households_moved,
            },
        )


async def _create_parents(creatable: CreatableParents, known: KnownPlaces, outcome: ImportOutcome) -> None:
    for code, (name, district_code) in sorted(creatable.streets.items()):
        street_id = (
            await OrgUnit.insert(
                OrgUnit(code=code, name=name, level=OrgLevel.street, parent=known.districts[district_code][0])
            ).returning(OrgUnit.id)
        )[0]["id"]
        known.streets[code] = street_id
        outcome.created_streets.append(code)
    for code, (name, street_code) in sorted(creatable.communities.items()):
        # No boundary: one derived from today's grids would wrongly pin tomorrow's map. A community
        # boundary comes only from a community layer imported in its own right.
        community_id = (
            await OrgUnit.insert(
                OrgUnit(code=code, name=name, level=OrgLevel.community, parent=known.streets[street_code])
            ).returning(OrgUnit.id)
        )[0]["id"]
        known.communities[code] = community_id
        outcome.created_communities.append(code)


async def _current_codes() -> set[str]:
    from backend.grids.tables import Grid

    rows = await Grid.select(Grid.code).where(Grid.layer._.is_current.eq(True))
    return {row["code"] for row in rows}


async def _close_assignments(removed_codes: set[str], outcome: ImportOutcome) -> None:
    """A grid that is gone from the new layer has no owner any more; its last owner is told."""
    if not removed_codes:
        return
    closed = (
        await GridAssignment.update({GridAssignment.ended_at: datetime.now(UTC)})
        .where(GridAssignment.grid_code.is_in(sorted(removed_codes)), GridAssignment.ended_at.is_null())
        .returning(GridAssignment.grid_code, GridAssignment.worker)
    )
    outcome.closed_assignments = sorted(row["grid_code"] for row in closed)
    outcome.dropped_workers = {str(row["worker"]) for row in closed}


async def _tell_people(outcome: ImportOutcome, layer: index_cache.CurrentLayer) -> int:
    """Workers whose grids gained or lost households or vanished, and their street supervisors."""
    assert outcome.rehome is not None
    touched = (set(outcome.rehome.left) | set(outcome.rehome.arrived) | set(outcome.closed_assignments)) - {""}
    if not touched:
        return 0
    owners = await GridAssignment.select(GridAssignment.worker).where(
        GridAssignment.grid_code.is_in(sorted(touched)), GridAssignment.ended_at.is_null()
    )
    streets = {layer.places[code].street_id for code in touched if code in layer.places} - {None}
    supervisors = await Account.select(Account.id).where(
        Account.role == Role.supervisor, Account.street.is_in(sorted(streets) or [-1]), Account.is_active.eq(True)
    )
    detail = {
        "version": outcome.version,
        "grids": sorted(touched)[:50],
        "households_moved": outcome.rehome.households_moved,
    }
    workers = {str(row["worker"]) for row in owners} | outcome.dropped_workers
    await record_changes((worker, "grids", str(outcome.version), "upsert") for worker in workers)
    told = await notify(
        {str(row["worker"]) for row in owners} | outcome.dropped_workers,
        kind="grids.rehomed",
        title_zh=f"网格图层已更新（第 {outcome.version} 版），您的网格内住户有调整",
        title_en=f"Grid map updated (version {outcome.version}): households in your grids changed",
        detail=detail,
    )
    told += await notify(
        [row["id"] for row in supervisors],
        kind="grids.rehomed",
        title_zh=f"网格图层已更新（第 {outcome.version} 版）：{outcome.rehome.households_moved} 户调整网格，"
        f"{outcome.rehome.unplaced} 户未落入网格",
        title_en=f"Grid map updated (version {outcome.version}): {outcome.rehome.households_moved} households "
        f"moved, {outcome.rehome.unplaced} unplaced",
        detail=detail,
    )
    return told
