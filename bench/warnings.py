"""A department's nightly file: 100,000 warnings from a CSV into visit tasks and queued pushes.

``uv run python -m bench.warnings`` (options: ``--rows``, ``--households``, ``--open-tasks``,
``--engines``, ``--no-write``). For each engine, a child process gets a brand-new database
(SQLite in a temporary var/ directory; PostgreSQL: a throwaway database on 127.0.0.1:5432, dropped
afterwards) and builds the scene without timing it: the demo's 13,000 grids, a worker on every
grid, 60,000 households with two members each, and 10,000 of them already with an open task.

Then it times ``gridaid warnings import`` (the same ``import_warning_file`` the CLI runs, without
the terminal): read and check the CSV, and ``ingest`` it: dedupe, match households by the keyed
hash of the ID number, join open tasks or create new ones for the grid's worker, keep unknown ID
numbers as unmatched, write task events, device sync changes, inbox messages and the outbox rows
that become push jobs. Finally it imports the same file again: every row must be a duplicate.

The file mixes what a real one holds: ID numbers of known people (several warnings for one
household join its task), unknown ID numbers with and without a point, household ids, Chinese
and English type names, a personal column that must not be copied, and 2% malformed rows.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.city import ROOT, cloned_database, fresh_database
from bench.results import machine_facts, replace_section

COMMAND = "uv run python -m bench.warnings"
TARGET_S = 10.0
SOURCE = "medical_insurance"


# ---------------------------------------------------------------------------------------------
# The child: one engine, one fresh database


def write_file(
    path: Path, rows: int, numbers: list[str], households: list[dict[str, Any]], seed: int = 7
) -> dict[str, int]:
    """The department's CSV (UTF-8 with BOM, as Excel saves it); returns how many rows of each kind."""
    from backend.warnings.types import BUILTIN_TYPES
    from bench.city import synthetic_id_number

    rng = np.random.default_rng(seed)
    kinds = rng.choice(
        ["known", "household", "unknown", "unknown_point", "bad_checksum", "no_type", "half_point"],
        size=rows,
        p=[0.86, 0.02, 0.05, 0.05, 0.01, 0.005, 0.005],
    )
    who = rng.integers(0, len(numbers), size=rows)
    places = rng.integers(0, len(households), size=rows)
    type_names = [(code, zh) for code, zh, *_ in BUILTIN_TYPES]
    counts: dict[str, int] = {}
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["业务编号", "预警类型", "证件号码", "household_id", "经度", "纬度", "姓名", "金额", "医院", "发生日期"]
        )
        for n in range(rows):
            kind = str(kinds[n])
            counts[kind] = counts.get(kind, 0) + 1
            code, zh = type_names[n % len(type_names)]
            kind_name = zh if n % 2 else code
            id_number, household, lon, lat = numbers[int(who[n])], "", "", ""
            if kind == "household":
                id_number, household = "", str(households[int(places[n])]["id"])
            elif kind in ("unknown", "unknown_point"):
                id_number = synthetic_id_number(2_000_000 + n)
            if kind in ("unknown_point", "half_point"):
                place = households[int(places[n])]
                lon, lat = f"{place['lon']:.6f}", "" if kind == "half_point" else f"{place['lat']:.6f}"
            if kind == "bad_checksum":
                id_number = id_number[:-1] + ("1" if id_number[-1] != "1" else "2")
            if kind == "no_type":
                kind_name = ""
            amount = f"{rng.integers(20_000, 400_000)}"
            day = f"2026-03-{1 + n % 28:02d}" if n % 3 else f"2026/3/{1 + n % 28}"
            writer.writerow(
                [f"MI2026{n:08d}", kind_name, id_number, household, lon, lat, "某某", amount, "市第一人民医院", day]
            )
    return counts


async def _counts() -> dict[str, int]:
    from backend.notifications.tables import Notification
    from backend.outbox.tables import OutboxMessage
    from backend.sync.tables import SyncChange
    from backend.tasks.tables import TaskEvent, VisitTask
    from backend.warnings.tables import Warning

    return {
        "warnings": await Warning.count(),
        "tasks": await VisitTask.count(),
        "task_events": await TaskEvent.count(),
        "sync_changes": await SyncChange.count(),
        "notifications": await Notification.count(),
        "outbox_push_jobs": await OutboxMessage.count().where(OutboxMessage.kind == "push_notify"),
    }


def _save_profile(text: str) -> None:
    Path(os.environ["GRIDAID_BENCH_PROFILE"]).write_text(text)


def _server_cpu() -> float:
    """CPU seconds used so far by the machine's PostgreSQL processes (0 where /proc cannot tell)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, _, rest = text.partition(") ")
        if name.endswith("(postgres"):
            fields = rest.split()
            # utime, stime, and those of its exited children (a backend ends with its connection)
            ticks += sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


async def build_scene(rows: int, households_n: int, open_tasks: int) -> dict[str, Any]:
    """The city, its households and open tasks, and the department's file: built once per engine."""
    from backend.households.tables import Household, HouseholdMember
    from backend.lib.db import engine
    from backend.settings import get_settings
    from backend.tasks.tables import VisitTask
    from bench.city import grid_workers, household_rows, insert_rows, member_rows, seed_city, task_row

    started = time.perf_counter()
    places = await seed_city()
    households = household_rows(places, households_n)
    members, numbers = member_rows(households, 2)
    await insert_rows(Household, households)
    await insert_rows(HouseholdMember, members)
    workers = await grid_workers()
    now = datetime.now(UTC)
    await insert_rows(VisitTask, [task_row(h, workers.get(h["grid_code"]), now) for h in households[:open_tasks]])
    mix = write_file(get_settings().paths.var_dir / "warnings.csv", rows, numbers, households)
    if engine().engine_type == "postgres":
        # Fresh statistics, as a live database has them (autovacuum gets there on its own later).
        await engine().run_ddl("ANALYZE")
    seed_seconds = time.perf_counter() - started
    print(f"[{engine().engine_type}] scene ready in {seed_seconds:.0f} s", file=sys.stderr, flush=True)
    return {
        "engine": engine().engine_type,
        "rows": rows,
        "mix": mix,
        "households": households_n,
        "members": len(members),
        "grids": len(places),
        "workers": len(set(workers.values())),
        "open_tasks_before": open_tasks,
        "seed_seconds": seed_seconds,
    }


async def measure_import() -> dict[str, Any]:
    """One timed import of the file into a copy of the scene, then the same file again."""
    from backend.lib.db import close_pool, open_pool
    from backend.settings import get_settings

    path = get_settings().paths.var_dir / "warnings.csv"
    # As `gridaid warnings import` runs it: with the connection pool open (backend/lib/db.py).
    await open_pool()
    try:
        result = await _measure_import(path)
    finally:
        await close_pool()
    return result


async def _measure_import(path: Path) -> dict[str, Any]:
    from backend.audit.services import Actor
    from backend.lib.db import engine
    from backend.warnings.importfile import ImportOptions, import_warning_file

    before = await _counts()
    options = ImportOptions(source=SOURCE)
    actor = Actor.system("bench")
    profiler = None
    if os.environ.get("GRIDAID_BENCH_PROFILE"):  # a pyinstrument profile of the first import
        from pyinstrument import Profiler

        profiler = Profiler(async_mode="enabled")
        profiler.start()
    began, cpu_began, server_began = time.perf_counter(), time.process_time(), _server_cpu()
    first = await import_warning_file(path, options, actor=actor)
    first_seconds = time.perf_counter() - began
    python_cpu, server_cpu = time.process_time() - cpu_began, _server_cpu() - server_began
    if profiler is not None:
        profiler.stop()
        _save_profile(profiler.output_text(unicode=True, show_all=False))
    after = await _counts()
    began = time.perf_counter()
    again = await import_warning_file(path, options, actor=actor)
    again_seconds = time.perf_counter() - began
    final = await _counts()
    return {
        "seconds": first_seconds,
        # CPU seconds during the first import: this process (all threads: on SQLite that includes
        # the database's own work), and every PostgreSQL process on the machine (other users too).
        "python_cpu_seconds": python_cpu,
        "server_cpu_seconds": server_cpu if engine().engine_type == "postgres" else None,
        "report": first.to_json() | {"rejected_rows": first.to_json()["rejected_rows"][:3]},
        "written": {key: after[key] - before[key] for key in after},
        "tasks_joined_or_created": len(first.tasks),
        "again_seconds": again_seconds,
        "again": {"created": again.created_total, "duplicates": again.duplicates, "rejected": len(again.rejected)},
        "again_written": {key: final[key] - after[key] for key in final},
    }


# ---------------------------------------------------------------------------------------------
# The parent: per engine, one scene, then each measurement in a copy of it; then the report


def _child(env: dict[str, str], args: list[str]) -> dict[str, Any]:
    run = subprocess.run(  # noqa: S603 — our own module
        [sys.executable, "-m", "bench.warnings", "--child", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def run_engine(engine: str, args: argparse.Namespace) -> dict[str, Any]:
    sizes = ["--rows", str(args.rows), "--households", str(args.households), "--open-tasks", str(args.open_tasks)]
    with fresh_database(engine) as env:
        scene = _child(env, ["build", *sizes])
        runs = []
        for n in range(args.repeat):
            with cloned_database(engine, env) as clone:
                if n:  # profile only the first
                    clone.pop("GRIDAID_BENCH_PROFILE", None)
                runs.append(_child(clone, ["import"]))
                print(f"  {engine} run {n + 1}: {runs[-1]['seconds']:.2f} s", file=sys.stderr, flush=True)
    middle = sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2]
    return {**scene, **middle, "runs": [run["seconds"] for run in runs]}


def postgres_version() -> str | None:
    try:
        import asyncpg

        from bench.city import PG_ADMIN_DSN

        async def version() -> str:
            connection = await asyncpg.connect(PG_ADMIN_DSN)
            try:
                return str(await connection.fetchval("SHOW server_version"))
            finally:
                await connection.close()

        return asyncio.run(version())
    except OSError:
        return None


def render(results: list[dict[str, Any]], argv: list[str]) -> str:
    lines = [
        "## Warning ingestion: 100,000 rows from a CSV",
        "",
        f"Run: `{COMMAND}` (this section only; `uv run python -m bench` runs every benchmark).",
        "",
        f"- command: `{' '.join([COMMAND, *argv])}`",
        *machine_facts(postgres_version()),
        "",
        "| engine | rows | seconds (median) | each run | warnings/s | target ≤ 10 s | re-import (all duplicates) |",
        "| --- | ---: | ---: | --- | ---: | --- | ---: |",
    ]
    for r in results:
        met = "**met**" if r["seconds"] <= TARGET_S else "**NOT met**"
        each = ", ".join(f"{run:.1f}" for run in r.get("runs", [r["seconds"]]))
        lines.append(
            f"| {r['engine']} | {r['rows']:,} | {r['seconds']:.1f} | {each} | {r['rows'] / r['seconds']:,.0f} | "
            f"{met} | {r['again_seconds']:.1f} s |"
        )
    lines += [
        "",
        "Each run imports the file into a fresh copy of the same scene (PostgreSQL: a database made from",
        "the scene as a template; SQLite: a copy of the file), in a new process; the median is quoted.",
        "",
        "CPU seconds during the median run's import (2 cores, so CPU can exceed wall time):",
        "",
    ]
    for r in results:
        server = r.get("server_cpu_seconds")
        lines.append(
            f"- {r['engine']}: wall {r['seconds']:.1f} s; this process {r.get('python_cpu_seconds', 0):.1f} s"
            + (" (includes SQLite's own work, in the driver's thread)" if r["engine"] == "sqlite" else "")
            + (f"; PostgreSQL server processes {server:.1f} s" if server is not None else "")
            + "."
        )
    lines += ["", "What each run did and wrote:", ""]
    for r in results:
        report, written = r["report"], r["written"]
        outcomes = ", ".join(f"{k} {v:,}" for k, v in report["created_by_outcome"].items())
        lines += [
            f"- **{r['engine']}**: scene {r['grids']:,} grids, {r['workers']:,} workers, "
            f"{r['households']:,} households ({r['members']:,} members), "
            f"{r['open_tasks_before']:,} open tasks before (built in {r['seed_seconds']:.0f} s, not timed).",
            f"  Created {report['created']:,} warnings ({outcomes}), {report['duplicates']:,} duplicates, "
            f"{report['rejected']:,} rejected with their row numbers (e.g. "
            + "; ".join(f"row {x['row']}: {x['reason']}" for x in report["rejected_rows"])
            + ").",
            f"  Rows written: {written['tasks']:,} new tasks ({r['tasks_joined_or_created']:,} tasks touched, "
            f"the rest joined), {written['warnings']:,} warnings, {written['task_events']:,} task events, "
            f"{written['sync_changes']:,} sync changes, {written['notifications']:,} inbox messages, "
            f"{written['outbox_push_jobs']:,} queued push jobs (outbox rows; each nudges up to 200 people).",
            f"  Second import of the same file: {r['again']['duplicates']:,} duplicates, {r['again']['created']} "
            f"created, {r['again']['rejected']:,} rejected again; rows written: {sum(r['again_written'].values())}.",
        ]
    lines += [
        "",
        "The time covers the whole import: reading the CSV (detecting the encoding, and counting the",
        "records for the progress bar in the same pass that keeps them), checking each row, and `ingest`",
        "in chunks, each chunk one transaction. The grid index loads once in the process, while the file",
        "is read, as in a fresh CLI run; its classified raster comes from the file kept when the layer was",
        "installed (`backend/grids/index_store.py`), as it would on a server that has imported its layer.",
        "",
        "How it runs: the file's rows are first brought together by person (rows naming the same ID",
        "number or household id, or sharing a record id, become neighbours, in the order of their first",
        "row; `backend/lib/rowgroups.py`), so one person's warnings open their task once instead of",
        "each later chunk updating it again. Each chunk is planned (checks, keyed hashes, the dedupe",
        "query, household matching with the grid's current worker, grid placement, the rows to write)",
        "while the previous chunk is written, on committed data plus what the import planned but has not",
        "written yet; each write is guarded (a task it joins must still be open and unchanged since read,",
        "or the chunk is planned again inside its transaction). Chunks are 10,000 rows, except at the two",
        "ends of that pipeline, where nothing overlaps: the first two are 2,000 and 5,000 rows (the first",
        "write starts sooner) and the last is 2,000 (the write nobody overlaps is short). A chunk writes",
        "its new tasks, its joins, its warnings and the sync changes that send the tasks it opened or",
        "joined to their workers' phones; the inbox messages (one per worker per file) and push jobs",
        "follow the last chunk. PostgreSQL inserts by binary COPY; SQLite takes a statement's rows as one",
        "JSON text, with the values common to every row (state, times, source) bound once. The cyclic",
        "garbage collector is paused for the import (`backend/lib/gcpause.py`).",
        "",
        "This session's change (2026-11-23, ninth session): SQLite keeps idle connections between",
        "transactions while a pool is open, as PostgreSQL does (`EmbeddedSQLiteEngine` in",
        "`backend/lib/db.py`): no connect, pragmas and schema load per transaction, a warm page cache,",
        "and a checkpoint every 16,384 WAL pages instead of at each burst's last close. Interleaved",
        "with the code at the session's start (734f43b) on one scene: SQLite 9.54 / 9.12 / 12.19 s",
        "before, 7.53 / 7.65 / 8.62 s after (medians 9.5 → 7.7 s). PostgreSQL's code did not change.",
        "",
        "The same pool was tried in the eighth session and dropped because the test suite then found",
        "the database malformed, or died of a bus error. The cause was the suite, not the pool: one",
        "test read the database files with Python's `open()` in the test process, and closing those",
        "descriptors dropped every POSIX lock the process held on the files, its open connections'",
        "included (sqlite.org/howtocorrupt.html, 2.2), so another process could take the database",
        "for its own and reset files those connections still had mapped. The test now reads the",
        "files in another process. Confirmed both ways: the pool with the old test died of a bus",
        "error again; with the new test, the suites pass on both engines.",
        "",
        "The machine's speed drifts by up to 1.5× within minutes (the eighth session's runs of",
        "unchanged code took 11.6–12.7 s; this session's, 7.4–9.5 s). Only interleaved runs compare;",
        "the table above is one moment. PostgreSQL's import code is the one that recorded 12.2 s in",
        "the eighth session: its pass in this table is the machine's faster moment, not a change.",
        "The margin is thin: a repeat of the same command half an hour after the run recorded in",
        "this section (`--no-write`, 06:31 UTC) gave SQLite 10.07 s and PostgreSQL 9.65 s.",
        "",
        "Tried, not kept, earlier: each SQLite connection's pragmas in one round trip without the",
        "pool; a connection held open through the import; identifier columns in the C collation and",
        "fillfactor 70 on `visit_task` on PostgreSQL; multi-row `VALUES` inserts on SQLite, a turn for",
        "the event loop every 500 rows on SQLite, no automatic checkpoints during the import, 5,000-",
        "and 20,000-row chunks, fillfactor 80.",
        "",
        "Where the time goes now. PostgreSQL: the machine's two cores are nearly saturated in the",
        "steady state (this process ~7.5 CPU-s, the server ~10 CPU-s in a slow phase); the server's",
        "per-row work (foreign-key checks ~3 s, index entries) and the serial ends (~0.9 s to read and",
        "plan the first chunk, ~0.7 s for the final inbox messages) are what is left to cut. SQLite:",
        "not profiled again since the pool.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--households", type=int, default=60_000)
    parser.add_argument("--open-tasks", type=int, default=10_000)
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    parser.add_argument("--repeat", type=int, default=3, help="timed imports per engine, each into a fresh copy")
    parser.add_argument("--child", choices=["build", "import"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "build":
        print(json.dumps(asyncio.run(build_scene(args.rows, args.households, args.open_tasks)), default=str))
        return 0
    if args.child == "import":
        print(json.dumps(asyncio.run(measure_import()), default=str))
        return 0
    results = []
    for engine in args.engines.split(","):
        result = run_engine(engine.strip(), args)
        print(
            f"{result['engine']}: {result['rows']:,} rows in {result['seconds']:.2f} s (median of "
            f"{', '.join(f'{run:.2f}' for run in result['runs'])}) "
            f"({result['rows'] / result['seconds']:,.0f} warnings/s); re-import {result['again_seconds']:.2f} s",
            flush=True,
        )
        results.append(result)
    text = render(results, sys.argv[1:] if argv is None else argv)
    print(text)
    if not args.no_write:
        replace_section("warnings", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
