"""The place the browser tests happen in, written before the app starts (``python -m tests.e2e.seed OUT``).

Only what has no API is done here, through the same services the CLI uses: the city and a
district (a city sets those up before any grid import), a small grid layer imported through the
real importer (which creates the street and community from the file's attributes), the staff
accounts, and who owns which grid. Households, department keys and tasks go through the HTTP API
once the app runs (``tests.e2e.harness``).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from uuid import UUID

WEST, SOUTH, CELL = 119.95, 31.78, 0.01
STREET, COMMUNITY = "E2ES1", "E2EM1"
PASSWORD = "GridAid-e2e-2026"
# worker<i> owns grid E2E-G<i>; the supervisor heads the one street they all work in.
WORKERS = 8


def cell(index: int) -> tuple[float, float, float, float]:
    """The bounding box of grid ``index`` (a row of squares about 1 km wide)."""
    return (WEST + index * CELL, SOUTH, WEST + (index + 1) * CELL, SOUTH + CELL)


def grid_code(index: int) -> str:
    return f"E2E-G{index}"


async def seed() -> dict[str, object]:
    import geopandas as gpd
    import shapely

    from backend.accounts.services import NewAccount, create_account
    from backend.accounts.tables import Role
    from backend.audit.services import Actor
    from backend.grids.importer import ImportOptions, import_grid_file
    from backend.grids.services import assign_worker
    from backend.lib.db import close_pool, open_pool, write_transaction
    from backend.orgs.tables import OrgLevel, OrgUnit
    from backend.setup import prepare_database

    actor = Actor.system("e2e")
    await prepare_database()
    await open_pool()
    try:
        async with write_transaction():
            city = (
                await OrgUnit.insert(
                    OrgUnit(
                        code="E2EC",
                        name="测试市",
                        level=OrgLevel.city,
                        boundary=shapely.to_wkb(shapely.box(WEST - 0.5, SOUTH - 0.5, WEST + 0.5, SOUTH + 0.5)),
                    )
                ).returning(OrgUnit.id)
            )[0]["id"]
            await OrgUnit.insert(
                OrgUnit(
                    code="E2ED",
                    name="测试区",
                    level=OrgLevel.district,
                    parent=city,
                    boundary=shapely.to_wkb(shapely.box(WEST - 0.1, SOUTH - 0.1, WEST + 0.3, SOUTH + 0.1)),
                )
            )
        rows = [
            {
                "wgbm": grid_code(i),
                "wgmc": f"第{i}网格",
                "sqbm": COMMUNITY,
                "sqmc": "幸福社区",
                "jdbm": STREET,
                "jdmc": "和平街道",
                "geometry": shapely.box(*cell(i)),
            }
            for i in range(1, WORKERS + 1)
        ]
        with tempfile.TemporaryDirectory(prefix="gridaid-e2e-") as folder:
            path = Path(folder) / "grids.geojson"
            frame = gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")
            path.write_text(frame.to_json(ensure_ascii=False), encoding="utf-8")
            outcome = await import_grid_file(path, ImportOptions(), actor=actor)
        if not outcome.written:
            raise SystemExit(f"the e2e grid layer did not import: {outcome.to_json()}")

        accounts: dict[str, str] = {}
        staff = [("admin", Role.admin, {}), ("supervisor", Role.supervisor, {"street_code": STREET})]
        staff += [(f"worker{i}", Role.grid_worker, {}) for i in range(1, WORKERS + 1)]
        for username, role, scope in staff:
            new = NewAccount(username=username, display_name=f"{username}", password=PASSWORD, role=role, **scope)
            accounts[username] = str(await create_account(new, actor=actor))
        for i in range(1, WORKERS + 1):
            await assign_worker(grid_code(i), UUID(accounts[f"worker{i}"]), actor=actor, reason="e2e")
        grids = {f"worker{i}": grid_code(i) for i in range(1, WORKERS + 1)}
        return {"accounts": accounts, "street": STREET, "grids": grids}
    finally:
        await close_pool()


if __name__ == "__main__":
    result = asyncio.run(seed())
    Path(sys.argv[1]).write_text(json.dumps(result))
