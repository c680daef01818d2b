"""TOTP second factor (RFC 6238 via pyotp). The secret is sealed like any other secret at rest."""

from __future__ import annotations

import time

import pyotp

from backend.lib import crypto
from backend.settings import get_settings

_FIELD = "totp_secret"
STEP_SECONDS = 30


def new_secret() -> str:
    return pyotp.random_base32()


def seal_secret(secret: str) -> str:
    return crypto.seal(secret, field=_FIELD)


def provisioning_uri(secret: str, account_name: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account_name, issuer_name=get_settings().auth.totp_issuer)


def accepted_step(sealed_secret: str, code: str, last_step: int | None, now: float | None = None) -> int | None:
    """The time step ``code`` matches (±1 step for clock drift), or None. A step is never reused."""
    if not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(crypto.unseal(sealed_secret, field=_FIELD))
    now = time.time() if now is None else now
    current = int(now // STEP_SECONDS)
    for step in (current - 1, current, current + 1):
        if last_step is not None and step <= last_step:
            continue
        if totp.verify(code, for_time=step * STEP_SECONDS, valid_window=0):
            return step
    return None
