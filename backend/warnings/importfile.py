"""Importing a department's warning file (CSV or XLSX) through the same ``ingest`` the API uses.

Departments send spreadsheets exported from their own systems: headers in Chinese or English,
CSV in UTF-8 (with or without a BOM) or GBK/GB18030, sometimes a title line above the header,
ID numbers that Excel turned into numbers. This module reads such a file row by row, recognises
the columns, turns each row into an ``IncomingWarning`` or a rejection that names the row and the
reason, and feeds the good rows to ``ingest`` in chunks. Every row ends up counted: created (with
its outcome), duplicate, rejected, or blank. A second import of the same file creates nothing:
``(source, source_record_id)`` is the dedupe key.

Columns that look like a name, phone number, ID number or address never go into a warning's
facts, and neither does any other cell whose value looks like an ID or mobile number.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import csv
import itertools
import os
import re
import time
import unicodedata
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from backend.audit.services import Actor
from backend.grids.index_cache import current_layer
from backend.lib.gcpause import collector_paused
from backend.lib.rowgroups import grouped_in_thread
from backend.warnings.services import (
    CHUNK,
    ChunkPlan,
    IncomingWarning,
    Ingestion,
    News,
    Rejected,
    WarningResult,
    _validate,
    active_types,
)
from backend.warnings.tables import Warning

# How far down a header may sit (a title line, a blank line, a note above the table).
HEADER_SEARCH_ROWS = 10
# Rows are brought together by person within windows of this many chunks: a 100,000-row file is
# one window; a larger one is held in memory a window at a time.
GROUP_WINDOW_CHUNKS = 10
# The pipeline's ends (see chunk_target): ~0.2 s to plan or write 2,000 rows instead of ~1 s for 10,000.
_FIRST_CHUNKS = (2_000, 5_000)
_LAST_CHUNK = 2_000
READ_WHOLE_BYTES = 16 << 20  # a CSV up to this size is read once (see _open_csv)
# Columns the rejects file adds; columns starting with "_" are never read back as data.
REJECT_COLUMNS = ("_row", "_error_code", "_error")
# Reading yields to the event loop this often, so the chunk being written keeps moving.
_YIELD_EVERY = 500

FIELDS = ("source_record_id", "type", "id_number", "household_id", "lon", "lat", "crs", "occurred_on")
# Header spellings per field, compared after _header_key (NFKC, case-folded, no spaces/_/-).
HEADER_NAMES: dict[str, tuple[str, ...]] = {
    "source_record_id": (
        "source_record_id",
        "record_id",
        "recordid",
        "record_no",
        "记录编号",
        "记录号",
        "业务编号",
        "业务流水号",
        "流水号",
        "预警编号",
    ),
    "type": ("type", "type_code", "warning_type", "预警类型", "预警类别", "类型代码"),
    "id_number": (
        "id_number",
        "idnumber",
        "id_no",
        "id_card",
        "身份证号",
        "身份证号码",
        "证件号码",
        "证件号",
        "公民身份号码",
        "身份证",
    ),
    "household_id": ("household_id", "household", "户id", "家庭id"),
    "lon": ("lon", "lng", "long", "longitude", "x", "经度"),
    "lat": ("lat", "latitude", "y", "纬度"),
    "crs": ("crs", "srs", "coordinate_system", "坐标系", "坐标系统"),
    "occurred_on": ("occurred_on", "date", "occurred", "event_date", "发生日期", "发生时间", "预警日期", "日期"),
}
# A header containing one of these is personal data: never copied into facts.
_PERSONAL_ZH = (
    "姓名",
    "名字",
    "户主",
    "联系人",
    "电话",
    "手机",
    "联系方式",
    "身份证",
    "证件",
    "身份号",
    "地址",
    "住址",
    "邮箱",
    "银行卡",
    "账号",
    "护照",
)
_PERSONAL_EN = {
    "name",
    "names",
    "fullname",
    "firstname",
    "lastname",
    "surname",
    "phone",
    "mobile",
    "tel",
    "telephone",
    "cellphone",
    "contact",
    "idcard",
    "idno",
    "idnumber",
    "identity",
    "passport",
    "ssn",
    "address",
    "addr",
    "email",
    "bankcard",
}
# Values that are personal whatever their column says (an ID or mobile number inside a remark).
_PERSONAL_VALUE = re.compile(r"(?<![0-9A-Za-z])(\d{17}[\dXx]|\d{15}|1[3-9]\d{9})(?![0-9A-Za-z])")
_CRS_ZH = {
    "国家2000": "cgcs2000",
    "2000国家大地坐标系": "cgcs2000",
    "火星坐标": "gcj02",
    "国测局坐标": "gcj02",
    "高德坐标": "gcj02",
    "百度坐标": "bd09",
}
# 2026-03-05, 2026/3/5, 2026.03.05, 2026年3月5日, 20260305; a time after it is ignored.
_DATE = re.compile(r"^(\d{4})(?:([-/.])(\d{1,2})\2(\d{1,2})|年(\d{1,2})月(\d{1,2})日?|(\d{2})(\d{2}))$")
_DATETIME_TAIL = re.compile(r"[ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$")


class ImportFileError(Exception):
    """The file as a whole cannot be imported (unreadable, no header, a required column missing)."""


@dataclass(frozen=True)
class ImportOptions:
    source: str
    encoding: str | None = None  # CSV only; None: detect (BOM, else UTF-8, else GB18030)
    sheet: str | None = None  # XLSX only; None: the first sheet
    columns: dict[str, str] = field(default_factory=dict)  # field -> header, overriding the sniffing
    default_type: str | None = None  # every row's type when the file has no type column
    dry_run: bool = False
    chunk_rows: int = CHUNK  # one transaction each


@dataclass
class RejectedRow:
    row: int  # as a spreadsheet shows it: the header's row number plus the data row's position
    source_record_id: str
    code: str
    reason: str
    cells: list[str]


@dataclass
class ImportReport:
    file: str
    format: str
    encoding: str | None
    sheet: str | None
    header_row: int
    columns: dict[str, str]  # field -> header found
    facts_columns: list[str]
    personal_columns: list[str]  # present in the file, never copied
    headers: list[str] = field(default_factory=list)
    rows: int = 0
    blank_rows: int = 0
    created: Counter[str] = field(default_factory=Counter)  # outcome -> warnings
    duplicates: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    withheld_values: int = 0  # cells in facts columns that looked like an ID or phone number
    tasks: set[str] = field(default_factory=set)
    seconds: float = 0.0
    dry_run: bool = False

    @property
    def created_total(self) -> int:
        return sum(self.created.values())

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "format": self.format,
            "encoding": self.encoding,
            "sheet": self.sheet,
            "header_row": self.header_row,
            "columns": self.columns,
            "facts_columns": self.facts_columns,
            "personal_columns_not_copied": self.personal_columns,
            "dry_run": self.dry_run,
            "rows": self.rows,
            "blank_rows": self.blank_rows,
            "created": self.created_total,
            "created_by_outcome": dict(sorted(self.created.items())),
            "tasks": len(self.tasks),
            "duplicates": self.duplicates,
            "rejected": len(self.rejected),
            "rejected_rows": [
                {"row": r.row, "source_record_id": r.source_record_id, "code": r.code, "reason": r.reason}
                for r in self.rejected
            ],
            "withheld_values": self.withheld_values,
            "seconds": round(self.seconds, 3),
            "warnings_per_second": round(self.rate, 1),
        }


# ---------------------------------------------------------------------------------------------
# Reading cells


@dataclass
class _Table:
    format: str
    encoding: str | None
    sheet: str | None
    total_rows: int | None  # for the progress bar; None when the file does not say
    rows: Iterator[tuple[int, list[Any]]]  # (row number, cells), header included
    close: Callable[[], None] = lambda: None


def _open_table(path: Path, options: ImportOptions) -> _Table:
    with path.open("rb") as handle:
        magic = handle.read(8)
    suffix = path.suffix.casefold()
    if magic.startswith(b"\xd0\xcf\x11\xe0") or suffix == ".xls":
        raise ImportFileError(f"{path.name}: old Excel (.xls) files are not supported; save it as .xlsx or CSV")
    if magic.startswith(b"PK") or suffix in {".xlsx", ".xlsm"}:
        return _open_xlsx(path, options.sheet)
    return _open_csv(path, options.encoding)


def _open_xlsx(path: Path, sheet: str | None) -> _Table:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise ImportFileError(f"{path.name}: not a readable .xlsx file ({exc})") from exc
    if sheet is not None and sheet not in book.sheetnames:
        book.close()
        raise ImportFileError(f"{path.name}: no sheet named {sheet!r} (sheets: {', '.join(book.sheetnames)})")
    worksheet = book[sheet] if sheet is not None else book.worksheets[0]
    rows = ((number, list(cells)) for number, cells in enumerate(worksheet.iter_rows(values_only=True), start=1))
    total = worksheet.max_row if isinstance(worksheet.max_row, int) and worksheet.max_row > 0 else None
    return _Table("xlsx", None, worksheet.title, total, rows, book.close)


def detect_encoding(path: Path) -> str:
    """``utf-8-sig`` / ``utf-16`` by BOM, else ``utf-8`` if the whole file decodes, else ``gb18030`` (⊃ GBK)."""
    with path.open("rb") as handle:
        head = handle.read(4)
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        handle.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            while block := handle.read(1 << 20):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "gb18030"
    return "utf-8"


def _open_csv(path: Path, encoding: str | None) -> _Table:
    chosen = encoding or detect_encoding(path)
    try:
        codecs.lookup(chosen)
    except LookupError as exc:
        raise ImportFileError(f"unknown encoding {chosen!r}") from exc
    dialect = _dialect(path, chosen)
    # Reading every record first gives the progress bar a total, and finds undecodable bytes
    # before anything is written. A file of a nightly export's size is kept from that one reading
    # (the import holds 100,000 rows at a time anyway, to group them); a larger one is counted,
    # then read again as it is imported.
    keep = path.stat().st_size <= READ_WHOLE_BYTES
    records: list[list[str]] = []
    total = 0
    with path.open(encoding=chosen, newline="") as handle:
        try:
            if keep:
                records = list(csv.reader(handle, dialect=dialect))
                total = len(records)
            else:
                for _ in csv.reader(handle, dialect=dialect):
                    total += 1
        except UnicodeDecodeError as exc:
            raise ImportFileError(
                f"{path.name} is not valid {chosen} text (byte {exc.start}); pass --encoding (utf-8, gbk, gb18030)"
            ) from exc
        except csv.Error as exc:
            raise ImportFileError(f"{path.name}: not a readable CSV file ({exc})") from exc
    if keep:
        return _Table("csv", chosen, None, total, enumerate(records, start=1))
    handle = path.open(encoding=chosen, newline="")
    rows = enumerate(csv.reader(handle, dialect=dialect), start=1)
    return _Table("csv", chosen, None, total, rows, handle.close)


def _dialect(path: Path, encoding: str) -> type[csv.Dialect]:
    """Comma unless the first lines clearly use tabs, semicolons or bars (Excel's other exports)."""
    with path.open(encoding=encoding, errors="replace", newline="") as handle:
        sample = "".join(line for _, line in zip(range(HEADER_SEARCH_ROWS), handle, strict=False))
    counts = {delimiter: sample.count(delimiter) for delimiter in (",", "\t", ";", "|")}
    chosen = max(counts, key=lambda d: (counts[d], d == ","))

    class Dialect(csv.excel):
        delimiter = chosen

    return Dialect


# ---------------------------------------------------------------------------------------------
# The header


def _header_key(value: Any) -> str:
    text = unicodedata.normalize("NFKC", str(value or "")).strip().casefold()
    return re.sub(r"[\s_\-/()（）:：*]+", "", text)


_KEYS = {_header_key(name): name_field for name_field, names in HEADER_NAMES.items() for name in names}


def is_personal_header(header: str) -> bool:
    text = unicodedata.normalize("NFKC", header).casefold()
    if any(word in text for word in _PERSONAL_ZH):
        return True
    tokens = set(re.split(r"[^a-z0-9]+", text))
    squashed = re.sub(r"[^a-z0-9]", "", text)
    return bool(tokens & _PERSONAL_EN) or any(
        squashed.endswith(word) or squashed.startswith(word)
        for word in ("idcard", "idno", "idnumber", "phone", "mobile", "fullname")
    )


@dataclass(frozen=True)
class _Layout:
    headers: list[str]
    positions: dict[str, int]  # field -> column position
    facts: list[tuple[int, str]]  # (position, header) of the columns copied into facts
    personal: list[str]


def _layout(headers: list[str], options: ImportOptions) -> _Layout:
    positions: dict[str, int] = {}
    by_key: dict[str, int] = {}
    for position, header in enumerate(headers):
        if header:
            by_key.setdefault(_header_key(header), position)
    for wanted, header in options.columns.items():
        if wanted not in FIELDS:
            raise ImportFileError(f"unknown field {wanted!r} (fields: {', '.join(FIELDS)})")
        if _header_key(header) not in by_key:
            raise ImportFileError(f"no column {header!r} in the header (columns: {', '.join(h for h in headers if h)})")
        positions[wanted] = by_key[_header_key(header)]
    for position, header in enumerate(headers):
        name_field = _KEYS.get(_header_key(header))
        if name_field is None or position in positions.values() or name_field in options.columns:
            continue
        if name_field in positions:
            raise ImportFileError(
                f"two columns mean {name_field}: {headers[positions[name_field]]!r} and {header!r}; "
                f"choose one with --column {name_field}=HEADER"
            )
        positions[name_field] = position
    missing = []
    if "source_record_id" not in positions:
        missing.append("source_record_id (记录编号/业务编号)")
    if "type" not in positions and not options.default_type:
        missing.append("type (预警类型), or give --type")
    if "id_number" not in positions and "household_id" not in positions:
        missing.append("id_number (身份证号/证件号码) or household_id")
    if missing:
        raise ImportFileError(
            f"the header has no column for {'; '.join(missing)} (columns found: {', '.join(h for h in headers if h)})"
        )
    used = set(positions.values())
    facts, personal = [], []
    for position, header in enumerate(headers):
        if position in used or not header or header.startswith("_"):
            continue
        if is_personal_header(header):
            personal.append(header)
        else:
            facts.append((position, header))
    return _Layout(headers, positions, facts, personal)


def _find_header(
    rows: Iterator[tuple[int, list[Any]]], options: ImportOptions
) -> tuple[int, list[str], Iterator[tuple[int, list[Any]]]]:
    """The header: the first row, among the first few, that names two known fields (or the overrides);
    else the first non-blank row. Returns it with the rows that follow it."""
    wanted = {_header_key(h) for h in options.columns.values()}
    seen: list[tuple[int, list[Any]]] = []
    chosen: int | None = None
    for number, cells in rows:
        seen.append((number, cells))
        keys = {_header_key(c) for c in cells if c is not None}
        if len({_KEYS[k] for k in keys if k in _KEYS}) >= 2 or (wanted and wanted <= keys):
            chosen = len(seen) - 1
            break
        if len(seen) >= HEADER_SEARCH_ROWS:
            break
    if chosen is None:
        chosen = next((i for i, (_, cells) in enumerate(seen) if any(_text(c) for c in cells)), None)
        if chosen is None:
            raise ImportFileError("the file is empty")
    number, cells = seen[chosen]
    headers = [unicodedata.normalize("NFKC", _text(c)) for c in cells]
    return number, headers, itertools.chain(seen[chosen + 1 :], rows)


# ---------------------------------------------------------------------------------------------
# One row


class _RowError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _text(value: Any) -> str:
    """A cell as text, as a person reads it: 12.0 → "12", a midnight datetime → its date."""
    if type(value) is str:  # every CSV cell
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def _number(value: Any, label: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = unicodedata.normalize("NFKC", str(value)).strip().replace(",", "")
    try:
        number = float(text)
    except ValueError:
        raise _RowError("import.not_a_number", f"{label} is not a number: {text[:40]!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise _RowError("import.not_a_number", f"{label} is not a number: {text[:40]!r}")
    return number


def _date(value: Any, label: str) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = _text(value)
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    if len(text) > 10:
        text = _DATETIME_TAIL.sub("", text)
    match = _DATE.match(text)
    if match:
        year, _, *parts = match.groups()
        month, day = (int(part) for part in parts if part is not None)
        try:
            return date(int(year), month, day).isoformat()
        except ValueError:
            pass
    raise _RowError("import.date", f"{label} is not a date (YYYY-MM-DD): {text[:40]!r}")


def _hashable(value: Any) -> bool:
    return value is None or type(value) in (str, int, float, datetime, date)


def _blank(cells: list[Any]) -> bool:
    try:
        return not "".join(cells).strip()  # every CSV row: all text
    except TypeError:
        return not any(_text(c) for c in cells)


def _id_number(value: Any, label: str) -> str | None:
    if isinstance(value, float) and value >= 1e14:
        raise _RowError(
            "import.id_number_as_number",
            f"{label} was stored as a number and lost its last digits; format the column as text and export again",
        )
    text = unicodedata.normalize("NFKC", _text(value)).replace(" ", "").upper()
    return text or None


_MISSING = object()


@dataclass(frozen=True)
class _Reader:
    layout: _Layout
    options: ImportOptions
    types: dict[str, str]  # code, 中文名 or English name (case-folded) -> code
    # A file repeats few distinct types, dates and CRS names: each is worked out once per import.
    _kinds: dict[Any, str | _RowError] = field(default_factory=dict, compare=False, repr=False)
    _dates: dict[Any, str | _RowError | None] = field(default_factory=dict, compare=False, repr=False)
    _crs: dict[Any, str] = field(default_factory=dict, compare=False, repr=False)
    # Each of FIELDS' column position, or the width of the header (a missing column reads as None).
    _at: tuple[int, ...] = field(init=False, compare=False, repr=False)
    _labels: dict[str, str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        width = len(self.layout.headers)
        object.__setattr__(self, "_at", tuple(self.layout.positions.get(name, width) for name in FIELDS))
        object.__setattr__(self, "_labels", {name: self.label(name) for name in FIELDS})

    def cell(self, cells: list[Any], name_field: str) -> Any:
        position = self.layout.positions.get(name_field)
        return cells[position] if position is not None and position < len(cells) else None

    def group_keys(self, row: tuple[int, list[Any]]) -> list[tuple[str, str]]:
        """What ties a row to others: the person it names (their ID number or household id as
        written: a guess, good enough to bring rows together) and its record id, as ``warning``
        reads it (the first row with a record id must stay before the others)."""
        cells = row[1]
        at_record, _, at_id, at_household, *_ = self._at
        keys = []
        for kind, at in (("record", at_record), ("person", at_id), ("household", at_household)):
            value = cells[at] if at < len(cells) else None
            text = unicodedata.normalize("NFKC", _text(value)) if kind == "record" else _text(value).upper()
            if text:
                keys.append((kind, text))
        return keys

    def label(self, name_field: str) -> str:
        position = self.layout.positions.get(name_field)
        return self.layout.headers[position] if position is not None else name_field

    def _kind(self, value: Any) -> str:
        known = self._kinds.get(value, _MISSING) if _hashable(value) else _MISSING
        if known is _MISSING:
            kind = unicodedata.normalize("NFKC", _text(value)) or (self.options.default_type or "")
            known = (
                self.types.get(kind, self.types.get(kind.casefold(), kind))
                if kind
                else _RowError("import.type_missing", f"{self.label('type')} is empty")
            )
            if _hashable(value):
                self._kinds[value] = known
        if isinstance(known, _RowError):
            raise _RowError(known.code, str(known))
        return known  # type: ignore[return-value]

    def _date(self, value: Any) -> str | None:
        known = self._dates.get(value, _MISSING) if _hashable(value) else _MISSING
        if known is _MISSING:
            try:
                known = _date(value, self._labels["occurred_on"])
            except _RowError as exc:
                known = exc
            if _hashable(value):
                self._dates[value] = known
        if isinstance(known, _RowError):
            raise _RowError(known.code, str(known))
        return known  # type: ignore[return-value]

    def _crs_name(self, value: Any) -> str:
        known = self._crs.get(value) if _hashable(value) else None
        if known is None:
            crs = unicodedata.normalize("NFKC", _text(value)) or "wgs84"
            known = _CRS_ZH.get(crs, crs)
            if _hashable(value):
                self._crs[value] = known
        return known

    def warning(self, cells: list[Any]) -> tuple[IncomingWarning, int]:
        """The row as a warning, and how many facts cells were withheld as personal."""
        width = len(self.layout.headers)
        if len(cells) > width and any(_text(c) for c in cells[width:]):
            raise _RowError(
                "import.row_width",
                f"the row has {len(cells)} values but the header has {width} columns "
                "(a comma inside an unquoted value?)",
            )
        # The row padded to the header's width plus one empty cell that missing columns point at.
        cells = [*cells[:width], *([None] * (width + 1 - min(len(cells), width)))]
        at_record, at_type, at_id, at_household, at_lon, at_lat, at_crs, at_date = self._at
        record = unicodedata.normalize("NFKC", _text(cells[at_record]))
        if not record:
            raise _RowError("import.record_id_missing", f"{self.label('source_record_id')} is empty")
        kind = self._kind(cells[at_type])
        household = _text(cells[at_household])
        try:
            household_id = uuid.UUID(household) if household else None
        except ValueError:
            raise _RowError(
                "import.household_id", f"{self.label('household_id')} is not a household id: {household[:40]!r}"
            ) from None
        crs = self._crs_name(cells[at_crs])
        facts, withheld = self.facts(cells)
        warning = IncomingWarning(
            source_record_id=record,
            type_code=kind,
            id_number=_id_number(cells[at_id], self._labels["id_number"]),
            household_id=household_id,
            lon=_number(cells[at_lon], self._labels["lon"]),
            lat=_number(cells[at_lat], self._labels["lat"]),
            crs=crs,
            occurred_on=self._date(cells[at_date]),
            facts=facts,
        )
        return warning, withheld

    def facts(self, cells: list[Any]) -> tuple[dict[str, Any], int]:
        facts: dict[str, Any] = {}
        withheld = 0
        for position, header in self.layout.facts:
            value = cells[position] if position < len(cells) else ""
            value = value.strip() if type(value) is str else _text(value)
            if not value:
                continue
            if _PERSONAL_VALUE.search(value):
                withheld += 1
                continue
            facts[header] = value
        return facts, withheld


# ---------------------------------------------------------------------------------------------
# The import


Progress = Callable[[int, int | None], None]  # (rows done, total rows or None)


async def import_warning_file(
    path: Path, options: ImportOptions, *, actor: Actor, progress: Progress | None = None
) -> ImportReport:
    with collector_paused():  # the import's rows live until it ends: see backend/lib/gcpause.py
        return await _import_warning_file(path, options, actor=actor, progress=progress)


async def _import_warning_file(
    path: Path, options: ImportOptions, *, actor: Actor, progress: Progress | None
) -> ImportReport:
    types_rows = await active_types()
    types: dict[str, str] = {}
    for code, row in types_rows.items():
        types[code] = code
        types[unicodedata.normalize("NFKC", row["name_zh"]).strip()] = code
        types[row["name_en"].strip().casefold()] = code
    # The grid index (for warnings placed by their point) loads while the file is read, in a thread.
    warming = None if options.dry_run else asyncio.create_task(current_layer())
    try:
        table = await asyncio.to_thread(_open_table, path, options)
    except BaseException:
        if warming is not None:
            warming.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await warming
        raise
    try:
        header_row, headers, rows = _find_header(table.rows, options)
        layout = _layout(headers, options)
        report = ImportReport(
            file=path.name,
            format=table.format,
            encoding=table.encoding,
            sheet=table.sheet,
            header_row=header_row,
            columns={name: headers[layout.positions[name]] for name in FIELDS if name in layout.positions},
            facts_columns=[header for _, header in layout.facts],
            personal_columns=layout.personal,
            headers=headers,
            dry_run=options.dry_run,
        )
        reader = _Reader(layout, options, types)
        # One person's rows in one chunk: the task opens once instead of being updated by each
        # later chunk that names the person again (see backend/lib/rowgroups.py). Read and grouped
        # in a thread, so that the grid index builds meanwhile.
        grouped = grouped_in_thread(rows, reader.group_keys, GROUP_WINDOW_CHUNKS * options.chunk_rows)
        total = table.total_rows - header_row if table.total_rows is not None else None
        started = time.perf_counter()
        # The next chunk is read and planned while the database writes the previous one: on
        # PostgreSQL the server works in its own process, on SQLite in the driver's thread.
        writing: asyncio.Task[None] | None = None
        done = chunks = 0
        chunk: list[tuple[int, list[Any], IncomingWarning]] = []
        # Each worker is told once per file, after its chunks (and also if a later chunk fails).
        news = News()
        ingestion = Ingestion(options.source, actor=actor, types=types_rows, news=news)

        async def send(rows: list[tuple[int, list[Any], IncomingWarning]]) -> None:
            nonlocal writing, done
            if options.dry_run:
                _count(rows, await _check(options.source, [w for _, _, w in rows], types_rows), reader, report)
                return
            plan = await ingestion.plan([warning for _, _, warning in rows])
            if writing is not None:
                await writing
                if progress is not None:
                    progress(done, total)
            done = report.rows + report.blank_rows
            writing = asyncio.create_task(_write(ingestion, plan, rows, reader, report))

        target = chunk_target(0, total, options.chunk_rows)
        try:
            async for number, cells in grouped:
                if _blank(cells):
                    report.blank_rows += 1
                    continue
                report.rows += 1
                if report.rows % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # let the chunk being written make progress
                try:
                    warning, withheld = reader.warning(cells)
                except _RowError as exc:
                    report.rejected.append(_rejected(number, reader, cells, exc.code, str(exc)))
                    continue
                report.withheld_values += withheld
                chunk.append((number, cells, warning))
                if len(chunk) >= target:
                    await send(chunk)
                    chunk, chunks = [], chunks + 1
                    remaining = None if total is None else total - report.rows - report.blank_rows
                    target = chunk_target(chunks, remaining, options.chunk_rows)
            if chunk:
                await send(chunk)
            if writing is not None:
                await writing
        finally:
            if writing is not None and not writing.done():
                writing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writing
            await news.tell()
        report.seconds = time.perf_counter() - started
        if progress is not None:
            progress(report.rows + report.blank_rows, total)
    finally:
        table.close()
        if warming is not None:
            # Done by now (or not needed by this file); a failure to load shows where the layer is used,
            # never in place of this import's own outcome.
            with contextlib.suppress(Exception):
                await warming
    report.rejected.sort(key=lambda r: r.row)
    return report


def chunk_target(index: int, remaining: int | None, full: int) -> int:
    """How many warnings the chunk numbered ``index`` (from 0) takes, with ``remaining`` rows of
    the file not yet read (None when the file does not say).

    Full chunks, except at both ends of the pipeline, where nothing overlaps: the first chunk is
    planned while nothing is being written yet, and the last is written while nothing is left
    to plan. Small chunks there shorten both waits; the chunk before the last leaves a small one.
    No chunk near the end is much smaller than that last one: a chunk of a few hundred rows
    between two others costs a turn of the pipeline (its write waits for the previous write, and
    the next plan for its write) for next to nothing."""
    target = min(full, _FIRST_CHUNKS[index]) if index < len(_FIRST_CHUNKS) else full
    if remaining is not None and full > _LAST_CHUNK:
        if remaining <= target + _LAST_CHUNK:
            target = remaining if remaining <= _LAST_CHUNK else remaining - _LAST_CHUNK
        elif remaining < target + 2 * _LAST_CHUNK:  # a full chunk would leave a sliver before the last
            target = remaining - 2 * _LAST_CHUNK
    return max(1, target)


def _rejected(number: int, reader: _Reader, cells: list[Any], code: str, reason: str) -> RejectedRow:
    record = _text(reader.cell(cells, "source_record_id"))
    return RejectedRow(number, record, code, reason, [_text(c) for c in cells])


async def _write(
    ingestion: Ingestion,
    plan: ChunkPlan,
    chunk: list[tuple[int, list[Any], IncomingWarning]],
    reader: _Reader,
    report: ImportReport,
) -> None:
    _count(chunk, await ingestion.write(plan), reader, report)


def _count(
    chunk: list[tuple[int, list[Any], IncomingWarning]],
    results: list[WarningResult],
    reader: _Reader,
    report: ImportReport,
) -> None:
    for (number, cells, _), result in zip(chunk, results, strict=True):
        if result.status == "created":
            report.created[result.outcome or "created"] += 1
            if result.task_id:
                report.tasks.add(result.task_id)
        elif result.status == "duplicate":
            report.duplicates += 1
        else:
            report.rejected.append(
                _rejected(number, reader, cells, result.error_code or "warning.rejected", result.error or "rejected")
            )


async def _check(source: str, items: list[IncomingWarning], types: dict[str, dict[str, Any]]) -> list[WarningResult]:
    """A dry run: the checks ``ingest`` makes, and the duplicates it would find, without writing."""
    results: list[WarningResult] = []
    seen: set[str] = set()
    known = {
        row["source_record_id"]
        for row in await Warning.select(Warning.source_record_id).where(
            Warning.source == source, Warning.source_record_id.is_in([i.source_record_id for i in items] or ["-"])
        )
    }
    for item in items:
        try:
            _validate(item, types)
        except Rejected as exc:
            results.append(WarningResult(item.source_record_id, "rejected", error_code=exc.code, error=str(exc)))
            continue
        duplicate = item.source_record_id in known or item.source_record_id in seen
        seen.add(item.source_record_id)
        results.append(
            WarningResult(item.source_record_id, "duplicate" if duplicate else "created", outcome="would_create")
        )
    return results


def write_rejects(report: ImportReport, target: Path) -> None:
    """The rejected rows as they were, with their row number and reason, ready to fix and import again.

    UTF-8 with a BOM so Excel shows the Chinese; readable only by the owner (rows hold ID numbers).
    """
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8-sig", newline="") as handle:  # noqa: PTH123 — fd from os.open
        writer = csv.writer(handle)
        writer.writerow([*REJECT_COLUMNS, *report.headers])
        for row in report.rejected:
            cells = row.cells + [""] * (len(report.headers) - len(row.cells))
            writer.writerow([row.row, row.code, row.reason, *cells])
