"""Photos residents send with their requests ("optionally a photo"): checked, cleaned and stored as
visit photos are (``visits.images``, ``visits.storage``), seen only by the people the request concerns.

One ``PUT`` per photo, the whole file, named by its sha256. The phone has already shrunk it to at most
300 KB, so the visit photos' resumable chunks would buy nothing here; the server's body limit bounds it.
Sending the same photo again finds the stored one (the unique request id + sha256).

Who may add a photo: the signed-in resident whose request it is, or whoever holds the request's
upload token. The token is an HMAC of the request's id under the server's index key: nothing is
stored, and it is handed out only in the submission's answer. Not the tracking code and the last
four digits of the phone: those are meant to be written down, read over the phone and shared with
family to follow the status; adding evidence to someone's case needs a secret that never left the
phone that submitted it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from backend.accounts.principal import Principal
from backend.accounts.tables import Role
from backend.audit.services import Actor, record, refuse_unseen
from backend.households.scope import NO_ACCESS, household_scope
from backend.households.tables import Household
from backend.lib.crypto import blind_index
from backend.lib.db import as_utc, write_transaction
from backend.lib.errors import InvalidInput
from backend.requests.schemas import RequestPhotoOut
from backend.requests.tables import HelpRequest, RequestPhoto
from backend.settings import get_settings
from backend.tasks.tables import VisitTask
from backend.visits.services import clean_photo
from backend.visits.storage import photo_storage

MAX_PHOTOS = 3
_SHA256 = re.compile("[0-9a-f]{64}")


def upload_token(request_id: UUID) -> str:
    return blind_index(str(request_id), kind="request_upload")


@dataclass(frozen=True)
class Sender:
    """Who sends a photo: a signed-in resident (``account_id``) or a phone with the upload token."""

    actor: Actor
    account_id: UUID | None = None
    token: str | None = None

    @classmethod
    def resident(cls, principal: Principal) -> Sender:
        return cls(actor=principal.actor, account_id=principal.account_id)


def _owns(sender: Sender, row: dict[str, Any]) -> bool:
    if sender.account_id is not None and row["account"] == sender.account_id:
        return True
    token = sender.token or ""
    # compare_digest refuses non-ASCII text with an exception: such a header is simply wrong.
    return token.isascii() and secrets.compare_digest(token, upload_token(row["id"]))


async def _own_request(sender: Sender, request_id: UUID) -> dict[str, Any]:
    row = await HelpRequest.select(HelpRequest.id, HelpRequest.account).where(HelpRequest.id == request_id).first()
    if row is None or not _owns(sender, row):
        await refuse_unseen(
            sender.actor,
            "request_photo.upload",
            "help_request",
            request_id,
            exists=row is not None,
            code="request.not_found",
            reason="not_own_request",
        )
    return row


def _out(row: dict[str, Any]) -> RequestPhotoOut:
    return RequestPhotoOut(
        id=row["id"],
        sha256=row["sha256"],
        width=row["width"],
        height=row["height"],
        created_at=as_utc(row["created_at"]),
    )


async def photos_of(request_ids: list[UUID]) -> dict[UUID, list[RequestPhotoOut]]:
    """The photos of each request, oldest first (metadata only: reading bytes is its own, audited, call)."""
    if not request_ids:
        return {}
    rows = await RequestPhoto.select().where(RequestPhoto.request.is_in(request_ids)).order_by(RequestPhoto.created_at)
    found: dict[UUID, list[RequestPhotoOut]] = {}
    for row in rows:
        found.setdefault(row["request"], []).append(_out(row))
    return found


def _check(sha256: str, data: bytes) -> None:
    if not _SHA256.fullmatch(sha256):
        raise InvalidInput(
            "A photo is named by its sha256 in lowercase hex", "照片校验值格式不正确", code="photo.bad_sha256"
        )
    limit = get_settings().storage.photo_max_bytes
    if not 0 < len(data) <= limit:
        raise InvalidInput(f"A photo must be 1 byte to {limit} bytes", "照片大小超出限制", code="photo.bad_length")
    if hashlib.sha256(data).hexdigest() != sha256:
        raise InvalidInput(
            "The photo's bytes do not match its sha256", "照片内容与校验值不一致", code="photo.hash_mismatch"
        )


async def _stored(request_id: UUID, sha256: str) -> dict[str, Any] | None:
    return await RequestPhoto.select().where(RequestPhoto.dedupe_key == f"{request_id}:{sha256}").first()


async def upload(sender: Sender, request_id: UUID, sha256: str, data: bytes) -> tuple[bool, RequestPhotoOut]:
    """Store one photo of the request; (created, photo). A photo already held is answered, not stored twice."""
    await _own_request(sender, request_id)  # scope first: an outsider learns nothing from a bad body
    done = await _stored(request_id, sha256)
    if done is not None:
        return False, _out(done)
    _check(sha256, data)
    if await RequestPhoto.count().where(RequestPhoto.request == request_id) >= MAX_PHOTOS:
        raise InvalidInput(
            f"A request takes at most {MAX_PHOTOS} photos",
            f"每条求助最多附 {MAX_PHOTOS} 张照片",
            code="request.too_many_photos",
        )
    photo = await clean_photo(
        data, actor=sender.actor, action="request_photo.upload", on=("help_request", str(request_id))
    )
    # Content addresses, apart from the visits' photos: the same bytes twice are one object.
    storage_key, thumbnail_key = f"request-photos/{sha256}.jpg", f"request-thumbnails/{sha256}.jpg"
    storage = photo_storage()
    await storage.put(storage_key, photo.jpeg)
    await storage.put(thumbnail_key, photo.thumbnail)
    async with write_transaction():
        inserted = (
            await RequestPhoto.insert(
                RequestPhoto(
                    id=uuid4(),
                    request=request_id,
                    sha256=sha256,
                    dedupe_key=f"{request_id}:{sha256}",
                    storage_key=storage_key,
                    thumbnail_key=thumbnail_key,
                    width=photo.width,
                    height=photo.height,
                    bytes=len(data),
                )
            )
            .on_conflict(target=RequestPhoto.dedupe_key, action="DO NOTHING")
            .returning(RequestPhoto.id)
        )
        row = await _stored(request_id, sha256)
        assert row is not None
        if inserted:
            await record(
                "request_photo.upload",
                actor=sender.actor,
                object_type="request_photo",
                object_id=str(row["id"]),
                detail={"request": str(request_id), "width": photo.width, "height": photo.height},
            )
    return bool(inserted), _out(row)


# --- reading ------------------------------------------------------------------------------------


async def _staff_may_see(principal: Principal, request: dict[str, Any]) -> bool:
    """Whoever may see the household (the grid's worker, the street's supervisor, admins), and the
    worker who holds the request's visit task (a cover from another grid, say)."""
    if principal.role not in (Role.grid_worker, Role.supervisor, Role.admin):
        return False
    if request["task"] is not None and principal.role == Role.grid_worker:
        task = await VisitTask.select(VisitTask.assignee).where(VisitTask.id == request["task"]).first()
        if task is not None and task["assignee"] == principal.account_id:
            return True
    scope = household_scope(principal)
    if scope is NO_ACCESS or request["household"] is None:
        return False
    query = Household.exists().where(Household.id == request["household"])
    return bool(await (query.where(scope) if scope is not None else query))


async def read(principal: Principal, request_id: UUID, photo_id: UUID, *, thumbnail: bool) -> bytes:
    """The stored JPEG for the resident who asked and the staff of their household; every read audited."""
    action = "request_photo.read_thumbnail" if thumbnail else "request_photo.read"
    request = (
        await HelpRequest.select(HelpRequest.account, HelpRequest.household, HelpRequest.task)
        .where(HelpRequest.id == request_id)
        .first()
    )
    photo = (
        await RequestPhoto.select(RequestPhoto.storage_key, RequestPhoto.thumbnail_key)
        .where(RequestPhoto.id == photo_id, RequestPhoto.request == request_id)
        .first()
    )
    allowed = request is not None and (
        (principal.role == Role.resident and request["account"] == principal.account_id)
        or await _staff_may_see(principal, request)
    )
    if not allowed or photo is None:
        await refuse_unseen(
            principal.actor,
            action,
            "help_request",
            request_id,
            exists=request is not None and not allowed,
            code="request_photo.not_found",
        )
    data = await photo_storage().get(photo["thumbnail_key"] if thumbnail else photo["storage_key"])
    await record(
        action,
        actor=principal.actor,
        object_type="request_photo",
        object_id=str(photo_id),
        detail={"request": str(request_id)},
    )
    return data
