"""`gridaid warnings import`: a department's spreadsheet becomes visit tasks for the right workers.

The CLI runs as a real child process against the test database. Households are our own (created
through the admin API in the world's grids), so other tests' tasks on the world's households
do not matter: a household has one open task at a time.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import secrets
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import openpyxl
import pytest

from backend.audit.services import Actor
from backend.notifications.tables import Notification
from backend.outbox.tables import OutboxMessage
from backend.sync.tables import SyncChange
from backend.tasks.tables import VisitTask
from backend.warnings.importfile import ImportFileError, ImportOptions, import_warning_file
from backend.warnings.services import IncomingWarning, Ingestion, News, active_types
from backend.warnings.tables import Warning
from tests.helpers import id_number
from tests.integration.conftest import Api, World

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
SOURCE = "medical_insurance"
EXIT_SOME_REJECTED = 3


async def _gridaid(*args: str) -> Any:
    return await anyio.run_process(
        [sys.executable, "-m", "backend.cli", *args], cwd=ROOT, env=dict(os.environ), check=False
    )


async def _import(path: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    result = await _gridaid("warnings", "import", str(path), "--source", SOURCE, "--json", *extra)
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr, stderr
    return result.returncode, json.loads(result.stdout) if result.stdout.strip() else {}, stderr


async def _household(admin: Api, grid: str, people: int = 1) -> tuple[str, list[str]]:
    """A household of our own in ``grid``, its members' ID numbers first the head's."""
    numbers = [id_number() for _ in range(people)]
    response = await admin.post(
        "/api/v1/households",
        json={
            "code": f"WI{secrets.token_hex(4)}",
            "head_name": "预警户主",
            "address": "导入测试路1号",
            "grid_code": grid,
            "category": "dibao_marginal",
            "members": [
                {"name": f"成员{n}", "relation": "head" if n == 0 else "spouse", "id_number": number}
                for n, number in enumerate(numbers)
            ],
        },
    )
    assert response.status_code == 201, response.text
    return response.json()["id"], numbers


async def _tasks_of(device: Api) -> dict[str, dict[str, Any]]:
    response = await device.get("/api/v1/tasks", params={"limit": 500})
    assert response.status_code == 200, response.text
    return {task["household"]["id"]: task for task in response.json()["items"]}


async def _told(world: World) -> dict[str, int]:
    return {
        key: await Notification.count().where(
            Notification.account == world.account_ids[key], Notification.kind.is_in(["task.new", "task.raised"])
        )
        for key in ("worker_a", "worker_b")
    }


def _record(tag: str, n: int) -> str:
    return f"YB{tag}{n:03d}"


async def _families(
    admin: Api, world: World, count: int, people: int = 1
) -> tuple[list[tuple[str, list[str]]], str, list[str]]:
    """``count`` households of our own in GA2, a fresh record tag, and a file's lines so far: the
    header and one large-expense row for each family's head."""
    families = [await _household(admin, world.grid_codes["GA2"], people=people) for _ in range(count)]
    tag = secrets.token_hex(3)
    lines = ["record_id,type,id_number"]
    lines += [f"{_record(tag, n)},large_medical_expense,{numbers[0]}" for n, (_, numbers) in enumerate(families)]
    return families, tag, lines


async def _counts(records: list[str]) -> tuple[int, int, int]:
    warnings = await Warning.count().where(Warning.source == SOURCE, Warning.source_record_id.is_in(records))
    return warnings, await VisitTask.count(), await OutboxMessage.count()


async def test_a_gbk_csv_becomes_tasks_and_a_second_import_changes_nothing(
    world: World, as_role: Any, tmp_path: Path
) -> None:
    admin = await as_role("admin")
    family, (head, spouse) = await _household(admin, world.grid_codes["GA2"], people=2)
    other, (other_head,) = await _household(admin, world.grid_codes["GB1"])
    stranger = id_number("110101")
    tag = secrets.token_hex(3)
    bad = head[:-1] + ("0" if head[-1] != "0" else "1")
    rows = [
        # record, type, ID number, name, phone, amount, lon, lat
        (_record(tag, 1), "大额医疗支出", head, "张三", "13812345678", "52000", "", ""),
        (_record(tag, 2), "traffic_accident", spouse, "李四", "", "8000", "", ""),
        (_record(tag, 3), "工伤事故", other_head, "王五", "", "", "", ""),
        (_record(tag, 4), "收入骤降", stranger, "赵六", "", "", "", ""),
        (_record(tag, 5), "大额医疗支出", bad, "", "", "", "", ""),
        (_record(tag, 6), "", head, "", "", "", "", ""),
        (_record(tag, 7), "交通事故", head, "", "", "", "119.915", ""),
        (_record(tag, 8), "交通事故", head, "", "", "", "东经119", "31.7"),
        (_record(tag, 1), "大额医疗支出", head, "", "", "", "", ""),
    ]
    path = tmp_path / "医保预警.csv"
    with path.open("w", encoding="gbk", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["业务编号", "预警类型", "证件号码", "姓名", "联系电话", "自付金额", "经度", "纬度"])
        writer.writerows(rows)
    rejects = tmp_path / "rejects.csv"
    told_before = await _told(world)

    code, report, _ = await _import(path, "--rejects", str(rejects))

    assert code == EXIT_SOME_REJECTED
    assert report["encoding"] == "gb18030"
    assert report["created"] == 4
    assert report["created_by_outcome"] == {"tasked": 3, "unmatched": 1}
    assert report["duplicates"] == 1
    assert set(report["personal_columns_not_copied"]) == {"姓名", "联系电话"}
    reasons = {row["row"]: row for row in report["rejected_rows"]}
    assert sorted(reasons) == [6, 7, 8, 9]  # the header is row 1
    assert "check digit" in reasons[6]["reason"]
    assert reasons[7]["code"] == "import.type_missing" and "预警类型" in reasons[7]["reason"]
    assert "both lon and lat" in reasons[8]["reason"]
    assert reasons[9]["code"] == "import.not_a_number" and "经度" in reasons[9]["reason"]

    # The rejected rows, as they were, with row and reason: fixable in Excel and importable again.
    with rejects.open(encoding="utf-8-sig", newline="") as handle:
        written = list(csv.DictReader(handle))
    assert [int(row["_row"]) for row in written] == [6, 7, 8, 9]
    assert written[0]["证件号码"] == bad and "check digit" in written[0]["_error"]
    assert oct(rejects.stat().st_mode & 0o777) == "0o600"  # rows hold ID numbers

    # Two warnings about one household: one task, raised by both, for the grid's worker.
    worker_a = await _tasks_of(await as_role("worker_a"))
    worker_b = await _tasks_of(await as_role("worker_b"))
    assert family in worker_a and family not in worker_b
    assert worker_a[family]["warnings"] == 2
    assert set(worker_a[family]["type_codes"]) == {"large_medical_expense", "traffic_accident"}
    assert worker_a[family]["assignee_id"] == world.account_ids["worker_a"]
    assert other in worker_b and other not in worker_a

    # Facts keep the amount and never the name or phone.
    first = await Warning.select(Warning.facts, Warning.status).where(
        Warning.source == SOURCE, Warning.source_record_id == _record(tag, 1)
    )
    facts = first[0]["facts"] if isinstance(first[0]["facts"], dict) else json.loads(first[0]["facts"])
    assert facts == {"自付金额": "52000"}

    # The unknown ID number waits on the unmatched list, masked.
    unmatched = await admin.get("/api/v1/warnings/unmatched")
    assert unmatched.status_code == 200
    mine = [w for w in unmatched.json() if w["source_record_id"] == _record(tag, 4)]
    assert len(mine) == 1 and mine[0]["id_number_masked"] == stranger[:4] + "*" * 10 + stranger[-4:]
    assert stranger not in unmatched.text

    # Each worker was told once about the file, however many rows it had for them.
    assert await _told(world) == {key: count + 1 for key, count in told_before.items()}

    records = [_record(tag, n) for n in range(1, 9)]
    before = await _counts(records)
    code, again, _ = await _import(path)
    assert code == EXIT_SOME_REJECTED
    assert again["created"] == 0 and again["duplicates"] == 5 and again["rejected"] == 4
    assert await _counts(records) == before
    assert (await _tasks_of(await as_role("worker_a")))[family]["warnings"] == 2


async def test_an_xlsx_with_a_title_row_and_chinese_headers(world: World, as_role: Any, tmp_path: Path) -> None:
    admin = await as_role("admin")
    family, (head,) = await _household(admin, world.grid_codes["GA2"])
    stranger = id_number("110101")
    tag = secrets.token_hex(3)
    book = openpyxl.Workbook()
    book.active.title = "说明"
    book.active.append(["本表由医保系统导出"])
    sheet = book.create_sheet("预警")
    sheet.append(["2026年3月 大额医疗支出预警名单"])
    sheet.append([])
    sheet.append(["记录编号", "预警类型", "身份证号", "经度", "纬度", "坐标系", "发生日期", "住院天数", "户主姓名"])
    # GB1 is the world's third grid (119.92–119.93, 31.70–31.71): street B.
    sheet.append([_record(tag, 1), "交通事故", head, None, None, None, datetime(2026, 3, 2), 12, "王五"])
    # Excel keeps an ID number typed into a plain cell as a float (an "X" check digit cannot be typed so).
    sheet.append([_record(tag, 2), "交通事故", float(head.replace("X", "0")), None, None, None, "2026/3/3", 3, ""])
    sheet.append([_record(tag, 3), "自然灾害", stranger, 119.925, 31.705, "WGS84", "2026-03-04", None, ""])
    sheet.append([_record(tag, 4), "自然灾害", stranger, 119.925, 31.705, "wgs84", "2026-02-30", None, ""])
    path = tmp_path / "预警名单.xlsx"
    book.save(path)

    code, report, _ = await _import(path, "--sheet", "预警")

    assert code == EXIT_SOME_REJECTED
    assert report["sheet"] == "预警" and report["header_row"] == 3
    assert report["created_by_outcome"] == {"tasked": 1, "unmatched": 1}
    assert report["facts_columns"] == ["住院天数"] and report["personal_columns_not_copied"] == ["户主姓名"]
    rejected = {row["row"]: row for row in report["rejected_rows"]}
    assert sorted(rejected) == [5, 7]
    assert rejected[5]["code"] == "import.id_number_as_number"
    assert rejected[7]["code"] == "import.date"

    task = (await _tasks_of(await as_role("worker_a")))[family]
    assert task["type_codes"] == ["traffic_accident"]
    warning = (
        await Warning.select(Warning.occurred_on, Warning.facts)
        .where(Warning.source == SOURCE, Warning.source_record_id == _record(tag, 1))
        .first()
    )
    assert warning is not None and warning["occurred_on"] == "2026-03-02"

    # An unknown ID number with a point goes to that street's supervisor, not the other street's.
    seen_b = await (await as_role("supervisor_b")).get("/api/v1/warnings/unmatched")
    seen_a = await (await as_role("supervisor_a")).get("/api/v1/warnings/unmatched")
    assert _record(tag, 3) in {w["source_record_id"] for w in seen_b.json()}
    assert _record(tag, 3) not in {w["source_record_id"] for w in seen_a.json()}


async def test_a_dry_run_checks_every_row_and_writes_nothing(world: World, as_role: Any, tmp_path: Path) -> None:
    admin = await as_role("admin")
    _, (head,) = await _household(admin, world.grid_codes["GA2"])
    tag = secrets.token_hex(3)
    path = tmp_path / "utf8.csv"
    path.write_text(
        "record_id,风险类别,id_number,amount\n"
        f"{_record(tag, 1)},large_medical_expense,{head},100\n"
        f"{_record(tag, 2)},no_such_type,{head},100\n"
        "\n",
        encoding="utf-8-sig",
    )
    before = await VisitTask.count(), await Warning.count()

    code, report, _ = await _import(path, "--dry-run", "--type-column", "风险类别")

    assert code == EXIT_SOME_REJECTED
    assert report["dry_run"] is True and report["blank_rows"] == 1
    assert report["encoding"] == "utf-8-sig" and report["columns"]["type"] == "风险类别"
    assert report["created_by_outcome"] == {"would_create": 1}
    assert (
        report["rejected_rows"][0]["row"] == 3
        and "unknown or inactive warning type" in (report["rejected_rows"][0]["reason"])
    )
    assert (await VisitTask.count(), await Warning.count()) == before


async def test_a_file_without_the_needed_columns_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "wrong.csv"
    path.write_text("姓名,电话\n张三,13812345678\n", encoding="utf-8")
    result = await _gridaid("warnings", "import", str(path), "--source", SOURCE)
    message = result.stderr.decode()
    assert result.returncode == 1
    assert "记录编号" in message and "Traceback" not in message


async def test_a_file_that_does_not_decode_is_refused_before_anything_is_written(world: World, tmp_path: Path) -> None:
    path = tmp_path / "医保预警.csv"
    path.write_bytes("业务编号,预警类型,证件号码\n".encode() + b"MI-1,\xff\xfe,110101\n")
    before = await Warning.count()

    with pytest.raises(ImportFileError, match="not valid utf-8 text"):
        await import_warning_file(path, ImportOptions(source=SOURCE, encoding="utf-8"), actor=Actor.system("test"))

    assert await Warning.count() == before
    # The grid index that started loading beside the file is not left running.
    assert not [task for task in asyncio.all_tasks() if "current_layer" in repr(task.get_coro())]


async def test_an_unknown_source_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "any.csv"
    path.write_text("record_id,type,id_number\n", encoding="utf-8")
    result = await _gridaid("warnings", "import", str(path), "--source", "no_such_department")
    assert result.returncode == 1 and "no_such_department" in result.stderr.decode()


async def test_a_file_written_in_many_chunks_tells_each_worker_once(world: World, as_role: Any, tmp_path: Path) -> None:
    families, _, lines = await _families(await as_role("admin"), world, 5)
    path = tmp_path / "chunks.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    told_before = await _told(world)

    # Two rows per transaction: three chunks, and still one message for the worker about the file.
    report = await import_warning_file(path, ImportOptions(source=SOURCE, chunk_rows=2), actor=Actor.system("test"))

    assert report.created_total == 5
    tasks = await _tasks_of(await as_role("worker_a"))
    assert {family for family, _ in families} <= set(tasks)
    assert await _told(world) == {"worker_a": told_before["worker_a"] + 1, "worker_b": told_before["worker_b"]}


async def test_each_task_of_a_many_chunk_file_reaches_the_workers_phone_once_per_chunk_that_changes_it(
    world: World, as_role: Any, tmp_path: Path
) -> None:
    """Tasks reach the devices with their chunk's transaction: once per chunk that opens or joins
    them, never once per warning."""
    families, tag, lines = await _families(await as_role("admin"), world, 5, people=2)
    path = tmp_path / "joined-later.csv"
    # The first family's other member: the file's rows are brought together by person, not household.
    spouse = families[0][1][1]
    lines += [f"{_record(tag, 5)},traffic_accident,{spouse}", f"{_record(tag, 6)},death_of_earner,{spouse}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    worker = await as_role("worker_a")
    cursor = (await worker.get("/api/v1/sync")).json()["cursor"]

    # Two rows per chunk: the first family's task is opened in the first chunk, joined in the last two.
    report = await import_warning_file(path, ImportOptions(source=SOURCE, chunk_rows=2), actor=Actor.system("test"))

    assert report.created_total == 7 and len(report.tasks) == 5
    delta = (await worker.get(f"/api/v1/sync?cursor={cursor}")).json()
    synced = {task["household"]["id"]: task for task in delta["tasks"]}
    assert {family for family, _ in families} <= set(synced)
    assert synced[families[0][0]]["warnings"] == 3  # as the last chunk left it
    changes = await SyncChange.count().where(
        SyncChange.account == world.account_ids["worker_a"],
        SyncChange.entity == "task",
        SyncChange.entity_id.is_in(sorted(report.tasks)),
    )
    assert changes == 5 + 2  # the first family's task again with each of the two chunks that joined it


async def test_one_persons_rows_scattered_through_a_file_open_their_task_once(
    world: World, as_role: Any, tmp_path: Path
) -> None:
    """A person named in the file's first row and again in its last lands in one chunk: the
    worker's phone is sent the task once, with both warnings, not once per chunk."""
    families, tag, lines = await _families(await as_role("admin"), world, 4)
    path = tmp_path / "scattered.csv"
    lines.append(f"{_record(tag, 4)},traffic_accident,{families[0][1][0]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    report = await import_warning_file(path, ImportOptions(source=SOURCE, chunk_rows=2), actor=Actor.system("test"))

    assert report.created_total == 5 and len(report.tasks) == 4
    tasks = await _tasks_of(await as_role("worker_a"))
    first = tasks[families[0][0]]
    assert first["warnings"] == 2
    assert (
        await SyncChange.count().where(
            SyncChange.account == world.account_ids["worker_a"],
            SyncChange.entity == "task",
            SyncChange.entity_id == first["id"],
        )
        == 1
    )


async def test_a_record_id_repeated_for_another_person_keeps_the_first_rows_warning(
    world: World, as_role: Any, tmp_path: Path
) -> None:
    """Rows are brought together by person, but a record id's first row in the file is still the
    one kept: the repeat, naming someone else further down, is answered as a duplicate."""
    admin = await as_role("admin")
    (first, (ann,)), (second, (bob,)) = [await _household(admin, world.grid_codes["GA2"]) for _ in range(2)]
    tag = secrets.token_hex(3)
    path = tmp_path / "repeated-record.csv"
    rows = [(_record(tag, 0), bob), (_record(tag, 1), ann), (_record(tag, 2), bob), (_record(tag, 1), bob)]
    lines = ["record_id,type,id_number", *(f"{record},income_drop,{number}" for record, number in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    report = await import_warning_file(path, ImportOptions(source=SOURCE, chunk_rows=1), actor=Actor.system("test"))

    assert report.created_total == 3 and report.duplicates == 1
    tasks = await _tasks_of(await as_role("worker_a"))
    assert tasks[first]["warnings"] == 1 and tasks[second]["warnings"] == 2
    kept = await Warning.select(Warning.task).where(Warning.source_record_id == _record(tag, 1)).first()
    assert kept is not None and str(kept["task"]) == tasks[first]["id"]


async def test_a_phone_that_synced_between_chunks_hears_that_a_later_chunk_raised_its_task(
    world: World, as_role: Any
) -> None:
    """A worker's phone syncs while a file is being imported, after the chunk that opened a family's
    task; a later chunk of the same file joins it with a more urgent warning. The phone's next sync
    brings the task as it now is: higher priority, earlier deadline, two warnings."""
    admin = await as_role("admin")
    family, (head,) = await _household(admin, world.grid_codes["GA2"])
    tag = secrets.token_hex(3)
    ingestion = Ingestion(SOURCE, actor=Actor.system("test"), types=await active_types(), news=News())
    worker = await as_role("worker_a")

    first = await ingestion.plan([IncomingWarning(_record(tag, 0), "income_drop", id_number=head)])
    await ingestion.write(first)
    seen = (await worker.get("/api/v1/sync")).json()
    before = next(task for task in seen["tasks"] if task["household"]["id"] == family)
    assert before["priority"] == 3 and before["warnings"] == 1

    second = await ingestion.plan([IncomingWarning(_record(tag, 1), "natural_disaster", id_number=head)])
    await ingestion.write(second)
    delta = (await worker.get(f"/api/v1/sync?cursor={seen['cursor']}")).json()

    changed = {task["household"]["id"]: task for task in delta["tasks"]}
    assert family in changed, "the phone did not hear that the second chunk joined the task"
    after = changed[family]
    assert after["id"] == before["id"]
    assert after["priority"] == 1 and after["warnings"] == 2
    assert datetime.fromisoformat(after["due_at"]) < datetime.fromisoformat(before["due_at"])
