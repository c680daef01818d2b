"""Key rotation for sealed personal data: every sealed column is listed here, once.

Rotating means: add a new data key and make it active (new writes use it at once), re-seal
existing values under it (``reseal_all``), and retire the old key when ``count_by_key`` shows
nothing uses it any more. Reads work throughout, because each value names its own key.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from typing import Any

from piccolo.table import Table

from backend.accounts.tables import Account
from backend.households.tables import Household, HouseholdMember
from backend.lib import crypto
from backend.lib.db import write_transaction
from backend.settings import get_settings


@dataclass(frozen=True)
class SealedColumn:
    table: type[Table]
    column: str
    field: str  # the associated-data label the value was sealed with


SEALED_COLUMNS = (
    SealedColumn(Account, "phone_sealed", "phone"),
    SealedColumn(Account, "totp_secret_sealed", "totp_secret"),
    SealedColumn(Household, "phone_sealed", "phone"),
    SealedColumn(HouseholdMember, "id_number_sealed", "id_number"),
)


async def count_by_key() -> dict[str, int]:
    counts: Counter[str] = Counter()
    for sealed in SEALED_COLUMNS:
        column = sealed.table._meta.get_column_by_name(sealed.column)
        for row in await sealed.table.select(column).where(column.is_not_null()):
            counts[crypto.sealed_key_id(row[sealed.column])] += 1
    return dict(counts)


async def reseal_all(batch_size: int = 500) -> int:
    """Re-seal every value not yet under the active key. Safe to interrupt and run again."""
    ring = crypto.keyring()
    prefix = f"{crypto.FORMAT_VERSION}.{crypto.ALG_AES_GCM}.{ring.active_key_id}."
    changed = 0
    for sealed in SEALED_COLUMNS:
        table = sealed.table
        column = table._meta.get_column_by_name(sealed.column)
        pk = table._meta.primary_key
        while True:
            rows: list[dict[str, Any]] = (
                await table.select(pk, column)
                .where(column.is_not_null(), column.not_like(prefix + "%"))
                .limit(batch_size)
            )
            if not rows:
                break
            async with write_transaction():
                for row in rows:
                    value = crypto.unseal(row[sealed.column], field=sealed.field, ring=ring)
                    await table.update({column: crypto.seal(value, field=sealed.field, ring=ring)}).where(
                        pk == row[pk._meta.name]
                    )
            changed += len(rows)
    return changed


def rotate_key_file() -> str:
    """Add a new active data key to the embedded key file; returns its id. (Env keyrings: ``new_keyring_json``.)"""
    settings = get_settings()
    if settings.crypto.keyring_json:
        raise RuntimeError("the keyring comes from GRIDAID_KEYRING: put new_keyring_json() in your secret store")
    path = settings.paths.keys_file
    rotated = crypto.keyring().with_new_active_key()
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(rotated.to_json())
    temporary.replace(path)  # atomic: a crash leaves the old or the new file, never half of one
    crypto.keyring.cache_clear()
    return rotated.active_key_id


def new_keyring_json() -> str:
    return crypto.keyring().with_new_active_key().to_json()
