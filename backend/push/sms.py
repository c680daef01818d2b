"""SMS fallback: a text for work nobody has seen, when push could not reach the person.

Push does not reach everyone (no Google services on many Chinese Android phones, iOS without a
Home Screen install, WeChat's webview). A task notification still unread after
``SMS_FALLBACK_AFTER_MINUTES``, whose account had no push delivered since it was written, earns
one SMS per account per window, never two for the same notification: ``sms_sent`` is claimed
(unique per notification) before the text goes out, so a retry or a second worker finds it taken.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from piccolo.columns.combination import Or, Where

from backend.accounts.tables import Account
from backend.lib import pii
from backend.lib.crypto import DecryptionError
from backend.notifications.tables import Notification
from backend.push.tables import PushSubscription, SmsSent
from backend.settings import get_settings

log = logging.getLogger("gridaid.sms")

ACCOUNT_BATCH = 500


class SmsSender(Protocol):
    async def send(self, phone: str, text: str) -> None:
        """Hand one text to the gateway; raise if it was not accepted."""


class LoggingSmsSender:
    """The embedded default (no gateway): the text goes to the log, the phone masked."""

    async def send(self, phone: str, text: str) -> None:
        log.info("sms to %s: %s", pii.mask_phone(phone), text)


def sms_text(count: int) -> str:
    # No names, addresses or task details: an SMS is read on a lock screen and kept by carriers.
    return f"您有 {count} 条待处理的走访任务，请打开网格救助查看"


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def _kind_filter(prefixes: tuple[str, ...]) -> Where | Or:
    clauses = [Notification.kind.like(f"{prefix}%") for prefix in prefixes]
    combined: Where | Or = clauses[0]
    for clause in clauses[1:]:
        combined = Or(combined, clause)
    return combined


async def _due_notifications(now: datetime) -> dict[UUID, list[tuple[UUID, datetime]]]:
    """Unread, old enough, recent enough, of an SMS-worthy kind, and not texted about yet."""
    settings = get_settings().push
    if not settings.sms_kind_prefixes:
        return {}
    rows = await Notification.select(
        Notification.id, Notification.account, Notification.kind, Notification.created_at
    ).where(
        Notification.read_at.is_null(),
        Notification.created_at < now - timedelta(minutes=settings.sms_after_minutes),
        Notification.created_at >= now - timedelta(hours=settings.sms_lookback_hours),
        _kind_filter(settings.sms_kind_prefixes),
        Notification.id.not_in(SmsSent.select(SmsSent.notification).where(SmsSent.notification.is_not_null())),
    )
    due: dict[UUID, list[tuple[UUID, datetime]]] = defaultdict(list)
    for row in rows:
        # LIKE treats "_" as a wildcard; the prefix test is the exact one.
        if row["kind"].startswith(settings.sms_kind_prefixes):
            due[_uuid(row["account"])].append((_uuid(row["id"]), row["created_at"]))
    return due


async def _last_push_success(accounts: list[UUID]) -> dict[UUID, datetime]:
    rows = await PushSubscription.select(PushSubscription.account, PushSubscription.last_success_at).where(
        PushSubscription.account.is_in(accounts), PushSubscription.last_success_at.is_not_null()
    )
    latest: dict[UUID, datetime] = {}
    for row in rows:
        account = _uuid(row["account"])
        if account not in latest or row["last_success_at"] > latest[account]:
            latest[account] = row["last_success_at"]
    return latest


async def _recently_texted(accounts: list[UUID], since: datetime) -> set[UUID]:
    rows = await SmsSent.select(SmsSent.notification.account.as_alias("account")).where(
        SmsSent.sent_at >= since, SmsSent.notification.account.is_in(accounts)
    )
    return {_uuid(row["account"]) for row in rows}


async def _phones(accounts: list[UUID]) -> dict[UUID, str]:
    rows = await Account.select(Account.id, Account.phone_sealed).where(
        Account.id.is_in(accounts), Account.is_active.eq(True), Account.phone_sealed.is_not_null()
    )
    return {_uuid(row["id"]): row["phone_sealed"] for row in rows}


async def send_fallback_sms(sender: SmsSender, *, now: datetime | None = None) -> int:
    """Text every account with due notifications that push did not reach; returns SMS sent."""
    now = now or datetime.now(UTC)
    quiet_since = now - timedelta(minutes=get_settings().push.sms_after_minutes)
    due = await _due_notifications(now)
    sent = 0
    accounts = list(due)
    for start in range(0, len(accounts), ACCOUNT_BATCH):
        batch = accounts[start : start + ACCOUNT_BATCH]
        reached = await _last_push_success(batch)
        # One SMS per account per window: anything due meanwhile waits for the next window.
        texted = await _recently_texted(batch, quiet_since)
        phones = await _phones(batch)
        for account in batch:
            if account in texted or account not in phones:
                continue
            last_push = reached.get(account)
            unseen = [nid for nid, created in due[account] if last_push is None or last_push < created]
            if unseen and await _text(sender, phones[account], unseen):
                sent += 1
    return sent


async def _text(sender: SmsSender, phone_sealed: str, notification_ids: list[UUID]) -> bool:
    try:
        phone = pii.unseal_phone(phone_sealed)
    except DecryptionError:
        log.error("sms fallback: an account's phone does not decrypt; skipped")
        return False
    claimed = (
        await SmsSent.insert(*[SmsSent(notification=nid) for nid in notification_ids])
        .on_conflict(action="DO NOTHING")
        .returning(SmsSent.notification)
    )
    if not claimed:
        return False  # another run got there first
    try:
        await sender.send(phone, sms_text(len(claimed)))
    except Exception as exc:
        # Not sent: release the claim so the next run tries again.
        log.warning("sms fallback: the gateway refused a text: %s", type(exc).__name__)
        await SmsSent.delete().where(SmsSent.notification.is_in([row["notification"] for row in claimed]))
        return False
    return True
