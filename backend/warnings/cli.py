"""`gridaid warnings …`: the operator's side of warning ingestion."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click


@click.group("warnings")
def warnings_group() -> None:
    """Hardship warnings: import a department's file, issue a department system's API key."""


@warnings_group.command("apikey")
@click.option("--department", "department_code", required=True, help="Department code, e.g. medical_insurance.")
@click.option("--name", default="department system", show_default=True)
def create_api_key(department_code: str, name: str) -> None:
    """Create an API key for a department's system (printed once; only its hash is kept)."""
    from backend.audit.services import Actor, record
    from backend.cli import _migrate
    from backend.warnings.apikeys import create_key

    _migrate()

    async def run() -> str:
        key = await create_key(department_code, name)
        await record(
            "department.api_key_create",
            actor=Actor.system("cli"),
            object_type="department",
            object_id=department_code,
            detail={"name": name},
        )
        return key

    click.echo(asyncio.run(run()))


_EXIT_SOME_REJECTED = 3


@warnings_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", required=True, help="The sending department's code, e.g. medical_insurance.")
@click.option("--type", "default_type", default=None, help="Warning type of every row, if the file has no type column.")
@click.option("--type-column", default=None, help="Header of the type column, when it is not recognised.")
@click.option(
    "--column",
    "columns",
    multiple=True,
    metavar="FIELD=HEADER",
    help="Which header holds a field (source_record_id, type, id_number, household_id, lon, lat, crs, occurred_on).",
)
@click.option("--encoding", default=None, help="CSV encoding (default: detected; utf-8, gbk, gb18030).")
@click.option("--sheet", default=None, help="XLSX sheet (default: the first).")
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write the rejected rows, with row number and reason, to this CSV (to fix and import again).",
)
@click.option("--dry-run", is_flag=True, help="Read and check every row; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def import_file(
    path: Path,
    source: str,
    default_type: str | None,
    type_column: str | None,
    columns: tuple[str, ...],
    encoding: str | None,
    sheet: str | None,
    rejects: Path | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Import a department's warning file (CSV or XLSX) into visit tasks.

    Headers may be English or Chinese (记录编号/业务编号, 预警类型, 身份证号/证件号码, 经度, 纬度, 坐标系,
    发生日期); other columns become the warning's facts, except names, phones, ID numbers and addresses.
    Re-importing a file creates nothing new. Exit status: 0 every row imported (or already there);
    3 some rows were rejected (the rest were imported; see the report or --rejects); 1 the file
    could not be read.
    """
    from rich.console import Console

    from backend.cli import _migrate, _progress
    from backend.lib.db import pooled
    from backend.warnings.importfile import ImportFileError, ImportOptions, import_warning_file, write_rejects

    overrides = _parse_columns(columns)
    if type_column:
        overrides["type"] = type_column
    _migrate()
    if not asyncio.run(_department_exists(source)):
        raise click.ClickException(f"unknown department {source!r} (see the catalogue: GET /api/v1/departments)")
    options = ImportOptions(
        source=source, encoding=encoding, sheet=sheet, columns=overrides, default_type=default_type, dry_run=dry_run
    )
    console = Console(stderr=True)
    try:
        with _progress(console) as bar:
            task = bar.add_task(f"{'checking' if dry_run else 'importing'} {path.name}", total=None)

            def advance(done: int, total: int | None) -> None:
                bar.update(task, completed=done, total=total)

            # With the connection pool open, as the server has it: a file is two dozen transactions.
            report = asyncio.run(pooled(import_warning_file(path, options, actor=_actor(), progress=advance)))
    except ImportFileError as exc:
        raise click.ClickException(str(exc)) from exc
    if rejects is not None:
        write_rejects(report, rejects)
    if as_json:
        click.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        _render(report, console, rejects)
    if report.rejected:
        sys.exit(_EXIT_SOME_REJECTED)


def _parse_columns(columns: tuple[str, ...]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for spec in columns:
        name, sep, header = spec.partition("=")
        if not sep or not name.strip() or not header.strip():
            raise click.BadParameter(f"{spec!r}: use FIELD=HEADER, e.g. id_number=证件号", param_hint="--column")
        overrides[name.strip()] = header.strip()
    return overrides


def _actor() -> Any:
    from backend.audit.services import Actor

    return Actor.system("cli:warnings-import")


async def _department_exists(code: str) -> bool:
    from backend.departments.tables import Department

    return bool(await Department.exists().where(Department.code == code))


_SHOWN_REJECTS = 50


def _render(report: Any, console: Any, rejects: Path | None) -> None:
    from rich.table import Table

    where = (
        f"{report.format}"
        + (f", {report.encoding}" if report.encoding else "")
        + (f", sheet {report.sheet!r}" if report.sheet else "")
    )
    console.print(f"[bold]{report.file}[/bold] ({where}; header on row {report.header_row})")
    console.print("columns: " + ", ".join(f"{name} ← {header}" for name, header in report.columns.items()))
    if report.facts_columns:
        console.print("facts: " + ", ".join(report.facts_columns))
    if report.personal_columns:
        console.print(f"[yellow]not copied (personal data): {', '.join(report.personal_columns)}[/yellow]")
    if report.withheld_values:
        console.print(f"[yellow]{report.withheld_values} cells looking like an ID or phone number not copied[/yellow]")
    blank = f" (+{report.blank_rows} blank skipped)" if report.blank_rows else ""
    console.print(f"rows: {report.rows}{blank}")
    outcomes = ", ".join(f"{outcome} {report.created.get(outcome, 0)}" for outcome in _OUTCOMES)
    if report.dry_run:
        console.print(f"would create: {report.created_total}   [dim](dry run: nothing written)[/dim]")
    else:
        console.print(f"[green]created: {report.created_total}[/green] ({outcomes}; {len(report.tasks)} tasks)")
    console.print(f"duplicates: {report.duplicates}")
    style = "red" if report.rejected else "green"
    console.print(f"[{style}]rejected: {len(report.rejected)}[/{style}]")
    if report.rejected:
        table = Table("row", "record", "reason")
        for row in report.rejected[:_SHOWN_REJECTS]:
            table.add_row(str(row.row), row.source_record_id, f"{row.reason} [dim]({row.code})[/dim]")
        console.print(table)
        more = len(report.rejected) - _SHOWN_REJECTS
        if more > 0:
            console.print(f"… and {more} more" + ("" if rejects else " (use --rejects FILE to get them all)"))
        if rejects:
            console.print(f"rejected rows written to {rejects}: fix them there and import that file again")
    console.print(f"{report.rows} rows in {report.seconds:.1f} s: {report.rate:,.0f} warnings/s")


_OUTCOMES = ("tasked", "unmatched", "unplaced", "no_worker")
