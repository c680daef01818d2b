"""Web Push: subscriptions per device, and the content-free nudge "you have N unread messages".

Push is best-effort (R-JB-07): the inbox is the record, a push only says how many unread items
wait there. A push service answering 404/410 means the subscription is gone for good; any other
failure is counted and the subscription kept. Payloads carry a count and nothing else (R-DP-11).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import anyio
import anyio.to_thread
import msgspec
from cryptography.hazmat.primitives.asymmetric import ec
from piccolo.query.functions.aggregate import Count
from pywebpush import WebPushException, webpush

from backend.audit.services import Actor, record
from backend.audit.tables import Outcome
from backend.lib.db import load_json, write_transaction
from backend.lib.errors import InvalidInput, NotFound
from backend.notifications.tables import Notification
from backend.push import vapid
from backend.push.schemas import PushPayload, SubscriptionIn
from backend.push.tables import PushSubscription
from backend.settings import get_settings

log = logging.getLogger("gridaid.push")

# One phone, one browser, one subscription; a person has a few devices, not hundreds. The cap
# keeps one account from making every notification fan out to thousands of requests.
MAX_DEVICES_PER_ACCOUNT = 10
ACCOUNT_BATCH = 200
PUSH_TITLE = "网格救助"
PUSH_TAG = "gridaid-inbox"
# RFC 8030 Topic: a push service keeps only the newest message with this topic for an offline
# device, so a phone that comes back online gets one nudge with the latest count, not ten.
PUSH_TOPIC = "gridaid-inbox"


def endpoint_hash(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode()).hexdigest()


def host_allowed(endpoint: str) -> bool:
    """Only https URLs on a configured push service: the worker POSTs wherever a subscription says."""
    try:
        parts = urlsplit(endpoint)
        host = (parts.hostname or "").lower()
    except ValueError:
        return False
    if parts.scheme != "https" or not host or parts.username or parts.password:
        return False
    return any(host == allowed or host.endswith("." + allowed) for allowed in get_settings().push.allowed_hosts)


def endpoint_host(endpoint: str) -> str:
    """For logs: the push service, never the whole endpoint (it is the device's capability URL)."""
    try:
        return urlsplit(endpoint).hostname or "?"
    except ValueError:
        return "?"


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))


def _check_keys(p256dh: str, auth: str) -> None:
    try:
        point = _b64url_decode(p256dh)
        secret = _b64url_decode(auth)
        # Raises unless the bytes are an uncompressed point on P-256: a bad key would fail every send.
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except (ValueError, binascii.Error) as exc:
        raise InvalidInput(
            "The subscription's p256dh key is not a P-256 public key",
            "推送订阅的密钥无效",
            code="push.invalid_keys",
        ) from exc
    if len(point) != 65 or len(secret) != 16:
        raise InvalidInput(
            "p256dh must be a 65-byte point and auth a 16-byte secret", "推送订阅的密钥无效", code="push.invalid_keys"
        )


@dataclass(frozen=True)
class Subscribed:
    id: UUID
    created_at: datetime
    last_success_at: datetime | None
    created: bool


async def subscribe(account_id: UUID, data: SubscriptionIn) -> Subscribed:
    """Register this device for the caller; the same endpoint is the same row, now the caller's."""
    if not host_allowed(data.endpoint):
        raise InvalidInput("This push service is not allowed", "不支持该推送服务", code="push.endpoint_not_allowed")
    _check_keys(data.keys.p256dh, data.keys.auth)
    digest = endpoint_hash(data.endpoint)
    async with write_transaction():
        created = not await PushSubscription.exists().where(PushSubscription.endpoint_hash == digest)
        rows = (
            await PushSubscription.insert(
                PushSubscription(
                    account=account_id,
                    endpoint=data.endpoint,
                    endpoint_hash=digest,
                    p256dh=data.keys.p256dh,
                    auth=data.keys.auth,
                )
            )
            .on_conflict(
                target=PushSubscription.endpoint_hash,
                action="DO UPDATE",
                # A browser that re-subscribes may have new keys; a shared phone may have a new user.
                # created_at becomes "registered at": the device cap keeps the most recently registered.
                values=[
                    PushSubscription.account,
                    PushSubscription.p256dh,
                    PushSubscription.auth,
                    (PushSubscription.failures, 0),
                    (PushSubscription.created_at, datetime.now(UTC)),
                ],
            )
            .returning(PushSubscription.id, PushSubscription.created_at, PushSubscription.last_success_at)
        )
        row = rows[0]
        await _trim_devices(account_id, keep=row["id"])
    return Subscribed(row["id"], row["created_at"], row["last_success_at"], created)


async def _trim_devices(account_id: UUID, *, keep: UUID) -> None:
    rows = (
        await PushSubscription.select(PushSubscription.id)
        .where(PushSubscription.account == account_id, PushSubscription.id != keep)
        .order_by(PushSubscription.created_at, ascending=False)
    )
    if surplus := [row["id"] for row in rows[MAX_DEVICES_PER_ACCOUNT - 1 :]]:
        await PushSubscription.delete().where(PushSubscription.id.is_in(surplus))


async def unsubscribe(actor: Actor, account_id: UUID, endpoint: str) -> None:
    digest = endpoint_hash(endpoint)
    deleted = (
        await PushSubscription.delete()
        .where(PushSubscription.endpoint_hash == digest, PushSubscription.account == account_id)
        .returning(PushSubscription.id)
    )
    if deleted:
        return
    other = await PushSubscription.select(PushSubscription.id).where(PushSubscription.endpoint_hash == digest).first()
    if other is not None:
        await record(
            "push.unsubscribe",
            actor=actor,
            object_type="push_subscription",
            object_id=str(other["id"]),
            outcome=Outcome.denied,
            detail={"reason": "not_owner"},
        )
    raise NotFound("No such push subscription", "未找到该推送订阅", code="push.subscription_not_found")


# --- delivery ---------------------------------------------------------------------------------


class Delivery(enum.Enum):
    sent = "sent"
    gone = "gone"  # 404/410: the subscription is dead, delete it
    failed = "failed"  # anything else: count it, keep it
    skipped = "skipped"  # no longer an allowed push host


@dataclass
class DeliveryReport:
    sent: int = 0
    gone: int = 0
    failed: int = 0
    skipped: int = 0
    outcomes: dict[UUID, Delivery] = field(default_factory=dict)

    def add(self, subscription_id: UUID, outcome: Delivery) -> None:
        self.outcomes[subscription_id] = outcome
        setattr(self, outcome.value, getattr(self, outcome.value) + 1)


INBOX_URL = "/#/inbox"
# Beyond this many unread items a push is about the inbox anyway: their details are not read.
_URL_LOOKUP_MAX = 20


def payload_for(unread: int, url: str = INBOX_URL) -> bytes:
    return msgspec.json.encode(
        PushPayload(title=PUSH_TITLE, body=f"您有 {unread} 条未读消息", count=unread, tag=PUSH_TAG, url=url)
    )


async def open_urls(counts: dict[UUID, int]) -> dict[UUID, str]:
    """The screen a tap should open, per account: the task when every unread item is about one task."""
    accounts = [account for account, unread in counts.items() if 0 < unread <= _URL_LOOKUP_MAX]
    if not accounts:
        return {}
    rows = await Notification.select(Notification.account, Notification.detail).where(
        Notification.account.is_in(accounts), Notification.read_at.is_null()
    )
    tasks: dict[UUID, set[UUID | None]] = {}
    for row in rows:
        detail = load_json(row["detail"])
        tasks.setdefault(_uuid(row["account"]), set()).add(_task_of(detail))
    return {
        account: f"/#/tasks/{next(iter(found))}"
        for account, found in tasks.items()
        if len(found) == 1 and None not in found
    }


def _task_of(detail: Any) -> UUID | None:
    task = detail.get("task") if isinstance(detail, dict) else None
    try:
        return UUID(task) if isinstance(task, str) else None  # only a well-formed id ever reaches a URL
    except ValueError:
        return None


def _post(endpoint: str, p256dh: str, auth: str, data: bytes) -> Delivery:
    """One blocking send (runs in a worker thread)."""
    settings = get_settings().push
    try:
        webpush(
            {"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}},
            data=data.decode(),
            vapid_private_key=vapid.application_server_key(),
            vapid_claims=vapid.claims(),  # fresh each call: pywebpush writes aud/exp into it
            content_encoding="aes128gcm",
            ttl=settings.ttl_s,
            timeout=settings.timeout_s,
            headers={"Topic": PUSH_TOPIC, "Urgency": "normal"},
        )
    except WebPushException as exc:
        status = exc.status_code
        if status in (404, 410):
            return Delivery.gone
        log.warning("push to %s failed: HTTP %s", endpoint_host(endpoint), status)
        return Delivery.failed
    except Exception as exc:  # a network error, a timeout, a key the library rejects: one device, not the job
        log.warning("push to %s failed: %s", endpoint_host(endpoint), type(exc).__name__)
        return Delivery.failed
    return Delivery.sent


async def unread_counts(account_ids: Sequence[UUID]) -> dict[UUID, int]:
    rows = (
        await Notification.select(Notification.account, Count(alias="unread"))
        .where(Notification.account.is_in(list(account_ids)), Notification.read_at.is_null())
        .group_by(Notification.account)
    )
    return {_uuid(row["account"]): row["unread"] for row in rows if row["unread"]}


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def _account_uuids(account_ids: Iterable[UUID | str]) -> list[UUID]:
    out = []
    for value in account_ids:
        try:
            out.append(_uuid(value))
        except ValueError:
            log.warning("push: skipping a malformed account id")
    return list(dict.fromkeys(out))


async def send_inbox_nudges(account_ids: Iterable[UUID | str]) -> DeliveryReport:
    """Tell each account's devices how many unread inbox items wait; nothing for those with none.

    Safe to repeat: a second run sends the same count again (a harmless duplicate nudge), and its
    bookkeeping (delete the gone, count the failed) finds rows already handled and does nothing.
    """
    report = DeliveryReport()
    accounts = _account_uuids(account_ids)
    # Load (or create) the key here, once: a broken key fails the job, not every subscription.
    vapid.application_server_key()
    for start in range(0, len(accounts), ACCOUNT_BATCH):
        counts = await unread_counts(accounts[start : start + ACCOUNT_BATCH])
        if not counts:
            continue
        subscriptions = await PushSubscription.select(
            PushSubscription.id,
            PushSubscription.account,
            PushSubscription.endpoint,
            PushSubscription.p256dh,
            PushSubscription.auth,
        ).where(PushSubscription.account.is_in(list(counts)))
        batch = DeliveryReport()
        await _send_all(subscriptions, counts, await open_urls(counts), batch)
        await _record(batch)
        for subscription_id, outcome in batch.outcomes.items():
            report.add(subscription_id, outcome)
    return report


async def _send_all(
    subscriptions: list[dict[str, Any]], counts: dict[UUID, int], urls: dict[UUID, str], report: DeliveryReport
) -> None:
    limiter = anyio.CapacityLimiter(get_settings().push.concurrency)

    async def send(row: dict[str, Any]) -> None:
        if not host_allowed(row["endpoint"]):
            report.add(row["id"], Delivery.skipped)
            return
        account = _uuid(row["account"])
        data = payload_for(counts[account], urls.get(account, INBOX_URL))
        post = partial(_post, row["endpoint"], row["p256dh"], row["auth"], data)
        report.add(row["id"], await anyio.to_thread.run_sync(post, limiter=limiter))

    async with anyio.create_task_group() as group:
        for row in subscriptions:
            group.start_soon(send, row)


async def _record(report: DeliveryReport) -> None:
    def ids(outcome: Delivery) -> list[UUID]:
        return [sid for sid, result in report.outcomes.items() if result is outcome]

    if gone := ids(Delivery.gone):
        await PushSubscription.delete().where(PushSubscription.id.is_in(gone))
    if sent := ids(Delivery.sent):
        await PushSubscription.update(
            {PushSubscription.last_success_at: datetime.now(UTC), PushSubscription.failures: 0}
        ).where(PushSubscription.id.is_in(sent))
    if failed := ids(Delivery.failed):
        await PushSubscription.update({PushSubscription.failures: PushSubscription.failures + 1}).where(
            PushSubscription.id.is_in(failed)
        )
