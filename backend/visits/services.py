"""Visits and their photos, as phones send them: once, however often they are sent.

A visit is a row keyed by the worker and the phone's ``Idempotency-Key`` (unique in the
database): a retry, or ten copies racing each other, find that row and get its answer; the same
key with a different body is a conflict. The task's side of a visit (state, history, audit, the
people to tell) stays in ``tasks.services.record_visit`` and runs in the same transaction as the
insert, so it happens exactly when the row is created.

Photos arrive by content hash, in chunks appended at an offset (tus-like): the server holds the
bytes received so far on disk under ``incoming/`` and a client resumes from there, even after a
restart. When the last byte arrives the whole file is checked (sha256, magic bytes, pixel limit
before decoding), re-encoded without metadata and stored with a thumbnail. A photo belongs to a
visit (listed in it), or is a material photo taken on the apply screen for a task's household
(the ID card, the signed authorisation): the same upload, a different row.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from uuid import UUID, uuid4

import anyio.to_thread
import msgspec

from backend.accounts.principal import Principal
from backend.accounts.tables import Role
from backend.applications.tables import DepartmentCase
from backend.audit.services import Actor, record, refuse_unseen
from backend.audit.tables import Outcome
from backend.households.scope import NO_ACCESS, household_scope
from backend.households.tables import Household
from backend.idempotency.services import check_key
from backend.lib.db import as_utc, load_json, write_transaction
from backend.lib.errors import Conflict, InvalidInput
from backend.settings import get_settings
from backend.tasks import services as tasks
from backend.tasks.tables import TaskState
from backend.visits import images
from backend.visits.schemas import UploadStatus, VisitIn, VisitOut, VisitPhotoOut, VisitRecorded
from backend.visits.storage import photo_storage
from backend.visits.tables import MaterialPhoto, Visit, VisitPhoto

# --- visits -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    answer: VisitRecorded
    replayed: bool


def decode_visit(body: bytes) -> VisitIn:
    try:
        return msgspec.json.decode(body, type=VisitIn)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise InvalidInput(f"The visit is not valid: {exc}", "走访记录格式不正确", code="visit.invalid") from exc


async def record_visit(principal: Principal, task_id: UUID, key: str | None, body: bytes) -> Recorded:
    """Store the visit once per (worker, key) and move the task; a repeat gets the first answer."""
    # Scope first, outside the write: a denial's audit row must not roll back with the refusal.
    await tasks.check_visit_allowed(principal, task_id)
    key = check_key(key)
    data = decode_visit(body)
    digest = hashlib.sha256(body).hexdigest()
    dedupe_key = f"{principal.account_id}:{key}"
    existing = await Visit.select().where(Visit.dedupe_key == dedupe_key).first()
    if existing is not None:
        return Recorded(await _replay(existing, digest), replayed=True)
    now = datetime.now(UTC)
    visit_id = uuid4()
    async with write_transaction():
        # The unique key decides: of racing copies exactly one inserts, the others wait for it and
        # insert nothing (PostgreSQL), or find it on their turn (SQLite's writers queue).
        inserted = (
            await Visit.insert(
                Visit(
                    id=visit_id,
                    task=task_id,
                    worker=principal.account_id,
                    dedupe_key=dedupe_key,
                    request_hash=digest,
                    found=data.found,
                    needs=msgspec.json.encode(data.needs).decode(),
                    notes=data.notes,
                    # A phone's clock may run ahead; a visit cannot have happened after it arrived.
                    visited_at=min(data.visited_at or now, now),
                    lon=data.lon,
                    lat=data.lat,
                    accuracy_m=data.accuracy_m,
                    photos=msgspec.json.encode(list(dict.fromkeys(data.photos))).decode(),
                )
            )
            .on_conflict(target=Visit.dedupe_key, action="DO NOTHING")
            .returning(Visit.id)
        )
        if inserted:
            summary = {
                "visit": str(visit_id),
                "found_chars": len(data.found),
                "needs": data.needs,
                "visited_at": min(data.visited_at or now, now).isoformat(),
                "has_position": data.lon is not None,
                "accuracy_m": data.accuracy_m,
                "photos": len(data.photos),
            }
            outcome = await tasks.record_visit(principal, task_id, summary)
            if outcome["after_reassignment"]:
                await Visit.update({Visit.after_reassignment: True}).where(Visit.id == visit_id)
    if not inserted:
        existing = await Visit.select().where(Visit.dedupe_key == dedupe_key).first()
        assert existing is not None
        return Recorded(await _replay(existing, digest), replayed=True)
    answer = VisitRecorded(
        visit_id=visit_id,
        task_id=outcome["task_id"],
        state=outcome["state"],
        attributed_to=outcome["attributed_to"],
        after_reassignment=outcome["after_reassignment"],
        photos_missing=list(dict.fromkeys(data.photos)),
    )
    return Recorded(answer, replayed=False)


async def _replay(row: dict[str, Any], digest: str) -> VisitRecorded:
    if row["request_hash"] != digest:
        raise Conflict(
            "This Idempotency-Key was used for a different request",
            "该 Idempotency-Key 已用于另一个不同的请求",
            code="idempotency.key_reused",
        )
    return VisitRecorded(
        visit_id=row["id"],
        task_id=str(row["task"]),
        state=TaskState.visited.value,
        attributed_to=str(row["worker"]),
        after_reassignment=row["after_reassignment"],
        photos_missing=await _missing(row),
    )


async def _missing(visit: dict[str, Any]) -> list[str]:
    wanted: list[str] = load_json(visit["photos"])
    done = {row["sha256"] for row in await VisitPhoto.select(VisitPhoto.sha256).where(VisitPhoto.visit == visit["id"])}
    return [sha for sha in wanted if sha not in done]


async def list_visits(principal: Principal, task_id: UUID) -> list[VisitOut]:
    await tasks.scoped_task(principal, task_id, "visit.list")
    visits = await Visit.select().where(Visit.task == task_id).order_by(Visit.visited_at)
    photos = await VisitPhoto.select().where(VisitPhoto.visit.is_in([v["id"] for v in visits])) if visits else []
    by_visit: dict[UUID, dict[str, dict[str, Any]]] = {}
    for photo in photos:
        by_visit.setdefault(photo["visit"], {})[photo["sha256"]] = photo
    # What a worker wrote about a family is personal data: reading it is audited.
    await record("visit.list", actor=principal.actor, object_type="task", object_id=str(task_id))
    out = []
    for visit in visits:
        done = by_visit.get(visit["id"], {})
        out.append(
            VisitOut(
                id=visit["id"],
                task_id=visit["task"],
                worker_id=visit["worker"],
                visited_at=as_utc(visit["visited_at"]),
                found=visit["found"],
                needs=load_json(visit["needs"]),
                notes=visit["notes"],
                lon=visit["lon"],
                lat=visit["lat"],
                accuracy_m=visit["accuracy_m"],
                after_reassignment=visit["after_reassignment"],
                created_at=as_utc(visit["created_at"]),
                photos=[
                    VisitPhotoOut(
                        sha256=sha,
                        complete=sha in done,
                        photo_id=done[sha]["id"] if sha in done else None,
                        width=done[sha]["width"] if sha in done else None,
                        height=done[sha]["height"] if sha in done else None,
                    )
                    for sha in load_json(visit["photos"])
                ],
            )
        )
    return out


# --- photo uploads ----------------------------------------------------------------------------


class OffsetMismatch(Exception):
    """The client's offset is not what the server holds: it resumes from ``received``."""

    def __init__(self, received: int) -> None:
        super().__init__(received)
        self.received = received


UPLOAD_MEDIA_TYPES = ("application/offset+octet-stream", "application/octet-stream")


@dataclass(frozen=True)
class Chunk:
    # Headers as sent (None when missing or not a number): checked after scope, so an outsider
    # learns nothing from a malformed request but "not found".
    offset: int | None
    length: int | None  # the whole photo's size, Upload-Length
    data: bytes
    media_type: str = UPLOAD_MEDIA_TYPES[0]


@dataclass(frozen=True)
class Slot:
    """Where an upload lands: one of a visit's listed photos, or a material photo of a task's household."""

    kind: Literal["visit", "task"]
    owner: UUID  # the visit, or the task
    household: UUID | None = None  # a material photo's household

    @property
    def folder(self) -> str:
        return str(self.owner) if self.kind == "visit" else f"task-{self.owner}"

    def dedupe_key(self, sha256: str) -> str:
        return f"{self.owner}:{sha256}"


@dataclass(frozen=True)
class CheckedChunk:
    offset: int
    length: int
    data: bytes


def _check_chunk(chunk: Chunk) -> CheckedChunk:
    settings = get_settings().storage
    if chunk.media_type not in UPLOAD_MEDIA_TYPES:
        raise InvalidInput(
            "Send the chunk as application/offset+octet-stream",
            "请以 application/offset+octet-stream 上传",
            code="photo.media_type",
        )
    if chunk.offset is None or chunk.length is None:
        raise InvalidInput(
            "Send Upload-Offset and Upload-Length headers",
            "请提供 Upload-Offset 和 Upload-Length",
            code="photo.headers",
        )
    if not 0 < chunk.length <= settings.photo_max_bytes:
        raise InvalidInput(
            f"A photo must be 1 byte to {settings.photo_max_bytes} bytes",
            "照片大小超出限制",
            code="photo.bad_length",
        )
    # An empty chunk at the end is allowed: it finishes an upload whose last step failed after its bytes arrived.
    if len(chunk.data) > settings.chunk_bytes:
        raise InvalidInput(f"Send chunks of at most {settings.chunk_bytes} bytes", "分块过大", code="photo.bad_chunk")
    return CheckedChunk(chunk.offset, chunk.length, chunk.data)


async def _own_visit(principal: Principal, visit_id: UUID, action: str) -> dict[str, Any]:
    """Photos are sent by the worker who recorded the visit, and by nobody else."""
    row = await Visit.select().where(Visit.id == visit_id, Visit.worker == principal.account_id).first()
    if row is None:
        await refuse_unseen(
            principal.actor,
            action,
            "visit",
            visit_id,
            exists=await Visit.exists().where(Visit.id == visit_id),
            code="visit.not_found",
            reason="not_own_visit",
        )
    return row


def _listed(visit: dict[str, Any], sha256: str) -> None:
    if sha256 not in load_json(visit["photos"]):
        raise InvalidInput(
            "This photo is not one of the visit's photos",
            "该照片不属于这次走访",
            code="photo.not_in_visit",
        )


async def _own_task(principal: Principal, task_id: UUID) -> Slot:
    """Material photos are sent for a task the worker holds; the photo is kept for its household."""
    task = await tasks.scoped_task(principal, task_id, "photo.upload")
    return Slot("task", task_id, household=task["household"])


async def _complete_photo(slot: Slot, sha256: str) -> dict[str, Any] | None:
    table = VisitPhoto if slot.kind == "visit" else MaterialPhoto
    return await table.select().where(table.dedupe_key == slot.dedupe_key(sha256)).first()


def _incoming(slot: Slot, sha256: str) -> tuple[Path, Path]:
    folder = get_settings().storage.incoming_dir / slot.folder
    return folder / f"{sha256}.part", folder / f"{sha256}.length"


def _received(part: Path) -> int:
    try:
        return part.stat().st_size
    except FileNotFoundError:
        return 0


async def upload_status(principal: Principal, visit_id: UUID, sha256: str) -> UploadStatus:
    visit = await _own_visit(principal, visit_id, "photo.status")
    _listed(visit, sha256)
    slot = Slot("visit", visit_id)
    done = await _complete_photo(slot, sha256)
    if done is not None:
        return UploadStatus(received=done["bytes"], complete=True, photo_id=done["id"])
    part, _ = _incoming(slot, sha256)
    return UploadStatus(received=_received(part), complete=False)


@contextlib.contextmanager
def _locked(part: Path) -> Iterator[int]:
    """An exclusive lock on the upload's partial file, across processes; busy means someone else appends."""
    part.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(part, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise OffsetMismatch(os.fstat(fd).st_size) from exc
            raise
        yield fd
    finally:
        os.close(fd)


def _append(fd: int, length_file: Path, chunk: CheckedChunk) -> int:
    declared = length_file.read_text().strip() if length_file.exists() else ""
    if declared and int(declared) != chunk.length:
        raise InvalidInput(
            "Upload-Length differs from the one this upload started with",
            "上传总长度与开始时不一致",
            code="photo.length_changed",
        )
    received = os.fstat(fd).st_size
    if chunk.offset != received:
        raise OffsetMismatch(received)
    if received + len(chunk.data) > chunk.length:
        raise InvalidInput("More bytes than Upload-Length", "上传的数据超过声明的长度", code="photo.too_long")
    if not declared:
        length_file.write_text(str(chunk.length))
    if chunk.data:
        view = memoryview(chunk.data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    return received + len(chunk.data)


def _discard(slot: Slot, sha256: str) -> None:
    for path in _incoming(slot, sha256):
        path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        _incoming(slot, sha256)[0].parent.rmdir()  # only if empty


async def put_chunk(principal: Principal, visit_id: UUID, sha256: str, chunk: Chunk) -> tuple[bool, UploadStatus]:
    """Append one chunk of a visit's photo; returns (created, status). ``created`` is True when this
    chunk finished the photo."""
    visit = await _own_visit(principal, visit_id, "photo.upload")
    _listed(visit, sha256)
    return await _put(principal, Slot("visit", visit_id), sha256, chunk)


async def put_material_chunk(
    principal: Principal, task_id: UUID, sha256: str, chunk: Chunk
) -> tuple[bool, UploadStatus]:
    """Append one chunk of a material photo taken for the task's household; as ``put_chunk``."""
    return await _put(principal, await _own_task(principal, task_id), sha256, chunk)


async def _put(principal: Principal, slot: Slot, sha256: str, chunk: Chunk) -> tuple[bool, UploadStatus]:
    done = await _complete_photo(slot, sha256)
    if done is not None:  # "already have it": the phone may drop it from its outbox
        return False, UploadStatus(received=done["bytes"], complete=True, photo_id=done["id"])
    checked = _check_chunk(chunk)
    part, length_file = _incoming(slot, sha256)
    with _locked(part) as fd:
        done = await _complete_photo(slot, sha256)
        if done is not None:  # finished by a concurrent request while this one waited
            await anyio.to_thread.run_sync(_discard, slot, sha256)
            return False, UploadStatus(received=done["bytes"], complete=True, photo_id=done["id"])
        try:
            received = await anyio.to_thread.run_sync(_append, fd, length_file, checked)
        except OffsetMismatch as exc:
            if exc.received != checked.length:
                raise
            # Every byte is here already and an earlier finish failed (storage, database): finish now,
            # so the phone's plain retry of its last chunk completes the photo.
            received = exc.received
        if received < checked.length:
            return False, UploadStatus(received=received, complete=False)
        data = await anyio.to_thread.run_sync(part.read_bytes)
        try:
            photo_id = await _finish(principal, slot, sha256, data)
        except InvalidInput:
            # A wrong or bad file never becomes right by resending the same bytes: start afresh.
            await anyio.to_thread.run_sync(_discard, slot, sha256)
            raise
        # Still under the lock, so nobody appends to a file that is about to go. (A storage or
        # database failure above keeps the bytes: the next PUT of the last chunk finishes it.)
        await anyio.to_thread.run_sync(_discard, slot, sha256)
    return True, UploadStatus(received=len(data), complete=True, photo_id=photo_id)


async def clean_photo(data: bytes, *, actor: Actor, action: str, on: tuple[str, str]) -> images.CleanPhoto:
    """The uploaded bytes re-encoded upright without metadata, with a thumbnail (off the event loop);
    bytes that are no photo, or too big a one, are refused with a clear error and audited as a failed
    ``action`` on ``on`` (object type, id)."""
    settings = get_settings().storage
    try:
        return await anyio.to_thread.run_sync(
            lambda: images.clean(
                data,
                max_pixels=settings.photo_max_pixels,
                thumbnail_px=settings.thumbnail_px,
                quality=settings.jpeg_quality,
            )
        )
    except images.ImageRejected as exc:
        await record(
            action,
            actor=actor,
            object_type=on[0],
            object_id=on[1],
            outcome=Outcome.failure,
            detail={"reason": exc.code},
        )
        raise InvalidInput(exc.message_en, exc.message_zh, code=exc.code) from exc


async def _finish(principal: Principal, slot: Slot, sha256: str, data: bytes) -> UUID:
    if hashlib.sha256(data).hexdigest() != sha256:
        raise InvalidInput(
            "The photo's bytes do not match its sha256", "照片内容与校验值不一致", code="photo.hash_mismatch"
        )
    photo = await clean_photo(data, actor=principal.actor, action="photo.upload", on=(slot.kind, str(slot.owner)))
    storage = photo_storage()
    storage_key, thumbnail_key = f"photos/{sha256}.jpg", f"thumbnails/{sha256}.jpg"
    await storage.put(storage_key, photo.jpeg)
    await storage.put(thumbnail_key, photo.thumbnail)
    stored: dict[str, Any] = {
        "id": uuid4(),
        "sha256": sha256,
        "dedupe_key": slot.dedupe_key(sha256),
        "storage_key": storage_key,
        "thumbnail_key": thumbnail_key,
        "width": photo.width,
        "height": photo.height,
        "bytes": len(data),
    }
    async with write_transaction():
        if slot.kind == "visit":
            await VisitPhoto.insert(VisitPhoto(**stored, visit=slot.owner)).on_conflict(
                target=VisitPhoto.dedupe_key, action="DO NOTHING"
            )
            where = {"visit": str(slot.owner)}
        else:
            await MaterialPhoto.insert(
                MaterialPhoto(**stored, task=slot.owner, household=slot.household, worker=principal.account_id)
            ).on_conflict(target=MaterialPhoto.dedupe_key, action="DO NOTHING")
            where = {"task": str(slot.owner), "household": str(slot.household)}
        row = await _complete_photo(slot, sha256)
        assert row is not None
        await record(
            "photo.upload",
            actor=principal.actor,
            object_type="photo",
            object_id=str(row["id"]),
            detail={**where, "width": photo.width, "height": photo.height},
        )
    return UUID(str(row["id"]))


# --- photo reads ------------------------------------------------------------------------------


async def read_photo(principal: Principal, photo_id: UUID, *, thumbnail: bool) -> bytes:
    """The stored JPEG, for whoever may see the household it was taken at; every read audited."""
    photo = (
        await VisitPhoto.select(
            VisitPhoto.storage_key,
            VisitPhoto.thumbnail_key,
            VisitPhoto.visit,
            VisitPhoto.sha256,
            VisitPhoto.visit._.task._.household.as_alias("household"),
        )
        .where(VisitPhoto.id == photo_id)
        .first()
    ) or (
        await MaterialPhoto.select(
            MaterialPhoto.storage_key, MaterialPhoto.thumbnail_key, MaterialPhoto.sha256, MaterialPhoto.household
        )
        .where(MaterialPhoto.id == photo_id)
        .first()
    )
    action = "photo.read_thumbnail" if thumbnail else "photo.read"
    if photo is None or not (
        await _household_in_scope(principal, photo["household"])
        or await _material_of_own_case(principal, photo_id, photo)
    ):
        await refuse_unseen(
            principal.actor,
            action,
            "photo",
            photo_id,
            exists=photo is not None,
            code="photo.not_found",
        )
    data = await photo_storage().get(photo["thumbnail_key"] if thumbnail else photo["storage_key"])
    await record(action, actor=principal.actor, object_type="photo", object_id=str(photo_id))
    return data


async def _material_of_own_case(principal: Principal, photo_id: UUID, photo: dict[str, Any]) -> bool:
    """A department officer sees a photo handed in as material of an application their department
    has a case for (the ID card, the signed authorisation): nothing else of the household."""
    if principal.role != Role.department_officer or principal.department_id is None:
        return False
    rows = await DepartmentCase.select(DepartmentCase.application._.materials.as_alias("materials")).where(
        DepartmentCase.department == principal.department_id,
        DepartmentCase.application._.household == photo["household"],
    )
    wanted = {("photo_id", str(photo_id))}
    if photo.get("visit"):  # a visit photo may be named by its visit and hash while it uploads
        wanted.add(("visit", f"{photo['visit']}:{photo['sha256']}"))
    for row in rows:
        for material in (load_json(row["materials"]) or {}).values():
            for ref in material.get("photos", []):
                named = {("photo_id", str(ref.get("photo_id")))}
                named.add(("visit", f"{ref.get('visit_id')}:{ref.get('sha256')}"))
                if named & wanted:
                    return True
    return False


async def _household_in_scope(principal: Principal, household_id: UUID) -> bool:
    scope = household_scope(principal)
    if scope is NO_ACCESS:
        return False
    query = Household.exists().where(Household.id == household_id)
    return bool(await (query.where(scope) if scope is not None else query))


# --- housekeeping -----------------------------------------------------------------------------

# A photo half-sent and then abandoned (the phone was wiped, the visit sent from another phone):
# its bytes go after this long. Phones that come back later simply start that photo again.
STALE_UPLOAD_AFTER = timedelta(days=30)


def purge_stale_uploads(older_than: timedelta = STALE_UPLOAD_AFTER) -> int:
    """Delete partial uploads untouched for ``older_than``; returns how many went. Idempotent."""
    incoming = get_settings().storage.incoming_dir
    if not incoming.is_dir():
        return 0
    cutoff = (datetime.now(UTC) - older_than).timestamp()
    purged = 0
    for part in incoming.glob("*/*.part"):
        try:
            if part.stat().st_mtime >= cutoff:
                continue
        except FileNotFoundError:
            continue
        part.unlink(missing_ok=True)
        part.with_suffix(".length").unlink(missing_ok=True)
        purged += 1
        with contextlib.suppress(OSError):
            part.parent.rmdir()
    return purged
