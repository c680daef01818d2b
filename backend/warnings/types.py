"""The warning types GridAid knows out of the box; an admin can add custom ones."""

from __future__ import annotations

from backend.warnings.tables import DeadlineUnit, WarningType

# code, 中文, English, priority (1 highest), deadline amount, unit
BUILTIN_TYPES: tuple[tuple[str, str, str, int, int, DeadlineUnit], ...] = (
    ("natural_disaster", "自然灾害", "Natural disaster", 1, 1, DeadlineUnit.calendar_days),
    ("death_of_earner", "主要劳动力死亡", "Death of the main earner", 1, 2, DeadlineUnit.working_days),
    ("traffic_accident", "交通事故", "Traffic accident", 2, 2, DeadlineUnit.working_days),
    ("workplace_accident", "工伤事故", "Workplace accident", 2, 2, DeadlineUnit.working_days),
    ("large_medical_expense", "大额医疗支出", "Large medical expense", 2, 3, DeadlineUnit.working_days),
    ("disability_change", "新增或变更残疾", "New or changed disability", 3, 5, DeadlineUnit.working_days),
    ("income_drop", "收入骤降", "Sudden income drop", 3, 5, DeadlineUnit.working_days),
    # A department deciding an application asks the grid worker to bring more information.
    ("info_requested", "部门要求补充材料", "A department asks for more information", 2, 3, DeadlineUnit.working_days),
    # A resident asked for help themselves (backend/requests): visited within two working days.
    ("resident_request", "居民求助", "A resident asked for help", 2, 2, DeadlineUnit.working_days),
)


async def ensure_builtin_types() -> None:
    """Insert the built-in types that are missing; never overwrite an admin's changes."""
    existing = {row["code"] for row in await WarningType.select(WarningType.code)}
    missing = [
        WarningType(
            code=code,
            name_zh=zh,
            name_en=en,
            priority=priority,
            deadline_amount=amount,
            deadline_unit=unit,
            builtin=True,
        )
        for code, zh, en, priority, amount, unit in BUILTIN_TYPES
        if code not in existing
    ]
    if missing:
        await WarningType.insert(*missing)
