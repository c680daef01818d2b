"""Field encryption and blind indexes for personal data.

Every sealed value is self-describing: ``v1.<alg>.<key_id>.<nonce>.<ciphertext>`` so keys can
rotate (old key ids stay readable) and another algorithm (SM4-GCM for 密评) can be added without
touching stored rows. The column name is bound in as associated data, so a ciphertext copied
into another column does not decrypt. Lookups use an HMAC blind index with its own key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from backend.settings import get_settings

FORMAT_VERSION = "v1"
ALG_AES_GCM = "A256GCM"


class DecryptionError(Exception):
    """A sealed value was tampered with, or its key is not in the keyring."""


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Keyring:
    active_key_id: str
    data_keys: dict[str, bytes]
    index_key: bytes

    @classmethod
    def from_json(cls, text: str) -> Keyring:
        raw = json.loads(text)
        keys = {kid: _b64d(value) for kid, value in raw["keys"].items()}
        ring = cls(active_key_id=raw["active"], data_keys=keys, index_key=_b64d(raw["index_key"]))
        ring.check()
        return ring

    def to_json(self) -> str:
        return json.dumps(
            {
                "active": self.active_key_id,
                "keys": {kid: _b64e(key) for kid, key in self.data_keys.items()},
                "index_key": _b64e(self.index_key),
            },
            indent=2,
        )

    @classmethod
    def generate(cls) -> Keyring:
        return cls(active_key_id="k1", data_keys={"k1": secrets.token_bytes(32)}, index_key=secrets.token_bytes(32))

    def check(self) -> None:
        if self.active_key_id not in self.data_keys:
            raise ValueError("keyring: the active key id has no key")
        if any(len(key) != 32 for key in self.data_keys.values()) or len(self.index_key) != 32:
            raise ValueError("keyring: every key must be 32 bytes")
        if self.index_key in self.data_keys.values():
            raise ValueError("keyring: the index key must differ from every data key")

    def with_new_active_key(self) -> Keyring:
        number = 1 + max(int(kid.lstrip("k")) for kid in self.data_keys if kid.lstrip("k").isdigit())
        new_id = f"k{number}"
        return Keyring(new_id, {**self.data_keys, new_id: secrets.token_bytes(32)}, self.index_key)


def _load_or_create_keyfile(path: Path) -> Keyring:
    if path.exists():
        return Keyring.from_json(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    ring = Keyring.generate()
    # Created with 0600 from the start: the key file must never be world-readable, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(ring.to_json())
    return ring


@lru_cache(maxsize=1)
def keyring() -> Keyring:
    settings = get_settings()
    if settings.crypto.keyring_json:
        return Keyring.from_json(settings.crypto.keyring_json)
    try:
        return _load_or_create_keyfile(settings.paths.keys_file)
    except FileExistsError:  # another process created it between our check and our open
        return Keyring.from_json(settings.paths.keys_file.read_text())


def seal(plaintext: str, *, field: str, ring: Keyring | None = None) -> str:
    ring = ring or keyring()
    nonce = secrets.token_bytes(12)
    key_id = ring.active_key_id
    aad = f"{FORMAT_VERSION}|{ALG_AES_GCM}|{key_id}|{field}".encode()
    ciphertext = AESGCM(ring.data_keys[key_id]).encrypt(nonce, plaintext.encode(), aad)
    return ".".join((FORMAT_VERSION, ALG_AES_GCM, key_id, _b64e(nonce), _b64e(ciphertext)))


def unseal(sealed: str, *, field: str, ring: Keyring | None = None) -> str:
    ring = ring or keyring()
    try:
        version, alg, key_id, nonce, ciphertext = sealed.split(".")
    except ValueError as exc:
        raise DecryptionError("malformed sealed value") from exc
    if version != FORMAT_VERSION or alg != ALG_AES_GCM:
        raise DecryptionError(f"unsupported sealed value {version}/{alg}")
    key = ring.data_keys.get(key_id)
    if key is None:
        raise DecryptionError(f"unknown key id {key_id}")
    aad = f"{version}|{alg}|{key_id}|{field}".encode()
    try:
        return AESGCM(key).decrypt(_b64d(nonce), _b64d(ciphertext), aad).decode()
    except (InvalidTag, ValueError) as exc:
        raise DecryptionError("sealed value failed authentication") from exc


def sealed_key_id(sealed: str) -> str:
    return sealed.split(".")[2]


def blind_index(value: str, *, kind: str, ring: Keyring | None = None) -> str:
    """Keyed hash for equality lookup; ``kind`` separates ID numbers from phones."""
    ring = ring or keyring()
    return hmac.new(ring.index_key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def blind_indexes(values: Iterable[str], *, kind: str, ring: Keyring | None = None) -> list[str]:
    """``blind_index`` of each value. The key and the ``kind:`` prefix are absorbed once and the
    HMAC's state copied per value: a fresh HMAC per value set up the key each time, which was
    most of the cost of hashing a department file's tens of thousands of ID numbers."""
    ring = ring or keyring()
    primed = hmac.new(ring.index_key, f"{kind}:".encode(), hashlib.sha256)
    hashes = []
    for value in values:
        state = primed.copy()
        state.update(value.encode())
        hashes.append(state.hexdigest())
    return hashes
