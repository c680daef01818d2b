"""Login sessions: opaque bearer tokens, stored only as SHA-256, revocable at any moment.

Access tokens are short-lived; refresh tokens outlive a long offline spell so a phone that comes
back after days refreshes and flushes its outbox without asking the worker to log in again.
Refresh rotates both tokens. Presenting a refresh token that was already rotated away means it
leaked, and ends the session, except within a short grace window: a phone whose refresh answer
was lost on a bad network retries with the old token and must not be logged out for it.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from backend.accounts.tables import Account, AuthSession
from backend.lib.db import as_utc, write_transaction
from backend.settings import get_settings

log = logging.getLogger(__name__)

ACCESS_PREFIX = "gat_"
REFRESH_PREFIX = "grt_"
REFRESH_RETRY_GRACE = timedelta(minutes=2)
# Touching last_seen_at on every request would make every read a write; once a minute is plenty.
_LAST_SEEN_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedTokens:
    session_id: UUID
    access_token: str
    refresh_token: str
    access_expires_at: datetime
    refresh_expires_at: datetime


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_pair(now: datetime) -> tuple[str, str, datetime, datetime]:
    settings = get_settings().auth
    return (
        ACCESS_PREFIX + secrets.token_urlsafe(32),
        REFRESH_PREFIX + secrets.token_urlsafe(32),
        now + timedelta(seconds=settings.access_ttl_s),
        now + timedelta(seconds=settings.refresh_ttl_s),
    )


async def create_session(account_id: UUID, *, mfa_pending: bool, client: str, user_agent: str) -> IssuedTokens:
    now = datetime.now(UTC)
    access, refresh, access_exp, refresh_exp = _new_pair(now)
    session_id = uuid4()
    await AuthSession.insert(
        AuthSession(
            id=session_id,
            account=account_id,
            access_hash=token_digest(access),
            access_expires_at=access_exp,
            refresh_hash=token_digest(refresh),
            refresh_expires_at=refresh_exp,
            mfa_pending=mfa_pending,
            client=client,
            user_agent=user_agent[:255],
        )
    )
    return IssuedTokens(session_id, access, refresh, access_exp, refresh_exp)


@dataclass(frozen=True)
class LiveSession:
    session_id: UUID
    account_id: UUID
    mfa_pending: bool


async def resolve_access_token(token: str) -> LiveSession | None:
    if not token.startswith(ACCESS_PREFIX):
        return None
    now = datetime.now(UTC)
    row = (
        await AuthSession.select(
            AuthSession.id,
            AuthSession.account,
            AuthSession.mfa_pending,
            AuthSession.access_expires_at,
            AuthSession.last_seen_at,
            AuthSession.account.is_active.as_alias("account_active"),
        )
        .where(AuthSession.access_hash == token_digest(token), AuthSession.revoked_at.is_null())
        .first()
    )
    if row is None or not row["account_active"] or as_utc(row["access_expires_at"]) <= now:
        return None
    await touch(row["id"], as_utc(row["last_seen_at"]), now)
    return LiveSession(session_id=row["id"], account_id=row["account"], mfa_pending=row["mfa_pending"])


async def touch(session_id: UUID, last_seen_at: datetime, now: datetime) -> None:
    """Note that the session was used; at most once a minute, so reads stay reads.

    Not in the request's path: the sessions to touch are collected and written by one UPDATE in the
    background, so a morning rush of phones (every session stale after the night) costs a handful
    of writes, not one per request. ``last_seen_at`` is informational; a touch lost in a crash is
    harmless."""
    if now - last_seen_at <= _LAST_SEEN_RESOLUTION:
        return
    _touches.pending[session_id] = now
    loop = asyncio.get_running_loop()
    if _touches.task is None or _touches.task.done() or _touches.task.get_loop() is not loop:
        # A context of its own: never inside whatever transaction the caller may be in.
        _touches.task = loop.create_task(_flush_touches(), context=contextvars.Context())


class _Touches:
    def __init__(self) -> None:
        self.pending: dict[UUID, datetime] = {}
        self.task: asyncio.Task[None] | None = None


_touches = _Touches()


async def _flush_touches() -> None:
    """Write what is pending; touches arriving meanwhile go in the next round."""
    while _touches.pending:
        batch, _touches.pending = _touches.pending, {}
        try:
            await AuthSession.update({AuthSession.last_seen_at: max(batch.values())}).where(
                AuthSession.id.is_in(list(batch))
            )
        except Exception:
            log.warning("could not record %d sessions' last use", len(batch), exc_info=True)


async def flush_touches() -> None:
    """Wait for the pending touches to be written (tests, shutdown)."""
    task = _touches.task
    if task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop():
        await task
    await _flush_touches()


class RefreshRejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def refresh_session(refresh_token: str) -> IssuedTokens:
    now = datetime.now(UTC)
    digest = token_digest(refresh_token)
    async with write_transaction():
        row = await AuthSession.select().where(AuthSession.refresh_hash == digest).first()
        reuse = False
        if row is None:
            row = await AuthSession.select().where(AuthSession.previous_refresh_hash == digest).first()
            if row is None:
                raise RefreshRejected("unknown")
            reuse = row["rotated_at"] is None or now - as_utc(row["rotated_at"]) > REFRESH_RETRY_GRACE
        if row["revoked_at"] is not None:
            raise RefreshRejected("revoked")
        if as_utc(row["refresh_expires_at"]) <= now:
            raise RefreshRejected("expired")
        account = await Account.select(Account.is_active).where(Account.id == row["account"]).first()
        if account is None or not account["is_active"]:
            raise RefreshRejected("account_disabled")
        if reuse:
            await _revoke(row["id"], "refresh_reuse", now)
        else:
            tokens = await _rotate(row, digest, now)
    # Raised after the commit: raising inside the transaction would roll the revocation back.
    if reuse:
        raise RefreshRejected("reused")
    return tokens


async def _rotate(row: dict[str, Any], presented_digest: str, now: datetime) -> IssuedTokens:
    access, refresh, access_exp, refresh_exp = _new_pair(now)
    await AuthSession.update(
        {
            AuthSession.access_hash: token_digest(access),
            AuthSession.access_expires_at: access_exp,
            AuthSession.refresh_hash: token_digest(refresh),
            AuthSession.refresh_expires_at: refresh_exp,
            # The token the phone held: within the grace window it may come back once more.
            AuthSession.previous_refresh_hash: presented_digest,
            AuthSession.rotated_at: now,
            AuthSession.last_seen_at: now,
        }
    ).where(AuthSession.id == row["id"])
    return IssuedTokens(row["id"], access, refresh, access_exp, refresh_exp)


async def _revoke(session_id: UUID, reason: str, now: datetime) -> None:
    await AuthSession.update({AuthSession.revoked_at: now, AuthSession.revoke_reason: reason}).where(
        AuthSession.id == session_id, AuthSession.revoked_at.is_null()
    )


async def revoke_session(session_id: UUID, reason: str) -> None:
    await _revoke(session_id, reason, datetime.now(UTC))


async def revoke_all_sessions(account_id: UUID, reason: str) -> int:
    rows = (
        await AuthSession.update({AuthSession.revoked_at: datetime.now(UTC), AuthSession.revoke_reason: reason})
        .where(AuthSession.account == account_id, AuthSession.revoked_at.is_null())
        .returning(AuthSession.id)
    )
    return len(rows)


async def clear_mfa_pending(session_id: UUID) -> None:
    await AuthSession.update({AuthSession.mfa_pending: False}).where(AuthSession.id == session_id)
