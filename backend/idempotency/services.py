"""Idempotent device and system POSTs (the ODK Central rule).

The sender supplies ``Idempotency-Key``. The first request with a key runs and its answer is
stored; the same key with the same body gets the stored answer again; the same key with a
different body is a conflict (409), never a second effect.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from backend.idempotency.tables import IdempotencyRecord
from backend.lib.errors import Conflict, InvalidInput

MAX_KEY_LENGTH = 128


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: bytes
    replayed: bool = False


def check_key(key: str | None) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii():
        raise InvalidInput(
            "Send an Idempotency-Key header (1–128 ASCII characters)",
            "请在请求头中提供 Idempotency-Key（1–128 个 ASCII 字符）",
            code="idempotency.key_required",
        )
    return key


async def once(scope: str, key: str, body: bytes, run: Callable[[], Awaitable[tuple[int, bytes]]]) -> Answer:
    digest = hashlib.sha256(body).hexdigest()
    stored = await _stored(scope, key)
    if stored is not None:
        return _replay(stored, digest)
    status_code, response = await run()
    try:
        await IdempotencyRecord.insert(
            IdempotencyRecord(
                scope=scope, key=key, request_hash=digest, status_code=status_code, response_body=response.decode()
            )
        )
    except Exception:
        stored = await _stored(scope, key)
        if stored is None:
            raise
        return _replay(stored, digest)
    return Answer(status_code, response)


async def _stored(scope: str, key: str) -> dict[str, object] | None:
    return (
        await IdempotencyRecord.select().where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key).first()
    )


def _replay(stored: dict[str, object], digest: str) -> Answer:
    if stored["request_hash"] != digest:
        raise Conflict(
            "This Idempotency-Key was used for a different request",
            "该 Idempotency-Key 已用于另一个不同的请求",
            code="idempotency.key_reused",
        )
    return Answer(int(stored["status_code"]), str(stored["response_body"]).encode(), replayed=True)  # type: ignore[call-overload]
