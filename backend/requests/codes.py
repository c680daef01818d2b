"""One-time sign-up codes by SMS: six digits, ten minutes, five tries, one use; only a keyed hash is kept."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from backend.lib import pii
from backend.lib.crypto import blind_index
from backend.lib.db import as_utc, write_transaction
from backend.lib.errors import InvalidInput, TooManyRequests
from backend.push.sms import LoggingSmsSender, SmsSender
from backend.requests.tables import PhoneCode

CODE_TTL = timedelta(minutes=10)
MAX_ATTEMPTS = 5
RESEND_AFTER = timedelta(seconds=60)
CODES_PER_DAY = 10

_sender: SmsSender = LoggingSmsSender()


def use_sender(sender: SmsSender) -> None:
    """Production wires its SMS gateway here; the embedded default logs the text."""
    global _sender
    _sender = sender


def _hash(phone_index: str, code: str) -> str:
    return blind_index(f"{phone_index}:{code}", kind="sms_code")


def _phone(phone: str) -> tuple[str, str]:
    try:
        normal = pii.normalize_phone(phone)
    except pii.InvalidIdentifier as exc:
        raise InvalidInput(str(exc), "手机号格式不正确", code=exc.code) from exc
    return normal, pii.phone_index(normal)


async def send_code(phone: str, *, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    normal, index = _phone(phone)
    recent = await PhoneCode.select(PhoneCode.created_at).where(
        PhoneCode.phone_index == index, PhoneCode.created_at > now - timedelta(days=1)
    )
    newest = max((as_utc(row["created_at"]) for row in recent), default=None)
    if len(recent) >= CODES_PER_DAY or (newest is not None and now - newest < RESEND_AFTER):
        raise TooManyRequests("Too many codes for this number; wait a minute", "验证码发送过于频繁，请稍后再试")
    code = f"{secrets.randbelow(10**6):06d}"
    await PhoneCode.insert(PhoneCode(phone_index=index, code_hash=_hash(index, code), expires_at=now + CODE_TTL))
    # The text holds the code and nothing else about the person.
    await _sender.send(normal, f"【网格救助】验证码 {code}，10 分钟内有效。如非本人操作请忽略。")


async def check_code(phone: str, code: str, *, now: datetime | None = None) -> str:
    """Consume a valid code for this phone; returns the normalised phone. Wrong codes count as tries."""
    now = now or datetime.now(UTC)
    normal, index = _phone(phone)
    async with write_transaction():
        latest = (
            await PhoneCode.select()
            .where(PhoneCode.phone_index == index, PhoneCode.used_at.is_null())
            .order_by(PhoneCode.id, ascending=False)
            .first()
        )
        usable = latest is not None and as_utc(latest["expires_at"]) > now and latest["attempts"] < MAX_ATTEMPTS
        if latest is not None and usable and secrets.compare_digest(latest["code_hash"], _hash(index, code)):
            await PhoneCode.update({PhoneCode.used_at: now}).where(PhoneCode.id == latest["id"])
            return normal
        if latest is not None:
            await PhoneCode.update({PhoneCode.attempts: PhoneCode.attempts + 1}).where(PhoneCode.id == latest["id"])
    raise InvalidInput("The code is wrong or has expired", "验证码错误或已过期", code="signup.code_invalid")
