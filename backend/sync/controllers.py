"""Delta sync for phones: what changed for this account since the device's cursor.

Every phone calls this on each start and every few minutes, 13,000 of them in the morning rush, so
the common answers take few round trips: a worker's full snapshot is five queries (the caller; the
inbox with the head; tasks with their households; their members; the map), and "nothing changed" is two (the
caller; the changes with the head).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Annotated, Any
from uuid import UUID

import msgspec
import shapely
from litestar import Controller, Request, get
from litestar.params import Parameter

from backend.accounts.guards import ALL_ROLES, roles
from backend.accounts.principal import Principal
from backend.accounts.tables import Role
from backend.grids.controllers import grids_of
from backend.grids.schemas import GridCollection, GridFeatureOut, GridProperties
from backend.households.schemas import MemberBrief
from backend.households.tables import Relation
from backend.lib import pii
from backend.lib.db import is_sqlite
from backend.notifications.schemas import NotificationOut, notification_out
from backend.notifications.tables import Notification
from backend.sync.services import Reader, reader
from backend.tasks.queries import OPEN_TASKS_WITH_HOUSEHOLDS_SQL, TASK_COLUMNS, joined_tasks_out, tasks_out
from backend.tasks.schemas import TaskHousehold, TaskOut
from backend.tasks.tables import VisitTask

PAGE = 1000  # also in _CHANGES_SQL


class SyncHousehold(TaskHousehold):
    # Who lives there, masked (no ID number, no phone): on an application made offline the worker
    # names the member who consented by id.
    members: list[MemberBrief] = msgspec.field(default_factory=list)


class SyncTask(TaskOut):
    household: SyncHousehold


class SyncOut(msgspec.Struct):
    cursor: int
    full: bool
    more: bool
    tasks: list[SyncTask]
    removed_tasks: list[str]
    notifications: list[NotificationOut]
    # Set when the caller's grids (or the layer) changed since the cursor, and on a full snapshot:
    # the caller's grids as GeoJSON, so the phone's map never shows a grid it no longer owns.
    grids_changed: bool
    grids: GridCollection | None = None


# The changes after the cursor and, in the same round trip, the account's latest change id (the
# "head" row: entity 'head'). A cursor beyond the head comes from another database (a restore):
# the phone starts over with a snapshot.
_CHANGES_SQL = """
SELECT id, entity, entity_id, op FROM (
  SELECT id, entity, entity_id, op FROM sync_change WHERE account = {} AND id > {} ORDER BY id LIMIT 1000
) AS page
UNION ALL
SELECT max(id), 'head', '', '' FROM sync_change WHERE account = {}
"""
_HEAD_SQL = "SELECT max(id) AS head FROM sync_change WHERE account = {}"
# The inbox and, in the same round trip, the head (when the inbox is empty, the head on its own).
_INBOX_SQL = """
SELECT id, kind, title_zh, title_en, detail, created_at, read_at,
       (SELECT max(id) FROM sync_change WHERE account = {}) AS head
FROM notification WHERE account = {} ORDER BY created_at DESC LIMIT 50
"""


class SyncController(Controller):
    path = "/api/v1/sync"
    tags = ["sync"]
    opt = roles(*ALL_ROLES)

    @get("/", operation_id="sync")
    async def sync(self, request: Request[Principal, Any, Any], cursor: Annotated[int, Parameter(ge=0)] = 0) -> SyncOut:
        """``cursor=0`` (a new device) gets a full snapshot: the open tasks assigned to the caller, their
        households and members masked, the latest notifications. Later calls get only what changed, in order."""
        me = request.user.account_id
        if cursor == 0:
            return await _snapshot(request.user, None)
        async with reader() as db:
            page = await db.fetch(_CHANGES_SQL, me, cursor, me)
        head = next((row["id"] for row in page if row["entity"] == "head"), None) or 0
        changes = sorted((row for row in page if row["entity"] != "head"), key=lambda row: row["id"])
        if cursor > head:
            return await _snapshot(request.user, head)
        if not changes:
            return SyncOut(
                cursor=cursor, full=False, more=False, tasks=[], removed_tasks=[], notifications=[], grids_changed=False
            )
        last: dict[tuple[str, str], str] = {}
        for change in changes:  # the latest op per object wins
            last[(change["entity"], change["entity_id"])] = change["op"]
        task_ids = [entity_id for (entity, entity_id), op in last.items() if entity == "task" and op == "upsert"]
        rows = await VisitTask.select(*TASK_COLUMNS).where(VisitTask.id.is_in(task_ids)) if task_ids else []
        visible = [row for row in rows if _mine(request.user, row)]
        removed = sorted(
            {entity_id for (entity, entity_id), op in last.items() if entity == "task" and op == "remove"}
            | (set(task_ids) - {str(row["id"]) for row in visible})
        )
        note_ids = [entity_id for (entity, entity_id) in last if entity == "notification"]
        notes = (
            await Notification.select().where(Notification.id.is_in(note_ids), Notification.account == me)
            if note_ids
            else []
        )
        grids_changed = any(entity == "grids" for entity, _ in last)
        return SyncOut(
            cursor=changes[-1]["id"],
            full=False,
            more=len(changes) == PAGE,
            tasks=await _with_members(await tasks_out(visible)),
            removed_tasks=removed,
            notifications=[notification_out(n) for n in notes],
            grids_changed=grids_changed,
            grids=await _grids(request.user) if grids_changed else None,
        )


async def _grids(principal: Principal, db: Reader | None = None) -> GridCollection | None:
    # A worker's or a supervisor's own area; an admin's is the whole city (GET /api/v1/grids), and an
    # officer or a resident has no map.
    if principal.role == Role.grid_worker:
        if db is None:
            async with reader() as own:
                return await _worker_grids(own, principal.grid_codes)
        return await _worker_grids(db, principal.grid_codes)
    if principal.role == Role.supervisor:
        return await grids_of(principal)
    return None


# A worker's grids: the same features as GET /api/v1/grids gives them.
_WORKER_GRIDS_SQL = """
SELECT g.code, g.name, g.geometry, c.code AS community_code, c.name AS community_name, v.number AS version
FROM grid g
JOIN grid_version v ON v.id = g.layer
LEFT JOIN org_unit c ON c.id = g.community
WHERE v.is_current = {} AND g.code IN (SELECT value FROM json_each({}))
ORDER BY g.code
"""
_WORKER_GRIDS_PG = _WORKER_GRIDS_SQL.replace("IN (SELECT value FROM json_each({}))", "= ANY({}::varchar[])")
# GeoJSON of a grid's polygon, by a digest of its WKB: a worker's grids are the same on every sync,
# and the conversion cost more than the rest of the snapshot. A changed polygon is a new entry;
# bounded (a city's grids, a few kB each), oldest out first.
_GEOJSON: OrderedDict[bytes, msgspec.Raw] = OrderedDict()
_GEOJSON_MAX = 16_384


async def _worker_grids(db: Reader, codes: frozenset[str]) -> GridCollection:
    if not codes:
        return GridCollection(features=[])
    postgres = not is_sqlite()
    wanted: Any = sorted(codes) if postgres else msgspec.json.encode(sorted(codes)).decode()
    rows = await db.fetch(_WORKER_GRIDS_PG if postgres else _WORKER_GRIDS_SQL, True, wanted)
    return GridCollection(
        features=[
            GridFeatureOut(
                id=row["code"],
                properties=GridProperties(
                    code=row["code"],
                    name=row["name"],
                    community_code=row["community_code"],
                    community_name=row["community_name"],
                    version=row["version"],
                ),
                geometry=_geojson(bytes(row["geometry"])),
            )
            for row in rows
        ]
    )


def _geojson(wkb: bytes) -> msgspec.Raw:
    key = hashlib.blake2b(wkb, digest_size=20).digest()
    text = _GEOJSON.get(key)
    if text is None:
        text = _GEOJSON[key] = msgspec.Raw(shapely.to_geojson(shapely.from_wkb(wkb)).encode())
        if len(_GEOJSON) > _GEOJSON_MAX:
            _GEOJSON.popitem(last=False)
    return text


# The members of the tasks' households, in one query; the head first, then by name.
_MEMBERS_SQL = """
SELECT id, household, name, relation FROM household_member
WHERE household IN (SELECT value FROM json_each({}))
ORDER BY household, name
"""
_MEMBERS_PG = _MEMBERS_SQL.replace("IN (SELECT value FROM json_each({}))", "= ANY({}::uuid[])")


async def _with_members(tasks: list[TaskOut], db: Reader | None = None) -> list[SyncTask]:
    if not tasks:
        return []
    if db is None:
        async with reader() as own:
            return await _with_members(tasks, own)
    households = sorted({task.household.id for task in tasks})
    postgres = not is_sqlite()
    wanted: Any = households if postgres else msgspec.json.encode([str(h) for h in households]).decode()
    members: dict[str, list[MemberBrief]] = {}
    for row in await db.fetch(_MEMBERS_PG if postgres else _MEMBERS_SQL, wanted):
        members.setdefault(str(row["household"]), []).append(
            MemberBrief(
                id=row["id"] if isinstance(row["id"], UUID) else UUID(str(row["id"])),
                name_masked=pii.mask_name(row["name"]),
                relation=Relation(row["relation"]),
            )
        )
    for listed in members.values():
        listed.sort(key=lambda member: member.relation != Relation.head)  # stable: by name otherwise
    return [
        SyncTask(
            **{name: getattr(task, name) for name in _TASK_FIELDS},
            household=SyncHousehold(
                **msgspec.structs.asdict(task.household), members=members.get(str(task.household.id), [])
            ),
        )
        for task in tasks
    ]


_TASK_FIELDS = tuple(name for name in TaskOut.__struct_fields__ if name != "household")


def _mine(principal: Principal, row: dict[str, Any]) -> bool:
    return principal.role != Role.grid_worker or row["assignee"] == principal.account_id


async def _snapshot(principal: Principal, head: int | None) -> SyncOut:
    """Everything the phone should hold; ``head``: the latest change id, when the caller knows it."""
    # The head is read first (with the inbox): a change landing while the tasks are read is then
    # after the cursor, and the phone gets it again next time rather than never.
    async with reader() as db:
        notes = await db.fetch(_INBOX_SQL, principal.account_id, principal.account_id)
        if head is None:
            rows = notes or await db.fetch(_HEAD_SQL, principal.account_id)
            head = rows[0]["head"] or 0
        tasks: list[SyncTask] = []
        if principal.role == Role.grid_worker:
            rows = await db.fetch(OPEN_TASKS_WITH_HOUSEHOLDS_SQL, principal.account_id)
            tasks = await _with_members(joined_tasks_out(rows), db)
        grids = await _grids(principal, db)
    return SyncOut(
        cursor=head,
        full=True,
        more=False,
        tasks=tasks,
        removed_tasks=[],
        notifications=[notification_out(n) for n in notes],
        grids_changed=True,
        grids=grids,
    )
