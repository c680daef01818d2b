from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from backend.lib.schema import InputStruct, OutputStruct

# Real endpoints are 150–400 characters (FCM, Mozilla autopush, Apple, WNS); leave room, not a megabyte.
ENDPOINT_MAX = 1024
_B64URL = "^[A-Za-z0-9_-]+={0,2}$"

Endpoint = Annotated[str, msgspec.Meta(min_length=12, max_length=ENDPOINT_MAX, pattern="^https://")]


class SubscriptionKeysIn(InputStruct):
    # An uncompressed P-256 point (65 bytes) and a 16-byte secret, base64url: services checks the bytes.
    p256dh: Annotated[str, msgspec.Meta(min_length=86, max_length=90, pattern=_B64URL)]
    auth: Annotated[str, msgspec.Meta(min_length=22, max_length=24, pattern=_B64URL)]


class SubscriptionIn(InputStruct):
    """The browser's ``PushSubscription.toJSON()``, as the PWA posts it."""

    endpoint: Endpoint
    keys: SubscriptionKeysIn
    # Milliseconds since the epoch, or null (what every browser sends today). Accepted, not stored:
    # an expired subscription shows itself as 404/410 and is deleted then.
    expiration_time: float | None = msgspec.field(default=None, name="expirationTime")


class UnsubscribeIn(InputStruct):
    endpoint: Endpoint


class SubscriptionOut(OutputStruct):
    id: UUID
    created_at: datetime
    last_success_at: datetime | None


class VapidKeyOut(OutputStruct):
    public_key: str


class PushPayload(msgspec.Struct, kw_only=True):
    """Everything a push says: a count, and which screen to open. No names, ID numbers, addresses or
    task details (R-DP-11): a task's random id at most; the app fetches the rest when opened."""

    title: str
    body: str
    count: int
    tag: str
    # Where a tap opens the app: "/#/tasks/<id>" when every unread item is about one task, else "/#/inbox".
    url: str
