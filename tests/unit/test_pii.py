"""ID numbers (GB 11643), phones, masking: the rules a grid worker's input is held to."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.lib import pii
from tests.helpers import id_number


def test_known_valid_id_number() -> None:
    # The standard's own worked example: 11010519491231002X.
    assert pii.normalize_id_number("11010519491231002x") == "11010519491231002X"


@given(st.integers(0, 16), st.integers(0, 8))
def test_any_single_digit_change_breaks_the_checksum(position: int, delta: int) -> None:
    valid = id_number()
    changed = valid[:position] + str((int(valid[position]) + delta + 1) % 10) + valid[position + 1 :]
    with pytest.raises(pii.InvalidIdentifier):
        pii.normalize_id_number(changed)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("1101051949123100", "pii.id_number.format"),  # 16 characters (old 15/16-digit forms are refused)
        ("11010519491231002Y", "pii.id_number.format"),
        ("110105194912310021", "pii.id_number.checksum"),
        ("110105194913310027", "pii.id_number.birthdate"),
    ],
)
def test_invalid_id_numbers_say_why(raw: str, code: str) -> None:
    if code == "pii.id_number.birthdate":
        raw = raw[:17] + pii.id_check_char(raw[:17])
    with pytest.raises(pii.InvalidIdentifier) as caught:
        pii.normalize_id_number(raw)
    assert caught.value.code == code


def test_masks() -> None:
    assert pii.mask_id_number("320402198001011234") == "3204**********1234"
    assert pii.mask_phone("13812345678") == "138****5678"
    assert pii.mask_name("张三丰") == "张**"


@pytest.mark.parametrize("raw", ["138 1234 5678", "+86 138-1234-5678", "008613812345678"])
def test_phone_normalisation(raw: str) -> None:
    assert pii.normalize_phone(raw) == "13812345678"


def test_phone_rejects_garbage() -> None:
    with pytest.raises(pii.InvalidIdentifier):
        pii.normalize_phone("12345")


def test_checking_many_id_numbers_at_once_answers_as_one_by_one() -> None:
    valid = [id_number() for _ in range(50)]
    birthdate = "110105194913310027"[:17]
    raws = [
        *valid,
        "11010519491231002x",  # lower-case check character
        "  11010519491231002X ",  # spaces around
        "110105194912310021",  # wrong check digit
        "11010519491231002Y",  # not a digit or X at the end
        "1101051949123100",  # too short
        birthdate + pii.id_check_char(birthdate),  # month 13
        "１１０１０５１９４９１２３１００２Ｘ",  # full-width: not ASCII, the one-by-one rules decide
        valid[0][:5] + "a" + valid[0][6:],  # a letter among the digits
    ]
    answers = pii.normalize_id_numbers(raws)
    for raw, answer in zip(raws, answers, strict=True):
        try:
            expected: str | tuple[str, str] = pii.normalize_id_number(raw)
        except pii.InvalidIdentifier as exc:
            expected = ("error", exc.code)
        got = ("error", answer.code) if isinstance(answer, pii.InvalidIdentifier) else answer
        assert got == expected, raw
    assert answers[: len(valid)] == valid
    assert sum(isinstance(answer, pii.InvalidIdentifier) for answer in answers) == 6
