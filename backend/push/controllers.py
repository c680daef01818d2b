from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from backend.accounts.guards import ALL_ROLES, roles
from backend.accounts.principal import Principal
from backend.push import services, vapid
from backend.push.schemas import SubscriptionIn, SubscriptionOut, UnsubscribeIn, VapidKeyOut


class PushController(Controller):
    """Web Push for everyone who has an inbox, residents included: a device registers itself."""

    path = "/api/v1/push"
    tags = ["push"]
    opt = roles(*ALL_ROLES)

    @get("/vapid-public-key", operation_id="getVapidPublicKey")
    async def vapid_public_key(self) -> VapidKeyOut:
        return VapidKeyOut(public_key=vapid.public_key_b64())

    @post(
        "/subscriptions",
        operation_id="subscribePush",
        status_code=HTTP_201_CREATED,
        responses={HTTP_200_OK: ResponseSpec(data_container=SubscriptionOut, description="Already registered")},
    )
    async def subscribe(
        self, request: Request[Principal, Any, Any], data: JSONBody[SubscriptionIn]
    ) -> Response[SubscriptionOut]:
        result = await services.subscribe(request.user.account_id, data)
        body = SubscriptionOut(id=result.id, created_at=result.created_at, last_success_at=result.last_success_at)
        # 201 for a new device, 200 when this endpoint was already registered (now to the caller).
        return Response(body, status_code=HTTP_201_CREATED if result.created else HTTP_200_OK)

    @delete("/subscriptions", operation_id="unsubscribePush", status_code=HTTP_204_NO_CONTENT)
    async def unsubscribe(self, request: Request[Principal, Any, Any], data: JSONBody[UnsubscribeIn]) -> None:
        principal = request.user
        await services.unsubscribe(principal.actor, principal.account_id, data.endpoint)
