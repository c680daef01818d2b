from backend.lib.logging import scrub


def test_scrub_masks_id_numbers_and_mobiles_but_not_other_numbers() -> None:
    text = "id 32040219800101123X phone 13812345678 order 2026112210 uuid 4f3a13812345678e"
    cleaned = scrub(text)
    assert "32040219800101123X" not in cleaned and "3204**********123X" in cleaned
    assert "13812345678 " not in cleaned and "138****5678" in cleaned
    assert "2026112210" in cleaned
