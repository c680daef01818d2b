"""Turning warnings into visit tasks: dedupe, match the household, route to the grid's worker.

One household has at most one open task (a partial unique index says so); a new warning about
a household with an open task joins it, raising its priority and bringing its deadline forward,
instead of sending the worker a second task. Work is done in chunks with set-based queries, so
a department's nightly batch of 100,000 rows takes seconds, not hours.

Nothing is dropped: a bad row is answered as rejected with a reason; an unknown ID number is kept
as an "unmatched" warning for the street's supervisor; a household without a grid or a grid
without a worker still gets its task, waiting in the supervisor's queue.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
import numpy as np
from piccolo.columns import JSON, BigSerial, Column, ForeignKey, Serial, Timestamptz, column_types
from piccolo.columns.defaults.base import Default
from piccolo.table import Table

from backend.accounts.tables import Account, Role
from backend.audit.services import Actor, record
from backend.grids.index_cache import current_layer
from backend.grids.placement import place_points
from backend.grids.tables import GridAssignment
from backend.lib import crypto, pii
from backend.lib.db import EmbeddedSQLiteEngine, as_utc, engine, write_transaction
from backend.notifications.services import PUSH_JOB
from backend.notifications.tables import Notification
from backend.outbox.tables import OutboxMessage
from backend.sync.tables import SyncChange
from backend.tasks.calendar import due_at
from backend.tasks.tables import TaskState, VisitTask
from backend.warnings.tables import Warning, WarningStatus, WarningType
from geo.crs import CrsError, CrsSpec, parse_crs, to_wgs84

# People nudged by one push message (the push job reads their unread counts 200 at a time).
PUSH_ACCOUNTS = 200
# One transaction per chunk; workers get one inbox message per chunk. The API's batches (≤ 1,000)
# are one chunk; a 100,000-row file is ten.
CHUNK = 10_000
MAX_FACTS = 20
# On PostgreSQL, planning loops give the event loop a turn this often: the previous chunk is being
# written on the same loop, and each of its statements waits for a turn to send the next one
# (without turns, writing a chunk took ~1.4 s while planning ran beside it, against ~0.75 s alone).
# SQLite's statements run in the driver's thread and wait for no turn; turns there measured no
# better, within this machine's drift.
_YIELD_EVERY = 500
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# A batch of keys or rows is one JSON text on both engines: SQLite reads it with json_each, and
# PostgreSQL with json_array_elements(_text). Bound as arrays, asyncpg checked
# each element's type in Python (a million ABC checks per 100,000-row file); one text is parsed in C.
_SQLITE_IN = "IN (SELECT value FROM json_each(?))"
_JSON_VALUES = "json_array_elements_text($1::json) AS value"


# Structs, not dataclasses: a file import makes one of each per row, and a msgspec Struct is
# made in C (a tenth of a frozen dataclass's time: ~0.3 s of a 100,000-row import).
class IncomingWarning(msgspec.Struct, frozen=True, gc=False):
    source_record_id: str
    type_code: str
    id_number: str | None = None
    household_id: UUID | None = None
    lon: float | None = None
    lat: float | None = None
    crs: str = "wgs84"
    occurred_on: str | None = None
    facts: dict[str, Any] = {}


class WarningResult(msgspec.Struct):
    source_record_id: str
    status: str  # created | duplicate | rejected
    outcome: str | None = None  # tasked | unmatched | unplaced | no_worker
    warning_id: str | None = None
    task_id: str | None = None
    error_code: str | None = None
    error: str | None = None


class Rejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class _Valid(msgspec.Struct):
    item: IncomingWarning
    type: dict[str, Any]
    id_index: str | None
    lon: float | None
    lat: float | None
    id_number: str | None = None  # canonical, when one was given


class _IdNumbers:
    """ID numbers checked and hashed once per batch: a department's file names the same person again
    and again, and the keyring is read once, not per row (it is read from its file or setting)."""

    def __init__(self) -> None:
        self.ring = crypto.keyring()
        self.seen: dict[str, tuple[str, str] | pii.InvalidIdentifier] = {}

    def learn(self, raws: Iterable[str | None]) -> None:
        """Check and hash the numbers not seen yet, all at once (a chunk's, before its rows are checked)."""
        fresh = list({raw: None for raw in raws if raw and raw not in self.seen})
        if not fresh:
            return
        answers = pii.normalize_id_numbers(fresh)
        valid = [answer for answer in answers if isinstance(answer, str)]
        hashes = iter(crypto.blind_indexes(valid, kind="id_number", ring=self.ring))
        for raw, answer in zip(fresh, answers, strict=True):
            self.seen[raw] = answer if isinstance(answer, pii.InvalidIdentifier) else (answer, next(hashes))

    def index(self, raw: str) -> tuple[str, str]:
        """(canonical number, keyed hash) or ``pii.InvalidIdentifier``."""
        known = self.seen.get(raw)
        if known is None:
            self.learn([raw])
            known = self.seen[raw]
        if isinstance(known, pii.InvalidIdentifier):
            raise known
        return known


async def active_types() -> dict[str, dict[str, Any]]:
    return {row["code"]: row for row in await WarningType.select().where(WarningType.active.eq(True))}


async def ingest(
    source: str, items: list[IncomingWarning], *, actor: Actor, news: News | None = None
) -> list[WarningResult]:
    """``news``: gather who must be told instead of telling them with each chunk; the caller (a
    file import, many chunks) then calls ``news.tell()`` once, so a worker gets one inbox message
    per file instead of one per chunk. Without it, each chunk tells its people in its own transaction."""
    batch = Ingestion(source, actor=actor, news=news, types=await active_types())
    results: list[WarningResult] = []
    for start in range(0, len(items), CHUNK):
        results.extend(await batch.write(await batch.plan(items[start : start + CHUNK])))
    return results


class Ingestion:
    """One source's warnings, chunk by chunk: ``plan`` a chunk (checks, lookups, the rows to write),
    then ``write`` it in one transaction.

    A chunk can be planned while the previous one is being written (the file import does this:
    on PostgreSQL the server writes while Python plans; on SQLite the database works in its own
    thread). Planning reads only committed data, so what this ingestion planned but has not yet
    written is carried from plan to plan: the tasks it opened or joined, the record ids it took.
    Writing checks that the tasks it joins are still open and unchanged since they were read (and
    locks them); if anyone else changed one meanwhile, the chunk is planned again inside the write
    transaction, as a chunk written on its own would be, and plans made from the stale carry are
    redone the same way. So overlap never joins a closed task or opens a second one."""

    def __init__(
        self, source: str, *, actor: Actor, types: dict[str, dict[str, Any]], news: News | None = None
    ) -> None:
        self.source, self.actor, self.types, self.news = source, actor, types, news
        self.tasks: dict[str, dict[str, Any]] = {}  # household -> its open task, as planned so far
        self.records: dict[str, WarningResult] = {}  # record id -> the result of its first warning
        self.generation = 0  # raised when the carry is found stale
        self.numbers = _IdNumbers()  # checked and hashed once per ingestion: a file names people again

    async def plan(self, items: list[IncomingWarning]) -> ChunkPlan:
        """Checks and lookups on committed data and this ingestion's carry; writes nothing."""
        async with engine().transaction():
            return await self._plan(items, carried=True)

    async def write(self, plan: ChunkPlan) -> list[WarningResult]:
        """Write a planned chunk in one transaction; answer its results in its items' order."""
        if plan.generation == self.generation:
            try:
                async with write_transaction():
                    await self._commit(plan)
            except _CONFLICTS:
                # Someone else closed or changed a task this plan joins, opened one it would
                # open, or took one of its record ids: nothing was written. Plan again, inside
                # the write transaction, as a chunk written on its own would be.
                pass
            else:
                return self._answer(plan)
        self.generation += 1  # plans made from the carry so far are stale, and plans begun meanwhile
        self.tasks.clear()
        async with write_transaction():
            plan = await self._plan(plan.items, carried=False)
            await self._commit(plan)
        self._carry(plan)
        self.generation += 1
        return self._answer(plan)

    async def _commit(self, plan: ChunkPlan) -> None:
        await _roomy_cache()
        await plan.write()
        if self.news is None and plan.news:  # told with the chunk, in its transaction
            await plan.news.notify(plan.now)
        if plan.counts:
            await record(
                "warnings.ingest",
                actor=self.actor,
                object_type="warning_batch",
                object_id=self.source,
                detail=plan.counts,
            )

    def _answer(self, plan: ChunkPlan) -> list[WarningResult]:
        if self.news is not None and plan.news:
            self.news.merge(plan.news)
        return plan.answer()

    async def _plan(self, items: list[IncomingWarning], *, carried: bool) -> ChunkPlan:
        plan = ChunkPlan(source=self.source, items=items, generation=self.generation, now=datetime.now(UTC))
        checked_all, rejected = await _validate_in_slices(items, self.types, self.numbers)
        valid: dict[int, _Valid] = {}
        for position, item in enumerate(items):
            record_id = item.source_record_id
            if position in rejected:
                exc = rejected[position]
                plan.results[position] = WarningResult(record_id, "rejected", error_code=exc.code, error=str(exc))
            elif record_id in plan.first_seen or (carried and record_id in self.records):
                plan.results[position] = WarningResult(record_id, "duplicate")
            else:
                plan.first_seen[record_id] = position
                valid[position] = checked_all[position]
        columns = ("id", "source_record_id", "status", "task")
        existing = await _fetch_in(Warning, columns, "source_record_id", plan.first_seen, source=self.source)
        for row in existing:
            position = plan.first_seen[row["source_record_id"]]
            valid.pop(position, None)
            plan.results[position] = WarningResult(
                row["source_record_id"],
                "duplicate",
                outcome=row["status"],
                warning_id=str(row["id"]),
                task_id=str(row["task"]) if row["task"] else None,
            )
        if valid:
            await _route(self.source, valid, plan, self.tasks if carried else {}, lock=not carried)
        if carried:
            self._carry(plan)
        return plan

    def _carry(self, plan: ChunkPlan) -> None:
        for task in [*plan.new_tasks.values(), *plan.joined.values()]:
            self.tasks[task["household"]] = task
        for result in plan.results.values():
            if result.status == "created":
                self.records[result.source_record_id] = result
        # Duplicates of a record an earlier chunk took answer like it (once that chunk is written).
        plan.earlier = self.records


@dataclass
class ChunkPlan:
    """A chunk's results and the rows that make them true, built before its transaction opens."""

    source: str
    items: list[IncomingWarning]
    generation: int
    now: datetime
    results: dict[int, WarningResult] = field(default_factory=dict)
    first_seen: dict[str, int] = field(default_factory=dict)
    new_tasks: dict[str, dict[str, Any]] = field(default_factory=dict)  # household -> task
    joined: dict[str, dict[str, Any]] = field(default_factory=dict)  # task id -> task
    # Joined tasks as read from the database: id -> updated_at (checked, and locked, when writing).
    read_at: dict[str, datetime] = field(default_factory=dict)
    task_rows: list[tuple[Any, ...]] = field(default_factory=list)
    update_rows: list[tuple[Any, ...]] = field(default_factory=list)
    warning_rows: list[tuple[Any, ...]] = field(default_factory=list)
    # The sync changes that send each touched task to its worker's devices, with the task's rows.
    sync_rows: list[tuple[Any, ...]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    news: News | None = None
    earlier: dict[str, WarningResult] = field(default_factory=dict)

    async def write(self) -> None:
        now = self.now
        task_same = {"state": _NEW, "escalation": 0, "return_reason": "", "created_at": now, "updated_at": now}
        await _insert_many(VisitTask, _TASK_COLUMNS, self.task_rows, same=task_same)
        # All joins of the chunk in one statement (one pipelined batch on PostgreSQL).
        # Only where the task is still open and as it was read: otherwise nothing of this is written.
        changed = await _update_many(
            VisitTask,
            ("priority", "type_codes", "warnings", "due_at", "updated_at"),
            self.update_rows,
            guard="updated_at",
        )
        if changed != len(self.update_rows):
            raise _Stale
        warning_same = {"source": self.source, "received_at": now}
        await _insert_many(Warning, _WARNING_COLUMNS, self.warning_rows, same=warning_same)
        sync_same = {"entity": "task", "op": "upsert", "at": now}
        await _insert_many(SyncChange, _SYNC_COLUMNS, self.sync_rows, same=sync_same)

    def answer(self) -> list[WarningResult]:
        # Duplicates answer like their first occurrence, in this chunk or an earlier one.
        for result in self.results.values():
            if result.status == "duplicate" and result.warning_id is None:
                first = self.results.get(self.first_seen.get(result.source_record_id, -1))
                if first is None or first is result:
                    first = self.earlier.get(result.source_record_id)
                if first is not None and first is not result:
                    result.outcome, result.warning_id, result.task_id = first.outcome, first.warning_id, first.task_id
        return [self.results[position] for position in range(len(self.items))]


class _Stale(Exception):
    """A task the plan joins was closed or changed since it was read."""


# A task changed meanwhile, or a row another writer added (an open task for the household, the
# same record id): the plan no longer holds.
_CONFLICTS: tuple[type[Exception], ...] = (_Stale, sqlite3.IntegrityError, asyncpg.exceptions.UniqueViolationError)


def _validate(item: IncomingWarning, types: dict[str, dict[str, Any]]) -> _Valid:
    """One warning's checks, in the order ``_validate_all`` makes them for a chunk."""
    valid, rejected = _validate_all([item], types)
    if rejected:
        raise rejected[0]
    return valid[0]


async def _validate_in_slices(
    items: Sequence[IncomingWarning], types: dict[str, dict[str, Any]], numbers: _IdNumbers
) -> tuple[dict[int, _Valid], dict[int, Rejected]]:
    """``_validate_all`` a slice at a time, giving the event loop a turn between slices."""
    valid: dict[int, _Valid] = {}
    rejected: dict[int, Rejected] = {}
    step = _turn_every()
    for start in range(0, len(items), step):
        if start:
            await asyncio.sleep(0)
        some_valid, some_rejected = _validate_all(items[start : start + step], types, numbers)
        valid.update((start + position, checked) for position, checked in some_valid.items())
        rejected.update((start + position, exc) for position, exc in some_rejected.items())
    return valid, rejected


def _turn_every() -> int:
    return _YIELD_EVERY if engine().engine_type == "postgres" else 1 << 30


def _validate_all(
    items: Sequence[IncomingWarning], types: dict[str, dict[str, Any]], numbers: _IdNumbers | None = None
) -> tuple[dict[int, _Valid], dict[int, Rejected]]:
    """Every item checked; the first failing check names the reason. Coordinates are converted per
    coordinate system in one vectorised call (one call per row was most of the time for points)."""
    valid: dict[int, _Valid] = {}
    rejected: dict[int, Rejected] = {}
    by_crs: dict[CrsSpec, list[int]] = defaultdict(list)
    numbers = numbers or _IdNumbers()
    numbers.learn(item.id_number for item in items)
    for position, item in enumerate(items):
        try:
            valid[position], crs = _check_fields(item, types, numbers)
        except Rejected as exc:
            rejected[position] = exc
            continue
        if crs is not None:
            by_crs[crs].append(position)
    for crs, positions in by_crs.items():
        xs = np.array([items[p].lon for p in positions], dtype=float)
        ys = np.array([items[p].lat for p in positions], dtype=float)
        try:
            lons, lats = to_wgs84(xs, ys, crs)
        except CrsError as exc:
            for position in positions:
                del valid[position]
                rejected[position] = Rejected("warning.crs", str(exc))
            continue
        for position, lon, lat in zip(positions, lons.tolist(), lats.tolist(), strict=True):
            valid[position].lon, valid[position].lat = lon, lat
    for position in sorted(valid):
        try:
            _check_after_point(valid[position])
        except Rejected as exc:
            del valid[position]
            rejected[position] = exc
    return valid, rejected


def _check_fields(
    item: IncomingWarning, types: dict[str, dict[str, Any]], numbers: _IdNumbers
) -> tuple[_Valid, CrsSpec | None]:
    if not item.source_record_id or len(item.source_record_id) > 128:
        raise Rejected("warning.record_id", "source_record_id must be 1–128 characters")
    kind = types.get(item.type_code)
    if kind is None:
        raise Rejected("warning.type_unknown", f"unknown or inactive warning type '{item.type_code[:48]}'")
    id_index = canonical = None
    if item.id_number:
        try:
            canonical, id_index = numbers.index(item.id_number)
        except pii.InvalidIdentifier as exc:
            raise Rejected(exc.code, str(exc)) from exc
    elif item.household_id is None:
        raise Rejected("warning.who", "give the person's ID number or the household id")
    crs = None
    if (item.lon is None) != (item.lat is None):
        raise Rejected("warning.point", "give both lon and lat, or neither")
    if item.lon is not None and item.lat is not None:
        if not (math.isfinite(item.lon) and math.isfinite(item.lat)):
            raise Rejected("warning.point", "coordinates must be numbers")
        try:
            crs = parse_crs(item.crs)
        except CrsError as exc:
            raise Rejected("warning.crs", str(exc)) from exc
    return _Valid(item, kind, id_index, None, None, canonical), crs


def _check_after_point(checked: _Valid) -> None:
    item = checked.item
    lon, lat = checked.lon, checked.lat
    if lon is not None and lat is not None and not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise Rejected("warning.point", "coordinates are out of range for the given crs")
    if item.occurred_on and not _DATE.match(item.occurred_on):
        raise Rejected("warning.date", "occurred_on must be YYYY-MM-DD")
    if item.facts and not _plain_facts(item.facts):
        raise Rejected("warning.facts", f"facts: at most {MAX_FACTS} plain values of ≤ 200 characters")


def _plain_facts(facts: dict[str, Any]) -> bool:
    if len(facts) > MAX_FACTS:
        return False
    for value in facts.values():
        if type(value) is str:  # the usual case (every file cell): no isinstance chain
            if len(value) > 200:
                return False
        elif not isinstance(value, int | float | bool):
            return False
    return True


async def _route(
    source: str,
    valid: dict[int, _Valid],
    plan: ChunkPlan,
    carried: dict[str, dict[str, Any]],
    *,
    lock: bool,
) -> None:
    """Match, place and assign each valid warning; fill ``plan`` with its results and rows.
    ``carried``: open tasks this ingestion planned in earlier chunks (newer than the database's);
    ``lock``: lock the open tasks read (planning inside the write transaction).

    Ids are handled as text throughout (households, tasks, workers, the new rows' ids): both
    drivers take text for a UUID column, and text hashes and compares at C speed."""
    now = plan.now
    households, info = await _match_households(valid)
    places = await _place(valid, households, info)
    open_tasks: dict[str, dict[str, Any]] = {}
    found_tasks = await _fetch_in(VisitTask, _TASK_FIELDS, "household", info, open_only=True, lock=lock)
    for found in map(_open_task, found_tasks):
        if found["household"] not in carried:
            open_tasks[found["household"]] = found
            plan.read_at[found["id"]] = found["updated_at"]
    for known in info:
        if known in carried:
            open_tasks[known] = dict(carried[known])
            plan.read_at[open_tasks[known]["id"]] = carried[known]["updated_at"]

    new_tasks, joined, results = plan.new_tasks, plan.joined, plan.results
    warning_rows = plan.warning_rows
    counts: dict[str, int] = defaultdict(int)
    deadlines: dict[tuple[int, str], datetime] = {}
    ring = crypto.keyring()
    ids = iter(_ids(2 * len(valid)))  # a warning's id, and a new task's
    nowhere = _Home(None, None, None)

    turn = _turn_every()
    for done, (position, checked) in enumerate(valid.items(), start=1):
        if done % turn == 0:
            await asyncio.sleep(0)  # let the chunk being written send its next statement
        item, kind = checked.item, checked.type
        household = households.get(position)
        warning_id = next(ids)
        place = places.get(position, nowhere)
        grid_code, street = place.grid_code, place.street
        task_id = None
        if household is None:
            status = _UNMATCHED
        else:
            rule = (kind["deadline_amount"], kind["deadline_unit"])
            deadline = deadlines.get(rule)
            if deadline is None:  # the same for every warning of the chunk: computed once
                # In UTC, as the database hands due dates back: compared without time-zone lookups.
                deadline = deadlines[rule] = due_at(now, *rule).astimezone(UTC)
            task = open_tasks.get(household) or new_tasks.get(household)
            if task is None:
                task = {
                    "id": next(ids),
                    "household": household,
                    "grid_code": grid_code,
                    "street": street,
                    "assignee": place.owner,
                    "state": _NEW,
                    "priority": kind["priority"],
                    "type_codes": [item.type_code],
                    "warnings": 1,
                    "due_at": deadline,
                    "new": True,  # opened by this chunk: joins to it are in its row (dropped below)
                }
                new_tasks[household] = task
            else:
                # No event: the warning's row, naming its task, is the record (see tasks/history.py).
                _join(task, kind, item.type_code, deadline)
                if "new" not in task:
                    joined[task["id"]] = task
            task_id = task["id"]
            status = _TASKED if task["assignee"] else _UNPLACED if not task["grid_code"] else _NO_WORKER
        counts[status] += 1
        # Sealed only while unmatched, so only unmatched ones pay for the encryption.
        sealed = (
            crypto.seal(checked.id_number, field="id_number", ring=ring)
            if household is None and checked.id_number
            else None
        )
        warning_rows.append(
            (
                warning_id,
                item.source_record_id,
                item.type_code,
                checked.id_index,
                sealed,
                checked.lon,
                checked.lat,
                None if task_id else street,  # a tasked warning's street is its task's
                status,
                task_id,
                item.occurred_on or "",
                _json(item.facts) if item.facts else "{}",
            )
        )
        results[position] = WarningResult(
            item.source_record_id, "created", outcome=status, warning_id=warning_id, task_id=task_id
        )

    # Every row, made now: the next chunk's plan may change these task dicts before this is written.
    for task in new_tasks.values():
        del task["new"]
        task["updated_at"] = now
        plan.task_rows.append(
            (
                task["id"],
                task["household"],
                task["grid_code"],
                task["street"],
                task["assignee"],
                task["priority"],
                _json(task["type_codes"]),
                task["warnings"],
                task["due_at"],
            )
        )
    for task in joined.values():
        # The last value guards the update: the task as it was read.
        read_at = plan.read_at[task["id"]]
        plan.update_rows.append(
            (task["id"], task["priority"], _json(task["type_codes"]), task["warnings"], task["due_at"], now, read_at)
        )
        task["updated_at"] = now
    # Written with the tasks, in their transaction: a device that hears of a task finds it as
    # written. Once per task and chunk: a device that fetched the task after an earlier chunk
    # must hear that a later one raised its priority or brought its deadline forward.
    plan.sync_rows = [
        (task["assignee"], task["id"]) for task in [*new_tasks.values(), *joined.values()] if task["assignee"]
    ]
    plan.news = News()
    plan.news.gather(new_tasks, joined, valid, households, places)
    counts["tasks_created"] = len(new_tasks)
    counts["tasks_joined"] = len(joined)
    plan.counts = dict(counts)


_NEW = TaskState.new.value
_SYNC_COLUMNS = ("account", "entity_id")
_TASKED, _UNMATCHED = WarningStatus.tasked.value, WarningStatus.unmatched.value
_UNPLACED, _NO_WORKER = WarningStatus.unplaced.value, WarningStatus.no_worker.value
_TASK_FIELDS = (
    "id",
    "household",
    "grid_code",
    "street",
    "assignee",
    "priority",
    "type_codes",
    "warnings",
    "due_at",
    "updated_at",
)
_WARNING_COLUMNS = (
    "id",
    "source_record_id",
    "type_code",
    "id_number_index",
    "id_number_sealed",
    "lon",
    "lat",
    "street",
    "status",
    "task",
    "occurred_on",
    "facts",
)


def _open_task(row: Any) -> dict[str, Any]:
    task = dict(row)
    for name in ("id", "household", "assignee"):
        if task[name] is not None:
            task[name] = str(task[name])
    task["due_at"], task["updated_at"] = _time(task["due_at"]), _time(task["updated_at"])
    return task


def _time(value: datetime | str) -> datetime:
    """A stored time as an aware datetime: SQLite's text (read raw, see ``_sqlite_raw``) or PostgreSQL's."""
    return as_utc(datetime.fromisoformat(value) if isinstance(value, str) else value)


def _join(task: dict[str, Any], kind: dict[str, Any], type_code: str, deadline: datetime) -> None:
    if kind["priority"] < task["priority"]:
        task["priority"] = kind["priority"]
    types = task["type_codes"]
    if not isinstance(types, list):
        types = task["type_codes"] = _decode(types)
    if type_code not in types:
        task["type_codes"] = sorted([*types, type_code])
    task["warnings"] += 1
    if deadline < task["due_at"]:
        task["due_at"] = deadline


def _decode(value: Any) -> list[str]:
    return list(msgspec.json.decode(value)) if isinstance(value, str | bytes) else list(value or [])


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


class _Home(msgspec.Struct, frozen=True, gc=False):
    """Where a matched household lives, and who owns that grid now (one per household a chunk
    matches: a Struct, like the per-row records above)."""

    grid_code: str | None
    street: int | None
    owner: str | None


async def _match_households(valid: dict[int, _Valid]) -> tuple[dict[int, str], dict[str, _Home]]:
    """Each warning's household (by household id, else by the keyed hash of the ID number), and
    where each matched household lives with its grid's current worker: read together, one query
    per way of naming."""
    indexes = {checked.id_index for checked in valid.values() if checked.id_index}
    homes: dict[str, _Home] = {}
    by_index: dict[str, str] = {}
    for row in await _fetch_homes("member", indexes):
        by_index[row[0]] = row[1]
        homes[row[1]] = _Home(row[2], row[3], row[4])
    given = {str(checked.item.household_id) for checked in valid.values() if checked.item.household_id}
    known: set[str] = set()
    for row in await _fetch_homes("household", given):
        known.add(row[1])
        homes[row[1]] = _Home(row[2], row[3], row[4])
    matched: dict[int, str] = {}
    for position, checked in valid.items():
        household_id = checked.item.household_id
        if household_id is not None and str(household_id) in known:
            matched[position] = str(household_id)
        elif checked.id_index in by_index:
            matched[position] = by_index[checked.id_index]
    return matched, {household: homes[household] for household in set(matched.values())}


async def _fetch_homes(key: str, values: set[str]) -> list[Any]:
    """(key, household, grid code, street, the grid's current worker) for households with a member
    whose ID-number hash is one of ``values`` (``key="member"``) or whose id is (``key="household"``).
    Ids come back as text: no UUID object per row."""
    if not values:
        return []
    kind, connection = _connection()
    if kind == "postgres":
        return list(await connection.fetch(_HOMES_PG[key], _json(list(values))))
    async with connection.execute(_HOMES[key], (_json(list(values)),)) as cursor:
        cursor.row_factory = None  # plain tuples
        return list(await cursor.fetchall())


_HOME_COLUMNS = "CAST(h.id AS TEXT), h.grid_code, h.street, CAST(a.worker AS TEXT)"
_OWNER = "LEFT JOIN grid_assignment a ON a.grid_code = h.grid_code AND a.ended_at IS NULL"
_HOMES = {
    "member": f"SELECT m.id_number_index, {_HOME_COLUMNS} FROM household_member m "  # noqa: S608 — constants
    f"JOIN household h ON h.id = m.household {_OWNER} WHERE m.id_number_index IN (SELECT value FROM json_each(?))",
    "household": f"SELECT CAST(h.id AS TEXT), {_HOME_COLUMNS} FROM household h "  # noqa: S608 — constants
    f"{_OWNER} WHERE h.id IN (SELECT value FROM json_each(?))",
}
_HOMES_PG = {  # the same, reading the keys with PostgreSQL's JSON functions
    "member": _HOMES["member"].replace(_SQLITE_IN, f"IN (SELECT value FROM {_JSON_VALUES})"),  # noqa: S608
    "household": _HOMES["household"].replace(
        _SQLITE_IN,
        f"IN (SELECT CAST(value AS UUID) FROM {_JSON_VALUES})",  # noqa: S608 — constants
    ),
}


async def _place(valid: dict[int, _Valid], households: dict[int, str], homes: dict[str, _Home]) -> dict[int, _Home]:
    """Each warning's place (grid, street, the grid's worker): the household's home, else the
    warning's point."""
    places: dict[int, _Home] = {}
    need_point: list[int] = []
    for position, checked in valid.items():
        household = households.get(position)
        home = homes.get(household) if household else None
        if home and home.grid_code:
            places[position] = home
        elif checked.lon is not None:
            need_point.append(position)
        else:
            places[position] = _Home(None, home.street if home else None, None)
    layer = await current_layer() if need_point else None
    if need_point and layer is not None:
        lons = np.array([valid[p].lon for p in need_point], dtype=float)
        lats = np.array([valid[p].lat for p in need_point], dtype=float)
        located = dict(zip(need_point, place_points(layer, lons, lats), strict=True))
        # Only a matched household's task needs the grid's worker; unmatched warnings need the street.
        owners = await _owners({p.grid_code for n, p in located.items() if n in households and p.grid_code})
        for position, place in located.items():
            places[position] = _Home(place.grid_code, place.street_id, owners.get(place.grid_code or ""))
    return places


async def _owners(grid_codes: set[str]) -> dict[str, str]:
    rows = await _fetch_in(GridAssignment, ("grid_code", "worker"), "grid_code", grid_codes, current_only=True)
    return {row["grid_code"]: str(row["worker"]) for row in rows}


_TASK_COLUMNS = ("id", "household", "grid_code", "street", "assignee", "priority", "type_codes", "warnings", "due_at")


@dataclass
class News:
    """Who must hear about ingested warnings, gathered over one or more chunks: the devices that
    must fetch a task again (sync changes), and the people to tell.

    One inbox message per worker ("3 new visit tasks, 2 tasks with new warnings"), one per street's
    supervisors for tasks nobody owns and for unmatched warnings; not one per task."""

    new: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # worker -> new tasks
    raised: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # worker -> joined tasks
    waiting_by_street: dict[int | None, int] = field(default_factory=lambda: defaultdict(int))
    unmatched_by_street: dict[int | None, int] = field(default_factory=lambda: defaultdict(int))

    def gather(
        self,
        new_tasks: dict[str, dict[str, Any]],
        joined: dict[str, dict[str, Any]],
        valid: dict[int, _Valid],
        households: dict[int, str],
        placements: dict[int, _Home],
    ) -> None:
        for task in new_tasks.values():  # keyed by household
            if task["assignee"]:
                self.new[task["assignee"]].add(task["id"])
            else:
                self.waiting_by_street[task["street"]] += 1
        for task_id, task in joined.items():
            if task.get("assignee"):
                self.raised[task["assignee"]].add(task_id)
        for position in valid:
            if position not in households:
                place = placements.get(position)
                self.unmatched_by_street[place.street if place else None] += 1

    def merge(self, other: News) -> None:
        for worker, tasks in other.new.items():
            self.new[worker] |= tasks
        for worker, tasks in other.raised.items():
            self.raised[worker] |= tasks
        for street, count in other.waiting_by_street.items():
            self.waiting_by_street[street] += count
        for street, count in other.unmatched_by_street.items():
            self.unmatched_by_street[street] += count

    def __bool__(self) -> bool:
        return bool(self.new or self.raised or self.waiting_by_street or self.unmatched_by_street)

    async def tell(self) -> None:
        """Write the gathered news in its own transaction, and start gathering afresh."""
        if self:
            async with write_transaction():
                await self.notify(datetime.now(UTC))

    async def notify(self, now: datetime) -> None:
        """Write the inbox messages, their sync changes and push nudges in the current transaction."""
        notes: list[_Note] = []
        # The tasks themselves reached the devices with their chunks (ChunkPlan.sync_rows).
        for worker in set(self.new) | set(self.raised):
            new_ids = self.new.get(worker, set())
            new, raised = len(new_ids), len(self.raised.get(worker, set()) - new_ids)
            notes.append(
                _Note(
                    [worker],
                    "task.new" if new else "task.raised",
                    f"您有 {new} 个新的走访任务" + (f"，{raised} 个任务有新预警" if raised else ""),
                    f"{new} new visit tasks" + (f", {raised} tasks with new warnings" if raised else ""),
                    {"new": new, "raised": raised},
                )
            )
        supervisors = await _supervisors(set(self.waiting_by_street) | set(self.unmatched_by_street))
        for street, count in self.waiting_by_street.items():
            notes.append(
                _Note(
                    supervisors.get(street, []),
                    "task.unassigned",
                    f"{count} 个走访任务无人负责，请指派",
                    f"{count} visit tasks have no worker; please assign them",
                    {"tasks": count},
                )
            )
        # Unmatched warnings go to the street their point lies in; without a point, to the admins.
        for street, count in self.unmatched_by_street.items():
            notes.append(
                _Note(
                    supervisors.get(street, []),
                    "warning.unmatched",
                    f"{count} 条预警未匹配到户，请核实",
                    f"{count} warnings matched no household; please check them",
                    {"warnings": count},
                )
            )
        await _notify_all(notes, now)
        self.new, self.raised = defaultdict(set), defaultdict(set)
        self.waiting_by_street, self.unmatched_by_street = defaultdict(int), defaultdict(int)


async def _supervisors(streets: set[int | None]) -> dict[int | None, list[str]]:
    """The active supervisors of each street; ``None`` (no street known) means the admins."""
    people: dict[int | None, list[str]] = defaultdict(list)
    named = sorted(street for street in streets if street is not None)
    if named:
        for row in await Account.select(Account.id, Account.street).where(
            Account.role == Role.supervisor, Account.street.is_in(named), Account.is_active.eq(True)
        ):
            people[row["street"]].append(str(row["id"]))
    if None in streets:
        people[None] = [
            str(row["id"])
            for row in await Account.select(Account.id).where(Account.role == Role.admin, Account.is_active.eq(True))
        ]
    return people


@dataclass(frozen=True)
class _Note:
    accounts: list[str]
    kind: str
    title_zh: str
    title_en: str
    detail: dict[str, Any]


async def _notify_all(notes: list[_Note], now: datetime) -> None:
    """What ``notify`` writes for each note (an inbox row per person, their sync change, a push
    nudge), for all of a chunk's notes in three statements instead of three per note.

    The push is content-free ("open the app": each device gets its own unread count), so one push
    message nudges up to ``PUSH_ACCOUNTS`` people of a kind, not one message per person: a nightly
    file reaches thousands of workers at once."""
    inbox: list[tuple[Any, ...]] = []
    changes: list[tuple[Any, ...]] = []
    nudge: dict[str, dict[str, None]] = defaultdict(dict)  # kind -> accounts, in order, once each
    people = [list(dict.fromkeys(note.accounts)) for note in notes]
    ids = iter(_ids(sum(len(accounts) for accounts in people)))
    for note, accounts in zip(notes, people, strict=True):
        if not accounts:
            continue
        detail = _json(note.detail)
        for account in accounts:
            notification_id = next(ids)
            inbox.append((notification_id, account, note.kind, note.title_zh, note.title_en, detail, now))
            changes.append((account, notification_id))
            nudge[note.kind][account] = None
    pushes = [
        (PUSH_JOB, _json({"account_ids": group[start : start + PUSH_ACCOUNTS], "kind": kind}), now, 0, "")
        for kind, accounts in nudge.items()
        for group in [list(accounts)]
        for start in range(0, len(group), PUSH_ACCOUNTS)
    ]
    await _insert_many(Notification, ("id", "account", "kind", "title_zh", "title_en", "detail", "created_at"), inbox)
    await _insert_many(SyncChange, _SYNC_COLUMNS, changes, same={"entity": "notification", "op": "upsert", "at": now})
    await _insert_many(OutboxMessage, ("kind", "payload", "created_at", "attempts", "last_error"), pushes)


# ---------------------------------------------------------------------------------------------
# Bulk writes in the current transaction. Piccolo builds a Table object and a query string per
# row, and on SQLite sends an extra PRAGMA per statement; for tens of thousands of rows that was
# most of the ingest. These send the same rows with the driver's own batch calls.


# A chunk's writes touch far more pages than SQLite's default 2 MB cache holds; spilling them and
# reading them back was a third of the time. The setting lasts for this transaction only.
_SQLITE_CACHE_KIB = 128 * 1024


async def _roomy_cache() -> None:
    db = engine()
    if isinstance(db, EmbeddedSQLiteEngine):
        await db.widen_cache(_connection()[1], _SQLITE_CACHE_KIB)


def _connection() -> tuple[str, Any]:
    db = engine()
    transaction = db.current_transaction.get()
    if transaction is None:
        raise RuntimeError("bulk writes must run inside write_transaction()")
    return db.engine_type, transaction.connection


async def _insert_many(
    table: type[Table],
    columns: Sequence[str],
    rows: list[tuple[Any, ...]],
    *,
    same: Mapping[str, Any] | None = None,
) -> None:
    """``rows`` give ``columns``; ``same`` gives columns with one value for every row; every other
    column gets its Piccolo default, as ``Table(...)`` would."""
    if not rows:
        return
    kind, connection = _connection()
    given = {**(same or {})}
    makers: list[Callable[[], Any]] = []
    unset: list[str] = []
    for column in table._meta.columns:
        db_name = column._meta.db_column_name
        if db_name in columns or db_name in given or isinstance(column, Serial | BigSerial):
            continue
        maker = _default_maker(column)
        if isinstance(maker, _Constant):  # the usual case: the same for every row
            given[db_name] = maker.value
        else:
            unset.append(db_name)
            makers.append(maker)
    if makers:  # a fresh value per row (a random UUID, now)
        columns = [*columns, *unset]
        rows = [(*row, *(make() for make in makers)) for row in rows]
    if kind == "postgres":
        extra = tuple(given.values())
        await connection.copy_records_to_table(
            table._meta.tablename, records=[row + extra for row in rows] if extra else rows, columns=[*columns, *given]
        )
        return
    # On SQLite the values common to all rows are bound once: each value taken out of a row's JSON
    # costs more the wider the row (SQLite 3.40 parses the row again for each one, ~1.2 µs).
    # Rows are sent in groups by which of their values are empty, and a column that holds one
    # value throughout its group is bound once too: most warnings have no point, no street and
    # no sealed number, so four of their twelve columns need no extracting.
    for group in _by_shape(rows):
        cells = list(zip(*group, strict=True))  # column by column
        varying = [n for n, values in enumerate(cells) if not _all_same(values)]
        constant = {columns[n]: values[0] for n, values in enumerate(cells) if n not in varying}
        await _insert_sqlite(
            connection,
            table,
            [columns[n] for n in varying],
            list(zip(*(cells[n] for n in varying), strict=True)) if varying else [()] * len(group),
            {**given, **constant},
        )


def _all_same(values: Sequence[Any]) -> bool:
    first, kind = values[0], type(values[0])
    return all(type(value) is kind and value == first for value in values)


def _by_shape(rows: list[tuple[Any, ...]]) -> list[list[tuple[Any, ...]]]:
    """``rows`` grouped by which of their values are None, each group in the rows' order."""
    groups: dict[tuple[bool, ...], list[tuple[Any, ...]]] = {}
    for row in rows:
        groups.setdefault(tuple(value is None for value in row), []).append(row)
    return list(groups.values())


async def _insert_sqlite(
    connection: Any, table: type[Table], columns: Sequence[str], rows: list[tuple[Any, ...]], given: Mapping[str, Any]
) -> None:
    """One INSERT of ``rows`` (their ``columns`` taken out of one JSON text), with ``given``'s
    values bound once for every row."""
    name = table._meta.tablename
    names = ", ".join(f'"{column}"' for column in [*columns, *given])
    stamped = set(_timestamp_positions(table, list(given)))
    memo: dict[datetime, str] = {}
    bound = [_stamp(value, memo) if n in stamped else _sqlite_value(value) for n, value in enumerate(given.values())]
    values = ", ".join([*([_json_columns(len(columns))] if columns else []), *("?" * len(bound))])
    await connection.execute(
        f'INSERT INTO "{name}" ({names}) SELECT {values} FROM json_each(?{len(bound) + 1})',  # noqa: S608
        (*bound, _json_rows(rows, _timestamp_positions(table, columns))),
    )


def _sqlite_value(value: Any) -> Any:
    return str(value) if isinstance(value, UUID) else value


# On SQLite, a chunk's rows go in as one JSON text and one statement, not one binding per row:
# the driver holds the interpreter lock while it binds a row (and adapts each UUID and timestamp
# in Python), so row-by-row writing kept the planning of the next chunk waiting. One statement
# runs inside SQLite, beside the planning.


def _json_columns(count: int, alias: Sequence[str] = ()) -> str:
    return ", ".join(f"json_extract(value, '$[{n}]')" + (f' AS "{alias[n]}"' if alias else "") for n in range(count))


def _json_rows(rows: Sequence[tuple[Any, ...]], stamped: Sequence[int]) -> str:
    """The rows as a JSON array of arrays, each value as Piccolo would store it on SQLite: ids
    as text, and the ``stamped`` positions' timestamps as UTC text in Python's ``str`` format
    (what Piccolo's adapter writes, so comparisons with stored values hold)."""
    if stamped and rows:
        cells = list(zip(*rows, strict=True))
        memo: dict[datetime, str] = {}
        for n in stamped:
            cells[n] = tuple(_stamp(value, memo) for value in cells[n])
        rows = list(zip(*cells, strict=True))
    return msgspec.json.encode(rows, enc_hook=str).decode()


def _timestamp_positions(table: type[Table], columns: Sequence[str]) -> list[int]:
    return [n for n, column in enumerate(columns) if isinstance(table._meta.get_column_by_name(column), Timestamptz)]


def _stamp(value: datetime | None, memo: dict[datetime, str]) -> str | None:
    if value is None:
        return None
    text = memo.get(value)
    if text is None:
        text = memo[value] = str(value.astimezone(UTC) if value.tzinfo else value)
    return text


class _Constant:
    """A default that is the same for every row."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self) -> Any:
        return self.value


def _default_maker(column: Column) -> Callable[[], Any]:
    """What ``Table(...)`` would put in an unset column: a fresh value per row (a random UUID, now),
    or the same constant for every row."""
    declared = getattr(column, "default", None)
    if isinstance(declared, Default):
        return declared.python  # type: ignore[no-any-return]
    if callable(declared):
        return lambda: _plain(column.get_default_value())
    return _Constant(_plain(column.get_default_value()))


def _plain(value: Any) -> Any:
    if isinstance(value, Default):
        value = value.python()
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, dict | list):
        value = _json(value)
    return value


async def _fetch_in(
    table: type[Table],
    columns: Sequence[str],
    key: str,
    values: Iterable[Any],
    *,
    source: str | None = None,
    open_only: bool = False,
    current_only: bool = False,
    lock: bool = False,
) -> list[Any]:
    """Rows whose ``key`` is one of ``values``, given as one JSON text instead of one parameter each.

    ``source``: and of this source; ``open_only``: and not closed; ``current_only``: and not ended;
    ``lock``: lock the rows until the transaction ends (PostgreSQL; SQLite's write transaction
    already holds the whole database).
    Rows are read by column name (asyncpg records, sqlite3 rows). On SQLite, ids, JSON and times
    come back as the text stored (see ``_sqlite_raw``).
    """
    wanted = list(values)
    if not wanted:
        return []
    kind, connection = _connection()
    postgres = kind == "postgres"
    names = ", ".join(f'"{column}"' if postgres else _sqlite_raw(table, column) for column in columns)
    match = f"IN (SELECT CAST(value AS {_pg_type(table, key)}) FROM {_JSON_VALUES})" if postgres else _SQLITE_IN  # noqa: S608
    sql = f'SELECT {names} FROM "{table._meta.tablename}" WHERE "{key}" {match}'  # noqa: S608
    params: list[Any] = [_json([str(v) if isinstance(v, UUID) else v for v in wanted])]
    if source is not None:
        sql += ' AND "source" = ' + ("$2" if postgres else "?")
        params.append(source)
    if open_only:
        sql += f" AND \"state\" <> '{TaskState.closed.value}'"
    if current_only:
        sql += ' AND "ended_at" IS NULL'
    if lock and postgres:
        sql += " FOR UPDATE"
    if postgres:
        return list(await connection.fetch(sql, *params))
    async with connection.execute(sql, params) as cursor:
        cursor.row_factory = sqlite3.Row  # the cursor's, not the connection's: a pooled one is shared
        return list(await cursor.fetchall())


def _sqlite_raw(table: type[Table], column: str) -> str:
    """The column as SQLite stores it: ids, JSON and times as their text. Selected by name, each
    would go through the Python converter Piccolo registers for its declared type, one call per
    value while holding the interpreter lock (about half the time of reading a chunk's open tasks)."""
    if isinstance(table._meta.get_column_by_name(column), column_types.UUID | ForeignKey | JSON | Timestamptz):
        return f'CAST("{column}" AS TEXT) AS "{column}"'
    return f'"{column}"'


def _pg_type(table: type[Table], column: str) -> str:
    """``column``'s PostgreSQL type without its length, to cast JSON values to."""
    return str(table._meta.get_column_by_name(column).column_type).upper().split("(")[0].strip()


def _ids(count: int) -> list[str]:
    """``count`` version-7 UUIDs (RFC 9562) as text, each greater than the one before: the time in
    milliseconds, a 42-bit counter from a random start (the RFC's method 1: ``rand_a`` and the top
    of ``rand_b``), then 32 random bits.

    Made in order, they sort in order: the first warning a chunk files for a new task is the one
    that opened it (``tasks/history.py`` reads it so), and new rows land at the right-hand edge of
    their primary-key index instead of on random pages. Made as one array and one text (per-id
    integer formatting was most of a chunk's id-making; ``uuid4()`` then ``str()`` a tenth of a
    large batch's time)."""
    if count <= 0:
        return []
    counter = int.from_bytes(os.urandom(6)) >> 7  # 41 bits: room for 2**41 more before 42 overflow
    steps = np.arange(counter, counter + count, dtype=np.uint64)
    value = np.empty((count, 2), dtype=">u8")  # each id's two big-endian 64-bit halves
    millis = np.uint64(time.time_ns() // 1_000_000)
    value[:, 0] = (millis << np.uint64(16)) | np.uint64(7 << 12) | (steps >> np.uint64(30))
    low = np.frombuffer(os.urandom(4 * count), dtype=">u4").astype(np.uint64)
    value[:, 1] = (np.uint64(0b10 << 62)) | ((steps & np.uint64(0x3FFFFFFF)) << np.uint64(32)) | low
    # Hex digits, with the four dashes put in as columns: one text of count × 36 characters.
    nibbles = np.empty((count, 32), dtype=np.uint8)
    raw = value.view(np.uint8).reshape(count, 16)
    nibbles[:, 0::2], nibbles[:, 1::2] = raw >> 4, raw & 0x0F
    text = np.full((count, 36), ord("-"), dtype=np.uint8)
    digits = _HEX[nibbles]
    for start, end, at in _UUID_GROUPS:
        text[:, at : at + end - start] = digits[:, start:end]
    whole = text.tobytes().decode("ascii")
    return [whole[n : n + 36] for n in range(0, 36 * count, 36)]


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# (first hex digit, last + 1, position in the text) of each dash-separated group: 8-4-4-4-12.
_UUID_GROUPS = ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24))


async def _update_many(
    table: type[Table], columns: Sequence[str], rows: list[tuple[Any, ...]], *, guard: str | None = None
) -> int:
    """``rows`` are ``(id, *values)``; each row sets ``columns`` on the row with that id. With
    ``guard``, each row ends with one more value: the row is changed only if its ``guard`` column
    still holds it and it is not closed. Answers how many rows changed."""
    if not rows:
        return 0
    kind, connection = _connection()
    name = table._meta.tablename
    if kind == "postgres":
        # One statement for all rows, given as one JSON array of arrays (see _JSON_VALUES).
        names = ["id", *columns, *(["expected"] if guard else [])]
        types = ["UUID", *(_pg_type(table, column) for column in columns)]
        if guard:
            types.append(_pg_type(table, guard))
        # JSON columns arrive as JSON text inside the JSON: read as text, then cast.
        fields = ", ".join(
            f'(r ->> {n})::{"TEXT" if type_ == "JSON" else type_} AS "{names[n]}"' for n, type_ in enumerate(types)
        )
        sets = ", ".join(
            f'"{column}" = u."{column}"' + ("::JSON" if type_ == "JSON" else "")
            for column, type_ in zip(columns, types[1:], strict=False)
        )
        where = 't."id" = u."id"'
        if guard:
            where += f' AND t."{guard}" = u."expected" AND t."state" <> \'{TaskState.closed.value}\''
        status = await connection.execute(
            f'UPDATE "{name}" AS t SET {sets} FROM (SELECT {fields} FROM json_array_elements($1::json) AS r) AS u '  # noqa: S608
            f"WHERE {where}",
            _json_rows(rows, ()),
        )
        return int(status.split()[-1])
    # One statement over the rows as JSON (see _json_rows), as the PostgreSQL branch does with arrays.
    given = ["id", *columns, *([guard] if guard else [])]  # the columns each row's values are for
    alias = ["id", *columns, *(["expected"] if guard else [])]
    sets = ", ".join(f'"{column}" = u."{column}"' for column in columns)
    where = f'"{name}"."id" = u."id"'
    if guard:
        where += f' AND "{name}"."{guard}" = u."expected" AND "{name}"."state" <> \'{TaskState.closed.value}\''
    cursor = await connection.execute(
        f'UPDATE "{name}" SET {sets} FROM (SELECT {_json_columns(len(alias), alias)} FROM json_each(?)) AS u '  # noqa: S608
        f"WHERE {where}",
        (_json_rows(rows, _timestamp_positions(table, given)),),
    )
    return int(cursor.rowcount)
