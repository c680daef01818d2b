"""Rotating the data key: every sealed value stays readable and moves to the new key."""

from __future__ import annotations

import os

import pytest

from backend.keys.services import count_by_key, new_keyring_json, reseal_all
from backend.lib import crypto
from backend.settings import get_settings

pytestmark = pytest.mark.anyio


async def test_rotate_then_reseal_moves_everything_to_the_new_key(as_role, world) -> None:
    before = await count_by_key()
    assert sum(before.values()) >= 4

    os.environ["GRIDAID_KEYRING"] = new_keyring_json()
    get_settings.cache_clear()
    crypto.keyring.cache_clear()
    new_key = crypto.keyring().active_key_id
    assert new_key not in before

    # Still readable before re-sealing: each value names its own key.
    supervisor = await as_role("supervisor_a")
    detail = await supervisor.get(f"/api/v1/households/{world.households['A']}")
    assert detail.status_code == 200

    changed = await reseal_all(batch_size=3)
    assert changed == sum(before.values())
    after = await count_by_key()
    assert set(after) == {new_key}
    assert await reseal_all() == 0  # idempotent

    reveal = await supervisor.post(
        f"/api/v1/households/{world.households['A']}/reveal",
        json={"field": "member_id_number", "member_id": world.member_ids["A"], "reason": "轮换后核对"},
    )
    assert reveal.json()["value"] == world.id_numbers["A"]
