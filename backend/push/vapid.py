"""The application server's VAPID key: created once, then the same key for as long as we run.

Browsers bind a subscription to the public key they were given (``applicationServerKey``); a new
key silently orphans every subscription. Production sets ``VAPID_PRIVATE_KEY``; the embedded
default creates ``var/vapid_private.pem`` on first use and reads it ever after.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid

from backend.settings import get_settings


def _from_text(text: str) -> Vapid:
    text = text.replace("\\n", "\n")  # a PEM kept on one line in an env file
    if "-----BEGIN" in text:
        return Vapid.from_pem(text.strip().encode())
    return Vapid.from_string(text.strip())


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def _create_key_file(path: Path) -> None:
    """Write a fresh key to ``path`` unless one is there; readers never see a half-written file.

    The key goes to a private temporary file first (0600 from its first byte), then is linked
    into place: ``link`` fails if another process won the race, and then we use its key.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(_private_pem(ec.generate_private_key(ec.SECP256R1())))
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@lru_cache(maxsize=1)
def application_server_key() -> Vapid:
    settings = get_settings()
    if settings.push.vapid_private_key:
        return _from_text(settings.push.vapid_private_key)
    path = settings.paths.vapid_key_file
    if not path.exists():
        _create_key_file(path)
    return _from_text(path.read_text())


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def public_key_b64() -> str:
    """The uncompressed P-256 point, base64url without padding: the PWA's ``applicationServerKey``."""
    return b64url(
        application_server_key().public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )


def claims() -> dict[str, str | int]:
    """A fresh claims dict for each send: pywebpush writes ``aud`` and ``exp`` into the one it gets."""
    return {"sub": get_settings().push.vapid_subject}
