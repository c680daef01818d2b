"""Personal identifiers: validation (GB 11643 ID numbers, phones), normalisation and masking."""

from __future__ import annotations

import operator
import re
from collections.abc import Sequence

import numpy as np

from backend.lib import crypto

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"
_ID_ZERO_OFFSET = ord("0") * sum(_ID_WEIGHTS)
_ID_WEIGHT_ARRAY = np.array(_ID_WEIGHTS, dtype=np.int64)
_ID_CHECK_BYTES = np.frombuffer(_ID_CHECK_CHARS.encode(), dtype=np.uint8)
_ID_SHAPE = re.compile(r"^\d{17}[\dX]$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{9,11}$")


class InvalidIdentifier(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def id_check_char(first17: str) -> str:
    if len(first17) == 17 and first17.isascii() and first17.isdigit():
        # Bytes are already small ints: weigh the character codes and take off what "0" (48) adds.
        total = sum(map(operator.mul, first17.encode(), _ID_WEIGHTS)) - _ID_ZERO_OFFSET
    else:  # other digits (the shape check's \d matches them too) or a wrong length: the plain way, with its errors
        total = sum(int(digit) * weight for digit, weight in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK_CHARS[total % 11]


def normalize_id_number(raw: str) -> str:
    """Return the canonical 18-character ID number or raise ``InvalidIdentifier``."""
    value = raw.strip().upper()
    if not _ID_SHAPE.match(value):
        raise InvalidIdentifier("pii.id_number.format", "ID number must be 17 digits and a digit or X")
    if id_check_char(value[:17]) != value[17]:
        raise InvalidIdentifier("pii.id_number.checksum", "ID number check digit does not match")
    month, day = int(value[10:12]), int(value[12:14])
    if not (1 <= month <= 12 and 1 <= day <= 31):
        raise InvalidIdentifier("pii.id_number.birthdate", "ID number birth date is not a date")
    return value


def normalize_id_numbers(raws: Sequence[str]) -> list[str | InvalidIdentifier]:
    """``normalize_id_number`` of each value: the canonical number, or the error it raises.

    A file names tens of thousands of people: their numbers are checked as one array (shape,
    check digit, birth month and day) instead of one by one. Anything the array check does not
    pass, a wrong length or a non-ASCII character included, goes through ``normalize_id_number``,
    so the answer and its error are always the one-by-one answer."""
    values = [raw.strip().upper() for raw in raws]
    passed = np.zeros(len(values), dtype=bool)
    fixed = [n for n, value in enumerate(values) if len(value) == 18 and value.isascii()]
    if fixed:
        cells = np.frombuffer("".join(values[n] for n in fixed).encode(), dtype=np.uint8).reshape(-1, 18)
        digits = cells[:, :17].astype(np.int64) - ord("0")
        check = _ID_CHECK_BYTES[(digits @ _ID_WEIGHT_ARRAY) % 11]
        month, day = digits[:, 10] * 10 + digits[:, 11], digits[:, 12] * 10 + digits[:, 13]
        passed[fixed] = (
            ((digits >= 0) & (digits <= 9)).all(axis=1)
            & (check == cells[:, 17])
            & (month >= 1)
            & (month <= 12)
            & (day >= 1)
            & (day <= 31)
        )
    answers: list[str | InvalidIdentifier] = []
    for value, ok in zip(values, passed.tolist(), strict=True):
        if ok:
            answers.append(value)
            continue
        try:
            answers.append(normalize_id_number(value))
        except InvalidIdentifier as exc:
            answers.append(exc)
    return answers


def normalize_phone(raw: str) -> str:
    value = re.sub(r"[\s\-()]", "", raw)
    value = value.removeprefix("+86").removeprefix("0086")
    if _MOBILE.match(value) or _LANDLINE.match(value):
        return value
    raise InvalidIdentifier("pii.phone.format", "phone must be an 11-digit mobile or an area-coded landline")


def mask_id_number(value: str) -> str:
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def mask_phone(value: str) -> str:
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_name(value: str) -> str:
    """张三丰 → 张**: enough to recognise a family on a visit list, not to identify a stranger."""
    return value[:1] + "*" * (len(value) - 1) if value else value


# Sealing helpers: the one way personal identifiers go into the database.


def seal_id_number(value: str) -> tuple[str, str]:
    canonical = normalize_id_number(value)
    return crypto.seal(canonical, field="id_number"), crypto.blind_index(canonical, kind="id_number")


def seal_phone(value: str) -> tuple[str, str]:
    canonical = normalize_phone(value)
    return crypto.seal(canonical, field="phone"), crypto.blind_index(canonical, kind="phone")


def id_number_index(value: str) -> str:
    return crypto.blind_index(normalize_id_number(value), kind="id_number")


def phone_index(value: str) -> str:
    return crypto.blind_index(normalize_phone(value), kind="phone")


def unseal_id_number(sealed: str) -> str:
    return crypto.unseal(sealed, field="id_number")


def unseal_phone(sealed: str) -> str:
    return crypto.unseal(sealed, field="phone")
