"""GridIndex benchmarks on ~13,000 synthetic grids over Changzhou: ``uv run python -m bench.run``.

Measures, in one run, and writes ``bench/RESULTS.md``:

(a) assigning 1,000,000 points: ``GridIndex.locate_many`` vs ``geopandas.sjoin(..., predicate="within")``
    on the same points and grids (median of several alternating runs, and the ratio), and checks that
    both give the same grid for every point sjoin places;
(b) one point at a time: ``GridIndex.locate`` p50/p90 in µs, next to an STRtree query per point and a
    bare ``shapely.contains_xy`` on one prepared polygon;
(c) building the index;
(d) importing and validating the layer from a GeoPackage with ``geo.reader`` / ``geo.validate``.

The machine is small and noisy (2 shared cores): read medians and ratios, not single runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pyogrio
import shapely
from shapely.geometry import Point

from bench import results
from bench.layer import DISTRICTS, cached_layer, district_wgs84
from bench.results import marked_sections
from geo.index import INSIDE, GridIndex
from geo.synthetic import sample_points

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
CACHE = RESULTS.parent / ".cache"
COMMAND = "uv run python -m bench.run"
INSIDE_SHARE = 0.85  # the rest is uniform over the city's bounding box, much of it outside every grid

FloatArray = npt.NDArray[np.float64]


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)

    def say(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def target(self, name: str, met: bool, detail: str) -> None:
        verdict = f"- {name}: {'**met**' if met else '**NOT met**'} ({detail})"
        self.verdicts.append(verdict)
        print(verdict, flush=True)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def median_s(times: list[float]) -> str:
    return f"{statistics.median(times) * 1e3:,.1f} ms (runs: {', '.join(f'{t * 1e3:,.0f}' for t in times)})"


def random_points(layer: gpd.GeoDataFrame, n: int, seed: int = 2024) -> tuple[FloatArray, FloatArray]:
    """``INSIDE_SHARE`` of the points uniform inside the districts (by area), the rest uniform over the bbox."""
    rng = np.random.default_rng(seed)
    districts = [district_wgs84(code) for code in DISTRICTS]
    areas = np.array([d.area for d in districts])
    n_inside = int(n * INSIDE_SHARE)
    per_district = rng.multinomial(n_inside, areas / areas.sum())
    inside = [sample_points(d, int(k), seed=rng) for d, k in zip(districts, per_district, strict=True)]
    minx, miny, maxx, maxy = layer.total_bounds
    rest = n - n_inside
    outside = np.column_stack([rng.uniform(minx, maxx, rest), rng.uniform(miny, maxy, rest)])
    xy = np.concatenate([*inside, outside])
    xy = xy[rng.permutation(len(xy))]
    return xy[:, 0].copy(), xy[:, 1].copy()


# -- (c) build -----------------------------------------------------------------------------------


def bench_build(report: Report, codes: list[str], geoms: npt.NDArray[np.object_], runs: int) -> GridIndex:
    times: list[float] = []
    index: GridIndex | None = None
    for _ in range(runs):
        fresh = np.array([shapely.from_wkb(shapely.to_wkb(g)) for g in geoms], dtype=object)  # unprepared copies
        start = time.perf_counter()
        index = GridIndex.build(codes, fresh, version=1)
        times.append(time.perf_counter() - start)
    assert index is not None
    report.say(f"- `GridIndex.build` of {len(codes):,} grids: median {median_s(times)}")
    report.say(f"- index: `{index!r}`")
    median = statistics.median(times)
    report.target("(c) build 13,000 grids well under 1-2 s", median < 1.0, f"{median * 1e3:,.0f} ms")
    return index


# -- (a) a million points ------------------------------------------------------------------------


def bench_many(report: Report, index: GridIndex, layer: gpd.GeoDataFrame, n: int, runs: int) -> None:
    lon, lat = random_points(layer, n)
    make_seconds, points = timed(lambda: gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs=layer.crs))
    grids = layer[["code", "geometry"]]
    sindex_seconds, _ = timed(lambda: grids.sindex)
    ours: list[float] = []
    theirs: list[float] = []
    result = joined = None
    for _ in range(runs):  # alternate, so both see the same noise
        seconds, result = timed(lambda: index.locate_many(lon, lat))
        ours.append(seconds)
        seconds, joined = timed(lambda: gpd.sjoin(points, grids, predicate="within", how="inner"))
        theirs.append(seconds)
    assert result is not None and joined is not None
    ratio = statistics.median(theirs) / statistics.median(ours)
    flags = np.bincount(result.flag, minlength=3)
    report.say(f"- points: {n:,} ({INSIDE_SHARE:.0%} drawn inside the districts, the rest over the city's bbox)")
    report.say(f"- `GridIndex.locate_many`: median {median_s(ours)}")
    report.say(f"- `geopandas.sjoin(points, grids, predicate='within')`: median {median_s(theirs)}")
    report.say(
        f"  (not timed above: making the {n:,} point geometries {make_seconds * 1e3:,.0f} ms, which "
        f"locate_many does not need; the grids' spatial index {sindex_seconds * 1e3:,.0f} ms, built once)"
    )
    report.say(f"- **ratio sjoin / locate_many: {ratio:.1f}×**")
    report.say(f"- outcome: {flags[0]:,} inside, {flags[1]:,} near (≤ {index.tolerance_m:g} m), {flags[2]:,} unplaced")
    agree, total, extra = _agreement(result.codes, joined, result.flag)
    report.say(
        f"- agreement: {agree:,} of {total:,} points that sjoin places get the same grid; "
        f"{extra:,} points GridIndex calls inside that sjoin does not place"
    )
    report.target("(a) locate_many ≥ 5× faster than sjoin", ratio >= 5, f"{ratio:.1f}×")
    report.target("(a) agreement on interior points", agree == total and extra == 0, f"{agree:,}/{total:,}")


def _agreement(
    codes: npt.NDArray[np.object_], joined: gpd.GeoDataFrame, flag: npt.NDArray[np.int8]
) -> tuple[int, int, int]:
    placed = joined.index.to_numpy()
    sjoin_codes = joined["code"].to_numpy()
    once = ~joined.index.duplicated(keep=False)
    agree = int((codes[placed[once]] == sjoin_codes[once]).sum())
    extra = int(np.setdiff1d(np.flatnonzero(flag == INSIDE), placed).size)
    return agree, len(placed), extra


# -- (b) one point at a time ---------------------------------------------------------------------


def _percentiles_us(samples_ns: list[int]) -> tuple[float, float]:
    p50, p90 = np.percentile(np.array(samples_ns, dtype=np.float64), [50, 90]) / 1e3
    return float(p50), float(p90)


def _time_each(fn: Callable[[float, float], object], lon: FloatArray, lat: FloatArray) -> list[int]:
    clock = time.perf_counter_ns
    samples: list[int] = []
    for x, y in zip(lon.tolist(), lat.tolist(), strict=True):
        start = clock()
        fn(x, y)
        samples.append(clock() - start)
    return samples


def bench_single(report: Report, index: GridIndex, layer: gpd.GeoDataFrame, n: int) -> None:
    lon, lat = random_points(layer, n, seed=7)
    geoms = np.array(list(layer.geometry), dtype=object)
    tree = shapely.STRtree(geoms)
    one = geoms[0]
    shapely.prepare(one)
    for fn in (index.locate, lambda x, y: tree.query(Point(x, y), predicate="intersects")):
        _time_each(fn, lon[:1000], lat[:1000])  # warm-up
    ours = _percentiles_us(_time_each(index.locate, lon, lat))
    strtree = _percentiles_us(_time_each(lambda x, y: tree.query(Point(x, y), predicate="intersects"), lon, lat))
    bare = _percentiles_us(_time_each(lambda x, y: shapely.contains_xy(one, x, y), lon, lat))
    report.say(f"- {n:,} calls, same point mix as (a)")
    report.say("")
    report.say("| per point | p50 µs | p90 µs |")
    report.say("| --- | ---: | ---: |")
    report.say(f"| `GridIndex.locate(lon, lat)` | {ours[0]:.1f} | {ours[1]:.1f} |")
    report.say(f"| `STRtree.query(Point(lon, lat), predicate='intersects')` | {strtree[0]:.1f} | {strtree[1]:.1f} |")
    report.say(f"| `shapely.contains_xy(one prepared polygon, lon, lat)` | {bare[0]:.1f} | {bare[1]:.1f} |")
    report.say("")
    report.target("(b) locate p50 ≤ 25 µs", ours[0] <= 25, f"p50 {ours[0]:.1f} µs, p90 {ours[1]:.1f} µs")


# -- (d) import and validate from a GeoPackage ------------------------------------------------


def bench_import_and_validate(report: Report, runs: int) -> None:
    """Target (d): the demo's 13,000-grid GeoPackage through ``gridaid``'s importer, into a fresh
    SQLite database: read, validate, create streets and communities, install the layer, re-home.
    The reference is reading + validating alone (what must happen before anything is written)."""
    from backend.demo.map import cached_demo_map
    from geo.reader import read_grid_layer
    from geo.validate import validate_grid_layer

    map_path = cached_demo_map(CACHE)
    read_seconds, layer = timed(lambda: read_grid_layer(map_path))
    validate_seconds, result = timed(lambda: validate_grid_layer(layer))
    report.say(
        f"- read {read_seconds:,.2f} s + validate {validate_seconds:,.2f} s "
        f"({len(layer.frame):,} grids, {len(result.errors)} errors)"
    )
    totals = []
    for _ in range(runs):
        child = subprocess.run(  # noqa: S603 — our own module, our own file
            [sys.executable, "-m", "bench.full_import", str(map_path)],
            cwd=RESULTS.parents[1],
            capture_output=True,
            text=True,
            check=True,
        )
        totals.append(json.loads(child.stdout.strip().splitlines()[-1])["seconds"])
    total = statistics.median(totals)
    share = (read_seconds + validate_seconds) / total
    report.say(
        f"- whole import into SQLite (read, validate, write, re-home): median {total:,.2f} s over {runs} runs; "
        f"reading and validating are {share:.0%} of it"
    )
    report.target("(d) import + validate 13,000 grids ≤ 10 s", total <= 10, f"{total:,.1f} s median of {runs}")


# -- the report ----------------------------------------------------------------------------------


def machine_facts() -> list[str]:
    """The shared date/machine lines (bench.results), plus the spatial libraries these numbers depend on."""
    return [
        *results.machine_facts()[:2],
        f"- Python {platform.python_version()}, numpy {np.__version__}, shapely {shapely.__version__} "
        f"(GEOS {'.'.join(map(str, shapely.geos_version))}), geopandas {gpd.__version__}, "
        f"pyogrio {pyogrio.__version__}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=1_000_000, help="points for (a)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per measurement (median reported)")
    parser.add_argument("--single", type=int, default=20_000, help="calls for (b)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args(argv)

    report = Report()
    path, layer = cached_layer()
    codes = layer["code"].tolist()
    geoms = np.array(list(layer.geometry), dtype=object)
    report.say(f"Layer: {len(layer):,} grids over Changzhou's six districts, `{path.relative_to(RESULTS.parents[1])}`.")
    report.say("")
    report.say("### (c) Build")
    index = bench_build(report, codes, geoms, args.runs)
    report.say("")
    report.say(f"### (a) {args.points:,} points: locate_many vs sjoin")
    bench_many(report, index, layer, args.points, args.runs)
    report.say("")
    report.say("### (b) One point at a time")
    bench_single(report, index, layer, args.single)
    report.say("")
    report.say("### (d) Import and validate 13,000 grids from a GeoPackage")
    bench_import_and_validate(report, max(1, min(args.runs, 3)))
    if not args.no_write:
        write_results(report, sys.argv[1:] if argv is None else argv)
    return 0


def write_results(report: Report, argv: list[str]) -> None:
    command = " ".join([COMMAND, *argv])
    text = "\n".join(
        [
            "# Benchmarks",
            "",
            "Run every benchmark from the repository root: `uv run python -m bench` (about 15 minutes). Or one:",
            "",
            f"- `{COMMAND}`: the grid index and import (options: `--points`, `--runs`, `--single`, `--no-write`);",
            "  it rewrites this part of the file (up to the marked sections below). The first run generates the",
            "  grid layer (about 15 s) and caches it in `bench/.cache/` (gitignored); later runs reuse it.",
            "- `uv run python -m bench.warnings`: 100,000 warnings from a CSV into tasks, on SQLite and PostgreSQL;",
            "- `uv run python -m bench.sync`: the morning rush, 13,000 workers' sync snapshots over HTTP (PostgreSQL).",
            "",
            "Each of the last two rewrites only its own section, between `<!-- bench:… -->` markers. Their",
            "PostgreSQL runs use a throwaway database on 127.0.0.1:5432 (`GRIDAID_BENCH_PG` to change).",
            "None of this is part of the test suite.",
            "",
            "## Grid index: latest run",
            "",
            f"- command: `{command}`",
            *machine_facts(),
            "- the machine has 2 shared, noisy cores: times are medians, compare ratios",
            "",
            "## Targets",
            "",
            *report.verdicts,
            "",
            "## How to read it",
            "",
            "- Both sides of (a) get the same 1,000,000 points and the same 13,000 grids. sjoin is timed on",
            "  ready-made point geometries with the grids' spatial index already built; `locate_many` takes",
            "  plain coordinate arrays. Runs alternate between the two so both see the same noise.",
            "- `locate_many` does more than sjoin: it settles points on shared edges (smallest code), places",
            "  points within the tolerance outside every grid as `near` with their distance, and never raises on",
            "  NaN. The agreement line checks that where sjoin places a point, the grid is the same.",
            "- How: a raster of ~50 m cells over the city; cells no grid edge enters answer from a table, cells",
            "  one edge crosses answer by which side of it the point lies, the rest use GEOS on a short list",
            "  (see the docstring of `geo/index.py`).",
            "",
            "## Details",
            "",
            *report.lines,
            "",
        ]
    )
    # The other benchmarks' sections (bench/results.py) stay as they were.
    kept = marked_sections(RESULTS.read_text()) if RESULTS.exists() else []
    RESULTS.write_text("\n\n".join([text.rstrip(), *kept]) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    raise SystemExit(main())
