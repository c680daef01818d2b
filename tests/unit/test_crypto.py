"""Field encryption: authenticated, bound to its column, rotatable; blind index keyed separately."""

from __future__ import annotations

import pytest

from backend.lib import crypto


@pytest.fixture
def ring() -> crypto.Keyring:
    return crypto.Keyring.generate()


def test_round_trip_and_fresh_nonce(ring: crypto.Keyring) -> None:
    first = crypto.seal("320402198001011234", field="id_number", ring=ring)
    second = crypto.seal("320402198001011234", field="id_number", ring=ring)
    assert first != second, "the same value must not encrypt to the same text"
    assert first.startswith("v1.A256GCM.k1.")
    assert "320402198001011234" not in first
    assert crypto.unseal(first, field="id_number", ring=ring) == "320402198001011234"


def test_tampering_is_an_error_not_garbage(ring: crypto.Keyring) -> None:
    sealed = crypto.seal("13812345678", field="phone", ring=ring)
    head, tail = sealed.rsplit(".", 1)
    flipped = head + "." + ("A" if tail[0] != "A" else "B") + tail[1:]
    with pytest.raises(crypto.DecryptionError):
        crypto.unseal(flipped, field="phone", ring=ring)


def test_a_value_moved_to_another_column_does_not_decrypt(ring: crypto.Keyring) -> None:
    sealed = crypto.seal("13812345678", field="phone", ring=ring)
    with pytest.raises(crypto.DecryptionError):
        crypto.unseal(sealed, field="id_number", ring=ring)


def test_rotation_keeps_old_values_readable(ring: crypto.Keyring) -> None:
    old = crypto.seal("secret", field="phone", ring=ring)
    rotated = ring.with_new_active_key()
    new = crypto.seal("secret", field="phone", ring=rotated)
    assert crypto.sealed_key_id(new) == "k2"
    assert crypto.unseal(old, field="phone", ring=rotated) == "secret"
    retired = crypto.Keyring("k2", {"k2": rotated.data_keys["k2"]}, rotated.index_key)
    with pytest.raises(crypto.DecryptionError):
        crypto.unseal(old, field="phone", ring=retired)


def test_blind_index_is_keyed_and_kind_separated(ring: crypto.Keyring) -> None:
    other = crypto.Keyring.generate()
    value = "13812345678"
    assert crypto.blind_index(value, kind="phone", ring=ring) == crypto.blind_index(value, kind="phone", ring=ring)
    assert crypto.blind_index(value, kind="phone", ring=ring) != crypto.blind_index(value, kind="phone", ring=other)
    assert crypto.blind_index(value, kind="phone", ring=ring) != crypto.blind_index(value, kind="id_number", ring=ring)


def test_keyring_refuses_an_index_key_equal_to_a_data_key(ring: crypto.Keyring) -> None:
    bad = crypto.Keyring("k1", {"k1": ring.index_key}, ring.index_key)
    with pytest.raises(ValueError, match="index key"):
        bad.check()


def test_keyring_json_round_trip(ring: crypto.Keyring) -> None:
    assert crypto.Keyring.from_json(ring.to_json()) == ring


def test_blind_indexes_of_many_values_are_each_values_blind_index(ring: crypto.Keyring) -> None:
    values = ["110105194912310020", "13812345678", "", "张三"]
    assert crypto.blind_indexes(values, kind="id_number", ring=ring) == [
        crypto.blind_index(value, kind="id_number", ring=ring) for value in values
    ]
    assert crypto.blind_indexes(values[:1], kind="phone", ring=ring) != crypto.blind_indexes(
        values[:1], kind="id_number", ring=ring
    )
