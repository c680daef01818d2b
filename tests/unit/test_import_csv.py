from pathlib import Path

import pytest

from backend.warnings import importfile
from backend.warnings.importfile import ImportFileError, ImportOptions

OPTIONS = ImportOptions(source="medical_insurance")


@pytest.fixture(params=["kept", "streamed"])
def reading(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways a CSV is read: kept from the counting pass (a nightly file), or counted and read again."""
    if request.param == "streamed":
        monkeypatch.setattr(importfile, "READ_WHOLE_BYTES", 0)
    return str(request.param)


def test_every_record_is_read_with_its_row_number_and_the_total_is_known_first(tmp_path: Path, reading: str) -> None:
    path = tmp_path / "warnings.csv"
    path.write_text('业务编号,证件号码,备注\nA1,110101,"two\nlines"\nA2,,\n', encoding="utf-8-sig")

    table = importfile._open_table(path, OPTIONS)
    try:
        assert table.total_rows == 3  # the quoted line break is one record
        assert list(table.rows) == [
            (1, ["业务编号", "证件号码", "备注"]),
            (2, ["A1", "110101", "two\nlines"]),
            (3, ["A2", "", ""]),
        ]
    finally:
        table.close()


def test_bytes_that_do_not_decode_are_refused_before_any_row_is_read(tmp_path: Path, reading: str) -> None:
    path = tmp_path / "warnings.csv"
    path.write_bytes("业务编号,证件号码\nA1,110101\n".encode() + b"A2,\xff\xfe\n")

    with pytest.raises(ImportFileError, match="not valid utf-8 text"):
        importfile._open_table(path, ImportOptions(source="medical_insurance", encoding="utf-8"))
