"""Importing grid maps through the real importer, and what people notice afterwards.

Every import here carries the whole current layer plus its own grids (as a city's GIS office
re-issues the full map), so the rest of the suite's world stays in place.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

import anyio
import geopandas as gpd
import numpy as np
import pytest
import shapely

from backend.audit.services import Actor
from backend.grids.export import current_layer_frame
from backend.grids.importer import ImportOptions, import_grid_file
from backend.grids.tables import Grid, GridVersion
from backend.households.tables import Household
from backend.notifications.tables import Notification
from backend.orgs.tables import OrgLevel, OrgUnit
from geo.gcj02 import wgs84_to_gcj02
from tests.helpers import id_number
from tests.integration.conftest import Api, World

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
# A district of our own, far from the world's grids, so placements here are unambiguous.
WEST, SOUTH = 119.50, 31.50
ACTOR = Actor.system("tests")


def _cell(col: int, row: int, size: float = 0.01) -> shapely.Polygon:
    return shapely.box(WEST + col * size, SOUTH + row * size, WEST + (col + 1) * size, SOUTH + (row + 1) * size)


async def _district(tag: str) -> None:
    city = await OrgUnit.select(OrgUnit.id).where(OrgUnit.level == OrgLevel.city).first()
    boundary = shapely.box(WEST - 0.05, SOUTH - 0.05, WEST + 0.2, SOUTH + 0.2)
    await OrgUnit.insert(
        OrgUnit(
            code=f"GD{tag}",
            name="导入测试区",
            level=OrgLevel.district,
            parent=city["id"] if city else None,
            boundary=shapely.to_wkb(boundary),
        )
    )


async def _layer_file(tmp_path: Path, extra: list[dict], name: str = "layer.geojson") -> Path:
    """The current layer (exported, as an admin would) plus ``extra`` grids, written as GeoJSON."""
    current = await current_layer_frame()
    frame = current.rename(
        columns={
            "community_code": "sqbm",
            "community_name": "sqmc",
            "street_code": "jdbm",
            "street_name": "jdmc",
            "code": "wgbm",
            "name": "wgmc",
        }
    )
    frame = frame[["wgbm", "wgmc", "sqbm", "sqmc", "jdbm", "jdmc", "geometry"]]
    if extra:
        frame = gpd.GeoDataFrame([*frame.to_dict("records"), *extra], geometry="geometry", crs="EPSG:4326")
    path = tmp_path / name
    path.write_text(frame.to_json(ensure_ascii=False), encoding="utf-8")
    return path


def _grid(code: str, community: str, street: str, geometry: shapely.Geometry) -> dict:
    return {
        "wgbm": code,
        "wgmc": f"{code}网格",
        "sqbm": community,
        "sqmc": f"{community}社区",
        "jdbm": street,
        "jdmc": f"{street}街道",
        "geometry": geometry,
    }


@pytest.fixture(scope="module")
async def imported(world: World, tmp_path_factory) -> dict:
    """Two new communities in a new street, created from attributes alone: 4 grids in a row."""
    tag = secrets.token_hex(2)
    await _district(tag)
    street, west, east = f"IS{tag}", f"IW{tag}", f"IE{tag}"
    extra = [
        _grid(f"G{tag}-1", west, street, _cell(0, 0)),
        _grid(f"G{tag}-2", west, street, _cell(1, 0)),
        _grid(f"G{tag}-3", east, street, _cell(2, 0)),
        _grid(f"G{tag}-4", east, street, _cell(3, 0)),
    ]
    path = await _layer_file(tmp_path_factory.mktemp("grids"), extra)
    outcome = await import_grid_file(path, ImportOptions(), actor=ACTOR)
    assert outcome.written, outcome.to_json()
    return {
        "tag": tag,
        "street": street,
        "communities": (west, east),
        "codes": [g["wgbm"] for g in extra],
        "version": outcome.version,
        "outcome": outcome,
    }


async def test_import_creates_missing_street_and_communities_from_attributes(imported) -> None:
    outcome = imported["outcome"]
    assert outcome.created_streets == [imported["street"]]
    assert sorted(outcome.created_communities) == sorted(imported["communities"])
    street = await OrgUnit.select().where(OrgUnit.code == imported["street"]).first()
    assert street["level"] == "street" and street["name"] == f"{imported['street']}街道"
    current = await Grid.select(Grid.code).where(Grid.layer._.is_current.eq(True))
    assert set(imported["codes"]) <= {row["code"] for row in current}


async def test_locate_api_accepts_gcj02_and_wgs84(imported, as_role) -> None:
    admin = await as_role("admin")
    inside = _cell(2, 0).centroid
    gcj_lon, gcj_lat = wgs84_to_gcj02(inside.x, inside.y)
    response = await admin.post(
        "/api/v1/grids/locate",
        json={
            "crs": "gcj02",
            "points": [[gcj_lon, gcj_lat], [inside.x, inside.y]],
        },
    )
    assert response.status_code == 200, response.text
    first, second = response.json()["results"]
    assert first["grid_code"] == imported["codes"][2] and first["flag"] == "inside"
    # The same numbers read as WGS84 are several hundred metres off: a different answer.
    plain = await admin.post("/api/v1/grids/locate", json={"crs": "wgs84", "points": [[gcj_lon, gcj_lat]]})
    assert (
        plain.json()["results"][0]["grid_code"] != imported["codes"][2] or second["grid_code"] == imported["codes"][2]
    )


async def test_shared_edge_point_always_goes_to_the_same_grid(imported, as_role) -> None:
    admin = await as_role("admin")
    edge_x = WEST + 0.01  # the edge between grid 1 and grid 2
    points = [[edge_x, SOUTH + 0.005]] * 3
    results = (await admin.post("/api/v1/grids/locate", json={"points": points})).json()["results"]
    assert {r["grid_code"] for r in results} == {min(imported["codes"][0], imported["codes"][1])}


async def test_near_and_unplaced_points(imported, as_role) -> None:
    admin = await as_role("admin")
    just_outside = [WEST + 0.005, SOUTH - 0.0002]  # ~22 m south of grid 1
    far_outside = [WEST + 0.005, SOUTH - 0.02]  # ~2.2 km south
    near, far = (await admin.post("/api/v1/grids/locate", json={"points": [just_outside, far_outside]})).json()[
        "results"
    ]
    assert near["grid_code"] == imported["codes"][0] and near["flag"] == "near" and 15 < near["distance_m"] < 30
    assert far["grid_code"] is None and far["flag"] == "unplaced"


async def test_grids_geojson_is_scoped_and_cached(as_role, world: World, imported) -> None:
    worker = await as_role("worker_a")
    response = await worker.get("/api/v1/grids")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    collection = response.json()
    assert collection["type"] == "FeatureCollection"
    assert {f["id"] for f in collection["features"]} == {world.grid_codes["GA1"], world.grid_codes["GA2"]}
    assert collection["features"][0]["geometry"]["type"] == "Polygon"
    again = await worker.get("/api/v1/grids", headers={"if-none-match": response.headers["etag"]})
    assert again.status_code == 304
    admin = await as_role("admin")
    every = (await admin.get("/api/v1/grids")).json()
    assert set(imported["codes"]) <= {f["id"] for f in every["features"]}


async def test_a_bad_file_is_refused_and_nothing_is_written(imported, tmp_path: Path) -> None:
    versions_before = await GridVersion.count()
    overlapping = _grid(
        f"X{imported['tag']}", imported["communities"][0], imported["street"], _cell(0, 0).buffer(0.002)
    )  # overlaps grid 1 and 2 by far more than 1 m²
    path = await _layer_file(tmp_path, [overlapping])
    outcome = await import_grid_file(path, ImportOptions(), actor=ACTOR)
    assert not outcome.written and outcome.has_errors
    checks = {f.check for f in outcome.findings if f.severity == "error"}
    assert "grid.overlap" in checks
    assert await GridVersion.count() == versions_before

    dry = await import_grid_file(
        await _layer_file(tmp_path, [], "ok.geojson"), ImportOptions(dry_run=True), actor=ACTOR
    )
    assert dry.dry_run and not dry.written and not dry.has_errors
    assert await GridVersion.count() == versions_before


async def test_reimport_rehomes_households_and_tells_the_people_involved(
    imported, as_role, world: World, tmp_path
) -> None:
    admin = await as_role("admin")
    tag, codes = imported["tag"], imported["codes"]
    # A worker owns grid 1; a household sits in grid 1 near its east edge.
    from backend.accounts.services import NewAccount, create_account
    from backend.accounts.tables import Role
    from backend.grids.services import assign_worker

    worker_id = await create_account(
        NewAccount(username=f"rw_{tag}", display_name="rw", password="correct-horse-battery", role=Role.grid_worker),
        actor=ACTOR,
    )
    await assign_worker(codes[0], worker_id, actor=ACTOR)
    point = [WEST + 0.0095, SOUTH + 0.005]
    created = await admin.post(
        "/api/v1/households",
        json={
            "code": f"RH{tag}",
            "head_name": "搬家",
            "address": "边界路1号",
            "lon": point[0],
            "lat": point[1],
            "members": [{"name": "搬家", "relation": "head", "id_number": id_number()}],
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["grid_code"] == codes[0]

    # The family has an open visit task with grid 1's worker.
    from datetime import UTC, datetime, timedelta

    from backend.tasks.tables import VisitTask

    task_id = (
        await VisitTask.insert(
            VisitTask(
                household=created.json()["id"],
                grid_code=codes[0],
                assignee=worker_id,
                type_codes="[]",
                due_at=datetime.now(UTC) + timedelta(days=2),
            )
        ).returning(VisitTask.id)
    )[0]["id"]

    phone = Api(admin.client)
    await phone.login(f"rw_{tag}")
    cursor = (await phone.get("/api/v1/sync")).json()["cursor"]

    # The new map moves the boundary between grid 1 and 2 west: the household is now in grid 2.
    moved = [
        _grid(
            codes[0],
            imported["communities"][0],
            imported["street"],
            shapely.box(WEST, SOUTH, WEST + 0.009, SOUTH + 0.01),
        ),
        _grid(
            codes[1],
            imported["communities"][0],
            imported["street"],
            shapely.box(WEST + 0.009, SOUTH, WEST + 0.02, SOUTH + 0.01),
        ),
    ]
    current = await _layer_file(tmp_path, [], "current.geojson")
    frame = gpd.read_file(current)
    frame = frame[~frame["wgbm"].isin([codes[0], codes[1]])]
    frame = gpd.GeoDataFrame([*frame.to_dict("records"), *moved], geometry="geometry", crs="EPSG:4326")
    path = tmp_path / "moved.geojson"
    path.write_text(frame.to_json(ensure_ascii=False), encoding="utf-8")

    outcome = await import_grid_file(path, ImportOptions(), actor=ACTOR)
    assert outcome.written, outcome.to_json()
    assert outcome.version == imported["version"] + 1 or outcome.version > imported["version"]
    household = await Household.select(Household.grid_code).where(Household.code == f"RH{tag}").first()
    assert household["grid_code"] == codes[1]
    assert outcome.rehome.households_moved >= 1
    # Its open task followed it: grid 2 has no worker yet, so the task waits with the supervisor.
    task = await VisitTask.select().where(VisitTask.id == task_id).first()
    assert task["grid_code"] == codes[1] and task["assignee"] is None
    assert outcome.tasks_moved >= 1
    # The worker's phone learns that its grid map and its tasks changed.
    delta = (await phone.get(f"/api/v1/sync?cursor={cursor}")).json()
    assert delta["grids_changed"] is True and str(task_id) in delta["removed_tasks"]
    shapes = delta["grids"]["features"]
    assert [f["id"] for f in shapes] == [codes[0]] and shapes[0]["geometry"]["coordinates"][0][1][0] < WEST + 0.0091
    # The previous version is kept, no longer current.
    old = await GridVersion.select().where(GridVersion.number == imported["version"]).first()
    assert old is not None and old["is_current"] is False
    told = await Notification.select().where(Notification.account == worker_id, Notification.kind == "grids.rehomed")
    assert told, "the worker whose grid lost a household is told"
    assert "搬家" not in json.dumps([dict(t) for t in told], default=str, ensure_ascii=False)


async def test_unplaced_household_lands_on_the_nearest_streets_list(imported, as_role, tmp_path) -> None:
    from backend.accounts.services import NewAccount, create_account
    from backend.accounts.tables import Role

    tag = imported["tag"]
    username = f"us_{tag}"
    await create_account(
        NewAccount(
            username=username,
            display_name="us",
            password="correct-horse-battery",
            role=Role.supervisor,
            street_code=imported["street"],
        ),
        actor=ACTOR,
    )
    admin = await as_role("admin")
    far = [WEST + 0.03, SOUTH - 0.03]
    created = await admin.post(
        "/api/v1/households",
        json={
            "code": f"UP{tag}",
            "head_name": "远郊",
            "address": "村外1号",
            "lon": far[0],
            "lat": far[1],
            "members": [{"name": "远郊", "relation": "head", "id_number": id_number()}],
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["grid_code"] is None and created.json()["placement"] == "unplaced"
    supervisor = Api(admin.client)
    await supervisor.login(username)
    listing = (await supervisor.get("/api/v1/grids/unplaced")).json()
    assert f"UP{tag}" in {item["code"] for item in listing}


# The `gridaid grids` commands as an operator runs them (a real subprocess on the test database).


async def _gridaid(*args: str) -> anyio.abc.Process:
    return await anyio.run_process(
        [sys.executable, "-m", "backend.cli", *args], cwd=ROOT, env=dict(os.environ), check=False
    )


async def test_locate_prints_grid_worker_and_flag(imported) -> None:
    result = await _gridaid("grids", "locate", str(WEST + 0.025), str(SOUTH + 0.005), "--json")
    assert result.returncode == 0, result.stderr.decode()
    found = json.loads(result.stdout)
    assert found["grid_code"] == imported["codes"][2] and found["flag"] == "inside"
    human = await _gridaid("grids", "locate", str(WEST + 0.005), str(SOUTH - 0.0002))
    assert human.returncode == 0
    assert imported["codes"][0] in human.stdout.decode() and "flagged" in human.stdout.decode()


async def test_export_then_dry_run_import_round_trips(imported, tmp_path: Path) -> None:
    target = tmp_path / "grids.gpkg"
    exported = await _gridaid("grids", "export", "--format", "gpkg", "--output", str(target))
    assert exported.returncode == 0, exported.stderr.decode()
    frame = gpd.read_file(target)
    assert set(imported["codes"]) <= set(frame["code"])
    dry = await _gridaid("grids", "import", str(target), "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr.decode()
    report = json.loads(dry.stdout)
    assert report["written"] is False and report["grids"] == len(frame)
    assert report["report"]["errors"] == 0 and report["report"]["ok"] is True


async def test_import_of_a_broken_file_fails_with_a_clear_message(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gpkg"
    broken.write_bytes(b"this is not a geopackage at all")
    result = await _gridaid("grids", "import", str(broken))
    assert result.returncode != 0
    message = result.stderr.decode()
    assert "broken.gpkg" in message and "Traceback" not in message


async def test_a_layer_imported_by_another_process_reaches_this_one(imported, as_role, tmp_path, monkeypatch) -> None:
    from backend.grids import index_cache

    admin = await as_role("admin")
    code = f"P{imported['tag']}"
    point = [WEST + 0.045, SOUTH + 0.005]
    before = (await admin.post("/api/v1/grids/locate", json={"points": [point]})).json()["results"][0]
    assert before["grid_code"] != code
    path = await _layer_file(tmp_path, [_grid(code, imported["communities"][1], imported["street"], _cell(4, 0))])
    result = await _gridaid("grids", "import", str(path))
    assert result.returncode == 0, result.stderr.decode()
    # Each process re-reads the current version at most every CHECK_INTERVAL_S; make "now" the next check.
    monkeypatch.setattr(index_cache, "CHECK_INTERVAL_S", 0.0)
    after = (await admin.post("/api/v1/grids/locate", json={"points": [point]})).json()
    assert after["results"][0]["grid_code"] == code
    assert after["version"] > imported["version"]


async def test_admin_uploads_a_zipped_gbk_shapefile_for_a_dry_run(imported, as_role, tmp_path) -> None:
    import zipfile

    admin = await as_role("admin")
    current = gpd.read_file(await _layer_file(tmp_path, []))
    shapefile = tmp_path / "shp" / "网格.shp"
    shapefile.parent.mkdir()
    current.to_file(shapefile, encoding="gbk")
    archive = tmp_path / "grids.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for part in shapefile.parent.iterdir():
            bundle.write(part, arcname=f"城市网格/{part.name}")
    response = await admin.post(
        "/api/v1/grids/import",
        files={"file": ("grids.zip", archive.read_bytes(), "application/zip")},
        data={"dry_run": "true"},
    )
    assert response.status_code == 200, response.text
    report = response.json()["report"]
    assert report["written"] is False and report["grids"] == len(current)
    assert report["report"]["errors"] == 0


async def test_admin_upload_of_garbage_is_refused_clearly(as_role) -> None:
    admin = await as_role("admin")
    versions_before = await GridVersion.count()
    response = await admin.post(
        "/api/v1/grids/import", files={"file": ("grids.gpkg", b"not a geopackage", "application/octet-stream")}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "read.corrupt"
    assert "grids.gpkg" in problem["detail_en"] and "/tmp" not in response.text and "Traceback" not in response.text
    assert await GridVersion.count() == versions_before
    wrong_type = await admin.post(
        "/api/v1/grids/import", files={"file": ("grids.exe", b"MZ", "application/octet-stream")}
    )
    assert wrong_type.status_code == 422 and wrong_type.json()["code"] == "grids.upload_type"


async def test_a_community_layer_sets_the_boundaries_later_grid_imports_are_checked_against(
    imported, tmp_path: Path
) -> None:
    from backend.orgs.importer import import_org_layer

    west = imported["communities"][0]
    # The west community officially covers only the first grid's square.
    frame = gpd.GeoDataFrame(
        [{"code": west, "name": "西社区", "parent_code": imported["street"], "geometry": _cell(0, 0)}],
        geometry="geometry",
        crs="EPSG:4326",
    )
    path = tmp_path / "communities.geojson"
    path.write_text(frame.to_json(ensure_ascii=False), encoding="utf-8")
    outcome = await import_org_layer(path, OrgLevel.community, actor=ACTOR)
    assert outcome.written and outcome.updated == [west], outcome.to_json()
    unit = await OrgUnit.select(OrgUnit.name, OrgUnit.boundary).where(OrgUnit.code == west).first()
    assert unit["name"] == "西社区" and unit["boundary"]

    # Now a grid of that community lying wholly outside its boundary is refused, naming it.
    stray = _grid(f"S{imported['tag']}", west, imported["street"], _cell(6, 0))
    stray_file = await _layer_file(tmp_path, [stray], "stray.geojson")
    refused = await import_grid_file(stray_file, ImportOptions(), actor=ACTOR)
    assert not refused.written
    outside = [f for f in refused.findings if f.check == "grid.outside_parent"]
    assert any(f.feature == stray["wgbm"] for f in outside)


async def test_a_damaged_index_file_is_rebuilt_and_points_are_still_placed(imported, as_role) -> None:
    from backend.grids import index_cache, index_store

    admin = await as_role("admin")
    point = [WEST + 0.025, SOUTH + 0.005]  # the third grid
    # Installing the layer built its index and kept the classified raster for the next process.
    kept = sorted(index_store.directory().glob("*.npz"), key=lambda p: p.stat().st_mtime)
    assert kept, "the layer import keeps the index's cells"
    newest = kept[-1]
    newest.write_bytes(b"half a file")
    index_cache.forget()  # as a new process would: it finds the file and cannot use it

    response = await admin.post("/api/v1/grids/locate", json={"points": [point]})

    assert response.json()["results"][0]["grid_code"] == imported["codes"][2]
    with np.load(newest, allow_pickle=False) as stored:  # written again, whole
        assert "cell_code" in stored.files
