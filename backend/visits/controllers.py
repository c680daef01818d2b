from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, head, post, put
from litestar.params import FromPath, FromQuery
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_409_CONFLICT

from backend.accounts.guards import roles
from backend.accounts.principal import Principal
from backend.accounts.tables import Role
from backend.lib.errors import PROBLEM_MEDIA_TYPE, InvalidInput, Problem, problem_response
from backend.visits import services
from backend.visits.schemas import UploadStatus, VisitOut

HOUSEHOLD_STAFF = roles(Role.grid_worker, Role.supervisor, Role.admin)
SHA256 = re.compile("[0-9a-f]{64}")


class OffsetProblem(Problem, kw_only=True):
    """409 for a chunk at the wrong offset: ``received`` is where the client resumes."""

    received: int


class TaskVisitController(Controller):
    path = "/api/v1/tasks"
    tags = ["visits"]

    @post("/{task_id:uuid}/visit", operation_id="recordVisit", opt=roles(Role.grid_worker), status_code=HTTP_200_OK)
    async def visit(self, request: Request[Principal, Any, Any], task_id: FromPath[UUID]) -> Response[bytes]:
        """A visit recorded on the phone (perhaps offline). ``Idempotency-Key`` (the phone's visit UUID)
        is required: the same key and body give the same visit; the same key with another body is 409.
        Then send each listed photo with ``PUT /api/v1/visits/{visit_id}/photos/{sha256}``."""
        key = request.headers.get("idempotency-key")
        recorded = await services.record_visit(request.user, task_id, key, await request.body())
        return Response(
            msgspec.json.encode(recorded.answer),
            status_code=HTTP_200_OK,
            media_type="application/json",
            headers={"Idempotent-Replayed": "true"} if recorded.replayed else {},
        )

    @put(
        "/{task_id:uuid}/photos/{sha256:str}",
        operation_id="uploadMaterialPhotoChunk",
        opt=roles(Role.grid_worker),
        status_code=HTTP_200_OK,
    )
    async def material_photo(
        self, request: Request[Principal, Any, Any], task_id: FromPath[UUID], sha256: FromPath[str]
    ) -> Response[Any]:
        """A document photographed on the apply screen (the ID card, the signed authorisation), for the
        task's household, not tied to a visit: uploaded like a visit photo (same headers and answers),
        then named in an application by the ``photo_id`` of the completing answer. The same bytes
        sent again for the task are the same photo."""
        sha = _sha256(sha256)
        return await _upload(request, lambda chunk: services.put_material_chunk(request.user, task_id, sha, chunk))


def _sha256(value: str) -> str:
    if not SHA256.fullmatch(value):
        raise InvalidInput(
            "A photo is named by its sha256 in lowercase hex", "照片校验值格式不正确", code="photo.bad_sha256"
        )
    return value


def _int_header(request: Request[Any, Any, Any], name: str) -> int | None:
    value = request.headers.get(name, "")
    return int(value) if value.isdigit() and len(value) <= 12 else None


async def _upload(
    request: Request[Principal, Any, Any],
    put_chunk: Callable[[services.Chunk], Awaitable[tuple[bool, UploadStatus]]],
) -> Response[Any]:
    """One chunk of a photo, into a visit or a task's material photos: the answers both share."""
    chunk = services.Chunk(
        offset=_int_header(request, "upload-offset"),
        length=_int_header(request, "upload-length"),
        data=await request.body(),
        media_type=request.headers.get("content-type", "").split(";")[0].strip().lower(),
    )
    try:
        created, status = await put_chunk(chunk)
    except services.OffsetMismatch as exc:
        problem = problem_response(
            request,
            status=HTTP_409_CONFLICT,
            code="photo.offset_mismatch",
            message_zh="上传位置不一致，请从服务器已收到的位置继续",
            message_en="Upload-Offset differs from what the server holds; resume from received",
        ).content
        assert isinstance(problem, Problem)
        return Response(
            OffsetProblem(**msgspec.structs.asdict(problem), received=exc.received),
            status_code=HTTP_409_CONFLICT,
            media_type=PROBLEM_MEDIA_TYPE,
            headers={"Upload-Offset": str(exc.received)},
        )
    return Response(
        status,
        status_code=HTTP_201_CREATED if created else HTTP_200_OK,
        headers={"Upload-Offset": str(status.received)},
    )


class VisitController(Controller):
    path = "/api/v1/visits"
    tags = ["visits"]

    @get("/", operation_id="listVisits", opt=HOUSEHOLD_STAFF)
    async def list_visits(self, request: Request[Principal, Any, Any], task_id: FromQuery[UUID]) -> list[VisitOut]:
        """The visits of one task, oldest first, with each photo's state (a reading of personal data: audited)."""
        return await services.list_visits(request.user, task_id)

    @put(
        "/{visit_id:uuid}/photos/{sha256:str}",
        operation_id="uploadVisitPhotoChunk",
        opt=roles(Role.grid_worker),
        status_code=HTTP_200_OK,
    )
    async def upload(
        self, request: Request[Principal, Any, Any], visit_id: FromPath[UUID], sha256: FromPath[str]
    ) -> Response[Any]:
        """One chunk of a photo, resumable: headers ``Upload-Offset`` (where this chunk starts) and
        ``Upload-Length`` (the photo's size); ``Content-Type: application/offset+octet-stream``.
        200 while incomplete, 201 when this chunk completed an accepted photo, 200 ``complete`` for one
        already held, 409 ``photo.offset_mismatch`` with ``received`` to resume from, 422 for a bad photo."""
        sha = _sha256(sha256)
        return await _upload(request, lambda chunk: services.put_chunk(request.user, visit_id, sha, chunk))

    @get(
        "/{visit_id:uuid}/photos/{sha256:str}/status",
        operation_id="getVisitPhotoStatus",
        opt=roles(Role.grid_worker),
    )
    async def status(
        self, request: Request[Principal, Any, Any], visit_id: FromPath[UUID], sha256: FromPath[str]
    ) -> Response[UploadStatus]:
        """How much of a photo the server holds, and whether it is complete."""
        status = await services.upload_status(request.user, visit_id, _sha256(sha256))
        return Response(status, headers={"Upload-Offset": str(status.received)})

    @head(
        "/{visit_id:uuid}/photos/{sha256:str}/status",
        operation_id="headVisitPhotoStatus",
        opt=roles(Role.grid_worker),
    )
    async def status_head(
        self, request: Request[Principal, Any, Any], visit_id: FromPath[UUID], sha256: FromPath[str]
    ) -> Response[None]:
        """The same as GET, in headers only: ``Upload-Offset`` and ``Upload-Complete`` (?1 or ?0)."""
        status = await services.upload_status(request.user, visit_id, _sha256(sha256))
        return Response(
            None,
            headers={"Upload-Offset": str(status.received), "Upload-Complete": "?1" if status.complete else "?0"},
        )


class PhotoController(Controller):
    path = "/api/v1/photos"
    tags = ["visits"]
    # Officers too, for the photos handed in with their department's cases (checked per photo).
    opt = roles(Role.grid_worker, Role.supervisor, Role.admin, Role.department_officer)

    @get("/{photo_id:uuid}", operation_id="getPhoto", media_type="image/jpeg")
    async def photo(self, request: Request[Principal, Any, Any], photo_id: FromPath[UUID]) -> Response[bytes]:
        """A visit photo (JPEG, no metadata), for whoever may see the household; each read audited."""
        data = await services.read_photo(request.user, photo_id, thumbnail=False)
        return Response(data, media_type="image/jpeg")

    @get("/{photo_id:uuid}/thumbnail", operation_id="getPhotoThumbnail", media_type="image/jpeg")
    async def thumbnail(self, request: Request[Principal, Any, Any], photo_id: FromPath[UUID]) -> Response[bytes]:
        """The photo's thumbnail (longest side 320 px)."""
        data = await services.read_photo(request.user, photo_id, thumbnail=True)
        return Response(data, media_type="image/jpeg")
