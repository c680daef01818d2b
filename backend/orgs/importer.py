"""Importing a district, street or community layer on its own (boundaries from the city's GIS).

Same discipline as the grid importer: read, validate, then write everything in one transaction
or nothing. Existing units (by code) get their name, parent and boundary updated; new ones are
created under their parent, which must already exist one level up (a district's parent is the city).
A community boundary imported here is what later grid imports check "grid outside its parent" against.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import shapely

from backend.audit.services import Actor, record
from backend.lib.db import write_transaction
from backend.orgs.tables import OrgLevel, OrgUnit
from geo.reader import read_grid_layer
from geo.validate import Finding, validate_grid_layer

PARENT_LEVEL = {
    OrgLevel.district: OrgLevel.city,
    OrgLevel.street: OrgLevel.district,
    OrgLevel.community: OrgLevel.street,
}


@dataclass
class OrgImportOutcome:
    source: str
    level: OrgLevel
    units: int
    findings: list[Finding]
    dry_run: bool = False
    written: bool = False
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)

    @property
    def has_errors(self) -> bool:
        return any(finding.severity == "error" for finding in self.findings)

    def to_json(self) -> dict[str, Any]:
        from geo.report import report_json

        return {
            "source": self.source,
            "level": self.level.value,
            "units": self.units,
            "written": self.written,
            "dry_run": self.dry_run,
            "created": self.created,
            "updated": self.updated,
            "report": report_json(self.findings),
        }


async def import_org_layer(
    path: Path,
    level: OrgLevel,
    *,
    actor: Actor,
    crs: str | None = None,
    layer: str | None = None,
    encoding: str | None = None,
    code_field: str | None = None,
    name_field: str | None = None,
    parent_field: str | None = None,
    fix: bool = False,
    dry_run: bool = False,
    force: bool = False,
    source: str | None = None,
) -> OrgImportOutcome:
    if level not in PARENT_LEVEL:
        raise ValueError(f"cannot import a {level.value} layer")
    read = await anyio.to_thread.run_sync(
        partial(
            read_grid_layer,
            path,
            layer=layer,
            crs=crs,
            encoding=encoding,
            code_field=code_field,
            name_field=name_field,
            parent_field=parent_field,
        )
    )
    parents = await _units(PARENT_LEVEL[level])
    result = await anyio.to_thread.run_sync(
        partial(
            validate_grid_layer,
            read,
            fix=fix,
            require_parent=level != OrgLevel.district,
            known_parent_codes=set(parents),
        )
    )
    outcome = OrgImportOutcome(
        source=source or Path(path).name,
        level=level,
        units=len(result.frame),
        findings=[*read.findings, *result.findings],
        dry_run=dry_run,
    )
    if dry_run or (outcome.has_errors and not force):
        return outcome
    city = next(iter(parents.values()), None) if level == OrgLevel.district else None
    existing = await _units(level)
    async with write_transaction():
        for row in result.frame.itertuples():
            parent_id = city if level == OrgLevel.district else parents.get(str(row.parent_code))
            values: dict[Any, Any] = {
                "name": str(row.name or row.code),
                "parent": parent_id,
                "boundary": shapely.to_wkb(row.geometry),
            }
            if str(row.code) in existing:
                await OrgUnit.update(values).where(OrgUnit.id == existing[str(row.code)])
                outcome.updated.append(str(row.code))
            else:
                await OrgUnit.insert(OrgUnit(code=str(row.code), level=level, **values))
                outcome.created.append(str(row.code))
        await record(
            "orgs.import",
            actor=actor,
            object_type="org_layer",
            object_id=level.value,
            detail={"source": outcome.source, "created": len(outcome.created), "updated": len(outcome.updated)},
        )
    outcome.written = True
    return outcome


async def _units(level: OrgLevel) -> dict[str, int]:
    rows = await OrgUnit.select(OrgUnit.id, OrgUnit.code).where(OrgUnit.level == level)
    return {row["code"]: row["id"] for row in rows}
