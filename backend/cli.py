"""The ``gridaid`` command: run everything, or one part; migrate; seed the demo; create users."""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from backend.lib.db import engine  # noqa: F401 — sets PICCOLO_CONF before Piccolo looks for it
from backend.settings import get_settings


def _echo(message: str) -> None:
    click.echo(message, err=True)


@contextmanager
def _redis_for_this_process() -> Iterator[str]:
    """Yield a Redis URL: REDIS_URL if set, else an embedded server we own (or share)."""
    settings = get_settings()
    if settings.redis.url:
        yield settings.redis.url
        return
    from backend.lib.redis import EmbeddedRedis

    embedded = EmbeddedRedis().start()
    try:
        yield embedded.url
    finally:
        embedded.stop()


def _migrate() -> None:
    from backend.setup import prepare_database

    asyncio.run(prepare_database())


@click.group()
def main() -> None:
    """GridAid (网格救助): grid-based social assistance."""


@main.command()
def migrate() -> None:
    """Apply all database migrations."""
    _migrate()
    _echo("gridaid: database is up to date")


@main.command()
@click.option("--host", default=None, help="Bind address (default GRIDAID_HOST or 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default GRIDAID_PORT or 8000).")
@click.option("--workers", default=1, show_default=True, help="uvicorn worker processes.")
def api(host: str | None, port: int | None, workers: int) -> None:
    """Run the HTTP API (and the PWA) with uvicorn."""
    import uvicorn

    settings = get_settings().server
    with _redis_for_this_process() as url:
        os.environ["REDIS_URL"] = url
        get_settings.cache_clear()
        uvicorn.run(
            "backend.asgi:app",
            host=host or settings.host,
            port=port or settings.port,
            workers=workers,
            proxy_headers=False,
            server_header=False,
            log_config=None,
        )


@main.command()
@click.option("--burst", is_flag=True, help="Run queued jobs, then exit.")
def worker(burst: bool) -> None:
    """Run the arq background worker."""
    with _redis_for_this_process() as url:
        os.environ["REDIS_URL"] = url
        get_settings.cache_clear()
        from arq.worker import run_worker

        from jobs.worker import WorkerSettings

        run_worker(WorkerSettings, burst=burst)  # type: ignore[arg-type]


@main.command()
@click.option("--households", default=300, show_default=True, help="How many demo households.")
def demo(households: int) -> None:
    """Seed demo data (Changzhou-shaped organisation, grids, accounts, households). Safe to re-run."""
    _migrate()
    from backend.demo.seed import seed_demo

    summary = asyncio.run(seed_demo(households=households))
    _echo(summary.describe())


@main.command()
@click.option("--demo/--no-demo", "with_demo", default=False, help="Seed demo data first (if not there yet).")
@click.option("--host", default=None)
@click.option("--port", default=None, type=int)
def run(with_demo: bool, host: str | None, port: int | None) -> None:
    """Run everything: embedded Redis (unless REDIS_URL), the API and a worker, as one process tree."""
    from backend.lib.processes import Supervisor, environ_with

    settings = get_settings().server
    host, port = host or settings.host, port or settings.port
    _migrate()
    summary = None
    if with_demo:
        from backend.demo.seed import seed_demo

        summary = asyncio.run(seed_demo())
    with _redis_for_this_process() as url:
        supervisor = Supervisor()
        env = environ_with(REDIS_URL=url)
        gridaid = [sys.executable, "-m", "backend.cli"]
        supervisor.spawn("api", [*gridaid, "api", "--host", host, "--port", str(port)], env)
        supervisor.spawn("worker", [*gridaid, "worker"], env)
        base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104
        if _wait_ready(base, supervisor):
            _echo(f"\nGridAid is running at {base}/  (API docs: {base}/schema/swagger)")
            if summary is not None:
                _echo(summary.describe_logins())
            _echo("Press Ctrl-C to stop.\n")
        code = supervisor.wait()
    sys.exit(code)


def _wait_ready(base: str, supervisor: Any, timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if supervisor.stopping or any(process.poll() is not None for _, process in supervisor.children):
            return False
        try:
            with urllib.request.urlopen(f"{base}/ready", timeout=2) as response:  # noqa: S310 — our own URL
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    _echo("gridaid: not ready after 60 s; still running, check the log above")
    return False


ROLE_CHOICES = ["grid_worker", "supervisor", "department_officer", "resident", "admin"]


@main.command()
@click.option("--username", required=True)
@click.option("--role", type=click.Choice(ROLE_CHOICES), required=True)
@click.option("--display-name", default=None)
@click.option("--phone", default=None)
@click.option("--street", "street_code", default=None, help="Street code, for a supervisor.")
@click.option("--department", "department_code", default=None, help="Department code, for an officer.")
@click.option("--password", default=None, help="Omit to be asked (safer: not in shell history).")
def createuser(
    username: str,
    role: str,
    display_name: str | None,
    phone: str | None,
    street_code: str | None,
    department_code: str | None,
    password: str | None,
) -> None:
    """Create an account."""
    from backend.accounts.services import NewAccount, create_account
    from backend.accounts.tables import Role
    from backend.audit.services import Actor
    from backend.lib.errors import GridAidError

    if password is None:
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Again: "):
            raise click.ClickException("passwords differ")
    _migrate()
    new = NewAccount(
        username=username,
        display_name=display_name or username,
        password=password,
        role=Role(role),
        phone=phone,
        street_code=street_code,
        department_code=department_code,
    )
    try:
        account_id = asyncio.run(create_account(new, actor=Actor.system("cli")))
    except GridAidError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message_en}") from exc
    _echo(f"gridaid: created {role} {username} ({account_id})")


@main.command("audit-verify")
def audit_verify() -> None:
    """Recompute the audit log's hash chain and report the first broken row, if any."""
    from backend.audit.services import verify_chain

    report = asyncio.run(verify_chain())
    if report.intact:
        _echo(f"gridaid: audit chain intact ({report.rows} rows)")
    else:
        raise click.ClickException(f"audit chain broken at row {report.first_broken_id} after {report.rows} rows")


@main.group()
def grids() -> None:
    """Grid maps: import a city's file, locate points, export the current layer."""


@grids.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--layer", default=None, help="GeoPackage layer name.")
@click.option("--crs", default=None, help="wgs84, gcj02, cgcs2000 or an EPSG code (default: the file's, else wgs84).")
@click.option("--encoding", default=None, help="Attribute encoding for Shapefiles without a .cpg (gbk, gb18030).")
@click.option("--code-field", default=None)
@click.option("--name-field", default=None)
@click.option("--parent-field", default=None)
@click.option("--level-field", default=None)
@click.option("--fix", is_flag=True, help="Repair invalid polygons with make_valid (the report says what changed).")
@click.option("--dry-run", is_flag=True, help="Read and validate only; write nothing.")
@click.option("--force", is_flag=True, help="Import even when the report has errors.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def grids_import(
    path: Path,
    layer: str | None,
    crs: str | None,
    encoding: str | None,
    code_field: str | None,
    name_field: str | None,
    parent_field: str | None,
    level_field: str | None,
    fix: bool,
    dry_run: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Import a grid layer (GeoJSON, GeoPackage, Shapefile, FlatGeobuf) as a new version."""
    import json

    from rich.console import Console

    from backend.audit.services import Actor
    from backend.grids.importer import ImportOptions, import_grid_file
    from geo.reader import ReadError
    from geo.report import render_report

    _migrate()
    options = ImportOptions(
        layer=layer,
        crs=crs,
        encoding=encoding,
        code_field=code_field,
        name_field=name_field,
        parent_field=parent_field,
        level_field=level_field,
        fix=fix,
        dry_run=dry_run,
        force=force,
    )
    console = Console(stderr=True)
    try:
        with _progress(console) as progress:
            outcome = asyncio.run(import_grid_file(path, options, actor=Actor.system("cli"), progress=progress))
    except ReadError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(outcome.to_json(), ensure_ascii=False, indent=2, default=str))
    else:
        render_report(outcome.findings, console)
    if outcome.written:
        moved = outcome.rehome.households_moved if outcome.rehome else 0
        console.print(
            f"[green]Imported {outcome.grids} grids as version {outcome.version}[/green]; "
            f"{len(outcome.created_streets)} streets and {len(outcome.created_communities)} communities "
            f"created, {moved} households re-homed, {outcome.notified} people told."
        )
    elif dry_run:
        console.print(f"Dry run: {outcome.grids} grids read and checked; nothing written.")
    else:
        raise click.ClickException("the report has errors; nothing was written (fix the file, or --force)")


def _import_org_layer(path: Path, level: str, *, as_json: bool, **options: Any) -> None:
    import json

    from rich.console import Console

    from backend.audit.services import Actor
    from backend.orgs.importer import import_org_layer
    from backend.orgs.tables import OrgLevel
    from geo.reader import ReadError
    from geo.report import render_report

    _migrate()
    console = Console(stderr=True)
    try:
        outcome = asyncio.run(import_org_layer(path, OrgLevel(level), actor=Actor.system("cli"), **options))
    except ReadError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(outcome.to_json(), ensure_ascii=False, indent=2, default=str))
    else:
        render_report(outcome.findings, console)
    if outcome.written:
        console.print(f"[green]{level}: {len(outcome.created)} created, {len(outcome.updated)} updated[/green]")
    elif options.get("dry_run"):
        console.print(f"Dry run: {outcome.units} {level} boundaries read and checked; nothing written.")
    else:
        raise click.ClickException("the report has errors; nothing was written (fix the file, or --force)")


@contextmanager
def _progress(console: Any) -> Iterator[Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        yield bar


@grids.command("locate")
@click.argument("lon", type=float)
@click.argument("lat", type=float)
@click.option("--crs", default="wgs84", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def grids_locate(lon: float, lat: float, crs: str, as_json: bool) -> None:
    """Which grid (and worker) a point belongs to."""
    import json

    from backend.grids.locate import locate_one

    try:
        found = asyncio.run(locate_one(lon, lat, crs))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False))
        return
    if found["grid_code"] is None:
        click.echo(f"unplaced: no grid within {found['tolerance_m']:.0f} m (nearest street: {found['street'] or '-'})")
        return
    distance = "" if found["flag"] == "inside" else f" ({found['distance_m']:.1f} m outside, flagged)"
    worker = found["worker_name"] or "no worker assigned"
    click.echo(f"{found['grid_code']} {found['grid_name']}{distance}  worker: {worker}")


@grids.command("export")
@click.option("--format", "fmt", type=click.Choice(["geojson", "gpkg"]), default="geojson", show_default=True)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write (default: stdout for geojson, grids.gpkg for gpkg).",
)
def grids_export(fmt: str, output: Path | None) -> None:
    """Write the current grid layer (WGS84) with its codes, names and communities."""
    from backend.grids.export import current_layer_frame

    frame = asyncio.run(current_layer_frame())
    if fmt == "gpkg":
        target = output or Path("grids.gpkg")
        frame.to_file(target, driver="GPKG", layer="grids")
        _echo(f"gridaid: wrote {len(frame)} grids to {target}")
    elif output is None:
        click.echo(frame.to_json(ensure_ascii=False))
    else:
        output.write_text(frame.to_json(ensure_ascii=False), encoding="utf-8")
        _echo(f"gridaid: wrote {len(frame)} grids to {output}")


@main.group()
def keys() -> None:
    """Encryption keys for personal data: status, rotation, re-sealing."""


@keys.command("status")
def keys_status() -> None:
    """How many sealed values use each key."""
    from backend.keys.services import count_by_key
    from backend.lib import crypto

    counts = asyncio.run(count_by_key())
    _echo(f"active key: {crypto.keyring().active_key_id}")
    for key_id, count in sorted(counts.items()):
        _echo(f"  {key_id}: {count} values")


@keys.command("rotate")
def keys_rotate() -> None:
    """Embedded key file: add a new active key, then re-seal every value under it."""
    from backend.keys.services import reseal_all, rotate_key_file

    key_id = rotate_key_file()
    changed = asyncio.run(reseal_all())
    _echo(f"gridaid: new active key {key_id}; re-sealed {changed} values")


@keys.command("reseal")
def keys_reseal() -> None:
    """Re-seal values under the active key (after changing GRIDAID_KEYRING in your secret store)."""
    from backend.keys.services import reseal_all

    _echo(f"gridaid: re-sealed {asyncio.run(reseal_all())} values")


@keys.command("new-keyring")
def keys_new_keyring() -> None:
    """Print the current keyring plus a new active key, for a secret store (GRIDAID_KEYRING)."""
    from backend.keys.services import new_keyring_json

    click.echo(new_keyring_json())


def _register_groups() -> None:
    from backend.warnings.cli import warnings_group

    main.add_command(warnings_group)


_register_groups()

if __name__ == "__main__":
    main()
