from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery, Parameter
from litestar.status_codes import HTTP_204_NO_CONTENT

from backend.accounts.guards import ALL_ROLES, roles
from backend.accounts.principal import Principal
from backend.audit.services import refuse_unseen
from backend.notifications.schemas import InboxOut, notification_out
from backend.notifications.tables import Notification


class InboxController(Controller):
    """Everyone's own inbox; the query names the caller, so nobody reads another's."""

    path = "/api/v1/notifications"
    tags = ["notifications"]
    opt = roles(*ALL_ROLES)

    @get("/", operation_id="listNotifications")
    async def list_notifications(
        self,
        request: Request[Principal, Any, Any],
        unread_only: FromQuery[bool] = False,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
    ) -> InboxOut:
        mine = Notification.account == request.user.account_id
        query = Notification.select().where(mine).order_by(Notification.created_at, ascending=False).limit(limit)
        if unread_only:
            query = query.where(Notification.read_at.is_null())
        rows = await query
        unread = await Notification.count().where(mine, Notification.read_at.is_null())
        return InboxOut(
            items=[notification_out(row) for row in rows],
            unread=unread,
        )

    @post("/{notification_id:uuid}/read", operation_id="markNotificationRead", status_code=HTTP_204_NO_CONTENT)
    async def mark_read(self, request: Request[Principal, Any, Any], notification_id: FromPath[UUID]) -> None:
        updated = (
            await Notification.update({Notification.read_at: datetime.now(UTC)})
            .where(Notification.id == notification_id, Notification.account == request.user.account_id)
            .returning(Notification.id)
        )
        if not updated:
            await refuse_unseen(
                request.user.actor,
                "notification.read",
                "notification",
                notification_id,
                exists=await Notification.exists().where(Notification.id == notification_id),
                code="notification.not_found",
                reason="not_owner",
            )
