"""Residents' own requests: sign-up by phone, asking for help (signed in or as a guest), following it."""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED

from backend.accounts.guards import roles
from backend.accounts.principal import Principal
from backend.accounts.services import NewAccount, create_account
from backend.accounts.tables import Role
from backend.audit.services import Actor
from backend.idempotency.services import check_key, once
from backend.lib.errors import InvalidInput
from backend.lib.net import client_address, request_id
from backend.requests import codes, photos, services
from backend.requests.schemas import (
    CodeIn,
    RequestIn,
    RequestOut,
    RequestPhotoOut,
    SignupIn,
    SignupOut,
    StaffRequestOut,
    StatusOut,
    SubmittedOut,
)
from backend.settings import get_settings


def _client_key(request: Request[Any, Any, Any]) -> str:
    return "residents:" + client_address(request)


# Public endpoints: one budget per client address for codes, sign-ups, guest requests and tracking.
public_rate_limit = RateLimitConfig(
    rate_limit=("minute", get_settings().auth.public_per_client_per_minute),
    identifier_for_request=_client_key,
    store="rate_limit",
)
PUBLIC = {"public": True}


def _guest(request: Request[Any, Any, Any]) -> Actor:
    return Actor(account_id=None, role="guest", client=client_address(request), request_id=request_id(request))


async def _submit(
    request: Request[Any, Any, Any], account_id: UUID | None, actor: Actor, scope: str
) -> Response[bytes]:
    key = check_key(request.headers.get("idempotency-key"))
    try:
        request_uuid = UUID(key)
    except ValueError as exc:
        raise InvalidInput(
            "Idempotency-Key must be a UUID for requests", "Idempotency-Key 须为 UUID", code="request.key"
        ) from exc
    body = await request.body()

    async def run() -> tuple[int, bytes]:
        try:
            data = msgspec.json.decode(body, type=RequestIn)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise InvalidInput(
                f"The request is not valid: {exc}", "求助信息格式不正确", code="request.invalid"
            ) from exc
        out = await services.submit(data, request_id=request_uuid, account_id=account_id, actor=actor)
        return HTTP_201_CREATED, msgspec.json.encode(out)

    answer = await once(scope, key, body, run)
    # The upload token joins the answer here, not in the stored one: it is recomputed, never kept.
    stored = msgspec.json.decode(answer.body, type=RequestOut)
    out = SubmittedOut(**msgspec.structs.asdict(stored), upload_token=photos.upload_token(request_uuid))
    return Response(
        msgspec.json.encode(out),
        status_code=answer.status_code,
        media_type="application/json",
        headers={"Idempotent-Replayed": "true"} if answer.replayed else {},
    )


async def _put_photo(
    request: Request[Any, Any, Any], sender: photos.Sender, request_id: UUID, sha256: str
) -> Response[RequestPhotoOut]:
    created, photo = await photos.upload(sender, request_id, sha256, await request.body())
    return Response(photo, status_code=HTTP_201_CREATED if created else HTTP_200_OK)


class ResidentController(Controller):
    path = "/api/v1/residents"
    tags = ["residents"]

    @post(
        "/codes",
        operation_id="sendSignupCode",
        opt=PUBLIC,
        middleware=[public_rate_limit.middleware],
        status_code=HTTP_202_ACCEPTED,
    )
    async def send_code(self, data: JSONBody[CodeIn]) -> None:
        """Text a six-digit code to the phone (the same answer whether or not it has an account)."""
        await codes.send_code(data.phone)

    @post(
        "/signup",
        operation_id="residentSignup",
        opt=PUBLIC,
        middleware=[public_rate_limit.middleware],
        status_code=HTTP_201_CREATED,
    )
    async def signup(self, request: Request[Any, Any, Any], data: JSONBody[SignupIn]) -> SignupOut:
        """A resident account, signed in later with the phone number and password."""
        phone = await codes.check_code(data.phone, data.code)
        account_id = await create_account(
            NewAccount(
                username=f"r_{secrets.token_hex(6)}",  # residents sign in with their phone
                display_name=data.display_name,
                password=data.password,
                role=Role.resident,
                phone=phone,
            ),
            actor=_guest(request),
        )
        return SignupOut(account_id=account_id)


class RequestController(Controller):
    path = "/api/v1/requests"
    tags = ["requests"]

    @post("/", operation_id="submitRequest", opt=roles(Role.resident), status_code=HTTP_201_CREATED)
    async def submit(self, request: Request[Principal, Any, Any]) -> Response[bytes]:
        """A signed-in resident asks for help. ``Idempotency-Key`` (a UUID) required: retries are safe.
        The answer's ``upload_token`` is for adding photos (see ``uploadGuestRequestPhoto``)."""
        me = request.user
        return await _submit(request, me.account_id, me.actor, f"account:{me.account_id}")

    @post(
        "/guest",
        operation_id="submitGuestRequest",
        opt=PUBLIC,
        middleware=[public_rate_limit.middleware],
        status_code=HTTP_201_CREATED,
    )
    async def submit_guest(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        """Asking without an account: the answer carries a tracking code to follow the request, and an
        ``upload_token`` (shown only here) for sending its photos."""
        return await _submit(request, None, _guest(request), "guest")

    @get("/mine", operation_id="listMyRequests", opt=roles(Role.resident))
    async def mine(self, request: Request[Principal, Any, Any]) -> list[RequestOut]:
        return await services.mine(request.user.account_id)

    @get("/track", operation_id="trackRequest", opt=PUBLIC, middleware=[public_rate_limit.middleware])
    async def track(
        self,
        code: Annotated[str, Parameter(min_length=9, max_length=9)],
        phone_last4: Annotated[str, Parameter(pattern=r"^\d{4}$")],
    ) -> StatusOut:
        """The status only, for the tracking code and the last four digits of the phone given."""
        return await services.track(code, phone_last4)

    @get("/", operation_id="listRequests", opt=roles(Role.grid_worker, Role.supervisor, Role.admin))
    async def staff_list(
        self,
        request: Request[Principal, Any, Any],
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        offset: Annotated[int, Parameter(ge=0)] = 0,
        task_id: FromQuery[UUID | None] = None,
    ) -> list[StaffRequestOut]:
        """Residents' requests in the caller's area, personal data masked, with the services matched.
        ``task_id`` narrows them to the requests that raised (or joined) that visit task: an empty list
        for a task outside the caller's area, as for any request there."""
        return await services.staff_list(request.user, limit=limit, offset=offset, task_id=task_id)

    @put(
        "/{request_id:uuid}/photos/{sha256:str}",
        operation_id="uploadRequestPhoto",
        opt=roles(Role.resident),
        status_code=HTTP_200_OK,
    )
    async def upload_photo(
        self, request: Request[Principal, Any, Any], request_id: FromPath[UUID], sha256: FromPath[str]
    ) -> Response[RequestPhotoOut]:
        """A photo of the signed-in resident's own request: the whole (phone-compressed) JPEG, PNG or WebP
        as the body, named by its sha256. 201 when stored, 200 for one already held, 422 for bad bytes."""
        return await _put_photo(request, photos.Sender.resident(request.user), request_id, sha256)

    @put(
        "/{request_id:uuid}/guest-photos/{sha256:str}",
        operation_id="uploadGuestRequestPhoto",
        opt=PUBLIC,
        middleware=[public_rate_limit.middleware],
        status_code=HTTP_200_OK,
    )
    async def upload_guest_photo(
        self, request: Request[Any, Any, Any], request_id: FromPath[UUID], sha256: FromPath[str]
    ) -> Response[RequestPhotoOut]:
        """The same without an account: header ``Upload-Token`` = the ``upload_token`` of the submission's answer."""
        sender = photos.Sender(actor=_guest(request), token=request.headers.get("upload-token") or None)
        return await _put_photo(request, sender, request_id, sha256)

    @get(
        "/{request_id:uuid}/photos/{request_photo_id:uuid}",
        operation_id="getRequestPhoto",
        opt=roles(Role.resident, Role.grid_worker, Role.supervisor, Role.admin),
        media_type="image/jpeg",
    )
    async def photo(
        self, request: Request[Principal, Any, Any], request_id: FromPath[UUID], request_photo_id: FromPath[UUID]
    ) -> Response[bytes]:
        """A request's photo (JPEG, no metadata) for the resident who sent it and the staff of their
        household; every read audited."""
        data = await photos.read(request.user, request_id, request_photo_id, thumbnail=False)
        return Response(data, media_type="image/jpeg")

    @get(
        "/{request_id:uuid}/photos/{request_photo_id:uuid}/thumbnail",
        operation_id="getRequestPhotoThumbnail",
        opt=roles(Role.resident, Role.grid_worker, Role.supervisor, Role.admin),
        media_type="image/jpeg",
    )
    async def thumbnail(
        self, request: Request[Principal, Any, Any], request_id: FromPath[UUID], request_photo_id: FromPath[UUID]
    ) -> Response[bytes]:
        """The photo's thumbnail (longest side 320 px)."""
        data = await photos.read(request.user, request_id, request_photo_id, thumbnail=True)
        return Response(data, media_type="image/jpeg")
