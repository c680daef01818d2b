"""One plain-language sentence, in Chinese and English, for a whole application's department cases.

"2 of 3 services decided: temporary assistance approved, 3,000 yuan; medical assistance in review,
due 5 Dec" — decided services first (in the order picked), then the rest. Dates are Beijing dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from backend.tasks.calendar import CHINA

SUBMITTED = "submitted"  # picked but not yet routed to its department

_PER_ZH = {"monthly": "每月 ", "yearly": "每年 ", "one_off": ""}
_PER_EN = {"monthly": " a month", "yearly": " a year", "one_off": ""}


@dataclass(frozen=True)
class Line:
    name_zh: str
    name_en: str
    state: str
    due_at: datetime | None = None
    amount_yuan: int | None = None
    period: str | None = None
    period_months: int | None = None


def _lower_first(name: str) -> str:
    # "Temporary assistance (…)" reads as "temporary assistance (…)" mid-sentence; "IT …" stays.
    return name[:1].lower() + name[1:] if len(name) > 1 and not name[1].isupper() else name


def _due_zh(due: datetime | None) -> str:
    if due is None:
        return ""
    day = due.astimezone(CHINA)
    return f"，{day.month} 月 {day.day} 日前答复"


def _due_en(due: datetime | None) -> str:
    if due is None:
        return ""
    day = due.astimezone(CHINA)
    return f", due {day.day} {day:%b}"


def _amount_zh(line: Line) -> str:
    if line.amount_yuan is None:
        return ""
    months = f"，共 {line.period_months} 个月" if line.period_months else ""
    return f"，{_PER_ZH.get(line.period or '', '')}{line.amount_yuan} 元{months}"


def _amount_en(line: Line) -> str:
    if line.amount_yuan is None:
        return ""
    months = f" for {line.period_months} months" if line.period_months else ""
    return f", {line.amount_yuan:,} yuan{_PER_EN.get(line.period or '', '')}{months}"


def phrase_zh(line: Line) -> str:
    name = line.name_zh
    match line.state:
        case "approved":
            return f"{name}已批准{_amount_zh(line)}"
        case "rejected":
            return f"{name}未获批准"
        case "info_requested":
            return f"{name}需补充材料{_due_zh(line.due_at)}"
        case "new" | "accepted":
            return f"{name}审核中{_due_zh(line.due_at)}"
        case _:
            return f"{name}正在转交部门"


def phrase_en(line: Line) -> str:
    name = _lower_first(line.name_en)
    match line.state:
        case "approved":
            return f"{name} approved{_amount_en(line)}"
        case "rejected":
            return f"{name} not approved"
        case "info_requested":
            return f"{name} needs more information{_due_en(line.due_at)}"
        case "new" | "accepted":
            return f"{name} in review{_due_en(line.due_at)}"
        case _:
            return f"{name} being sent to its department"


def summarise(lines: list[Line]) -> tuple[str, str, int]:
    """(Chinese sentence, English sentence, how many are decided)."""
    decided = [line for line in lines if line.state in ("approved", "rejected")]
    pending = [line for line in lines if line.state not in ("approved", "rejected")]
    total = len(lines)
    ordered = decided + pending
    if decided and not pending:
        head_zh = f"{total} 项已全部办结" if total > 1 else "已办结"
        head_en = f"All {total} services decided" if total > 1 else "Decided"
    else:
        head_zh = f"{total} 项中已有 {len(decided)} 项办结"
        head_en = f"{len(decided)} of {total} service{'s' if total != 1 else ''} decided"
    zh = head_zh + "：" + "；".join(phrase_zh(line) for line in ordered)
    en = head_en + ": " + "; ".join(phrase_en(line) for line in ordered)
    return zh, en, len(decided)
