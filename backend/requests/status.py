"""A request's status in words a resident understands, in Chinese and English, with no staff jargon."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from backend.tasks.calendar import CHINA
from backend.tasks.tables import TaskState


def _day(value: datetime) -> tuple[str, str]:
    local = value.astimezone(CHINA)
    return f"{local.month} 月 {local.day} 日", f"{local.day} {local.strftime('%b')}"


def plain_status(outcome: str | None, task: dict[str, Any] | None) -> tuple[str, str, str]:
    """(stage, 中文, English). ``task`` is the request's visit task (state, due_at, assignee) if any."""
    if task is None or (task["assignee"] is None and task["state"] in (TaskState.new.value, TaskState.returned.value)):
        if outcome == "unplaced":
            return (
                "locating",
                "已收到您的求助，工作人员正在确认您的住址，会尽快与您联系。",
                "We have your request. Staff are confirming where you live and will contact you soon.",
            )
        return (
            "received",
            "已收到您的求助，正在安排网格员与您联系。",
            "We have your request and are finding a grid worker to contact you.",
        )
    state = task["state"]
    if state in (TaskState.new.value, TaskState.accepted.value):
        zh_day, en_day = _day(task["due_at"])
        return (
            "assigned",
            f"您的求助已交给所在网格的网格员，将在 {zh_day} 前上门了解情况。",
            f"A grid worker for your area has your request and will visit by {en_day}.",
        )
    if state == TaskState.returned.value:
        return (
            "reassigning",
            "正在为您重新安排网格员，请耐心等待。",
            "We are arranging another grid worker for you.",
        )
    if state == TaskState.visited.value:
        return (
            "visited",
            "网格员已上门了解情况，正在为您办理后续帮扶。",
            "A grid worker has visited you; the help you need is being arranged.",
        )
    return ("closed", "您的求助已处理完毕。", "Your request has been dealt with.")
