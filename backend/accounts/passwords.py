"""Password hashing (argon2id) and the password policy (length and a deny-list, no composition rules)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from backend.lib.errors import InvalidInput

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# A dummy hash to verify against when the account does not exist, so both paths take as long.
_DUMMY_HASH = _hasher.hash("gridaid-timing-equaliser")

MIN_LENGTH = 8
MAX_LENGTH = 128
_COMMON = frozenset(
    {
        "12345678",
        "123456789",
        "1234567890",
        "password",
        "password1",
        "11111111",
        "88888888",
        "qwertyui",
        "qwerty123",
        "abc12345",
        "abcd1234",
        "a1234567",
        "iloveyou",
        "00000000",
        "admin123",
        "woaini520",
        "woaini1314",
        "1qaz2wsx",
        "zxcvbnm1",
        "p@ssw0rd",
        "gridaid123",
    }
)


def check_policy(password: str) -> None:
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise InvalidInput(
            f"Password must be {MIN_LENGTH} to {MAX_LENGTH} characters",
            f"密码长度须为 {MIN_LENGTH} 至 {MAX_LENGTH} 个字符",
            code="auth.password.length",
        )
    if password.lower() in _COMMON:
        raise InvalidInput("This password is too common", "该密码过于常见，请换一个", code="auth.password.common")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)
