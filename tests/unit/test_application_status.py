"""The one-sentence status of an application, in Chinese and English."""

from __future__ import annotations

from datetime import UTC, datetime

from backend.applications.status import Line, summarise
from backend.tasks.calendar import CHINA

DUE = datetime(2026, 12, 5, 23, 59, 59, tzinfo=CHINA)


def test_the_example_from_the_issue_reads_the_same() -> None:
    zh, en, decided = summarise(
        [
            Line("临时救助", "Temporary assistance", "approved", amount_yuan=3000, period="one_off"),
            Line("医疗救助", "Medical assistance", "accepted", due_at=DUE),
            Line("低保", "Dibao", "approved", amount_yuan=800, period="monthly"),
        ]
    )
    assert decided == 2
    assert en == (
        "2 of 3 services decided: temporary assistance approved, 3,000 yuan; dibao approved, 800 yuan a month; "
        "medical assistance in review, due 5 Dec"
    )
    assert zh == (
        "3 项中已有 2 项办结：临时救助已批准，3000 元；低保已批准，每月 800 元；医疗救助审核中，12 月 5 日前答复"
    )


def test_every_state_has_words_and_an_all_decided_application_says_so() -> None:
    zh, en, decided = summarise(
        [
            Line("临时救助", "Temporary assistance", "rejected"),
            Line("医疗救助", "Medical assistance", "approved", amount_yuan=12000, period="yearly", period_months=12),
        ]
    )
    assert decided == 2
    assert en == (
        "All 2 services decided: temporary assistance not approved; "
        "medical assistance approved, 12,000 yuan a year for 12 months"
    )
    assert zh.startswith("2 项已全部办结：临时救助未获批准；")
    _, en, _ = summarise([Line("就业援助", "Employment assistance", "info_requested", due_at=DUE)])
    assert en == "0 of 1 service decided: employment assistance needs more information, due 5 Dec"
    zh, en, _ = summarise([Line("法律援助", "Legal aid", "submitted")])
    assert en == "0 of 1 service decided: legal aid being sent to its department"
    assert zh == "1 项中已有 0 项办结：法律援助正在转交部门"


def test_a_due_date_is_the_beijing_date() -> None:
    # 16:30 UTC on 4 Dec is already 00:30 on 5 Dec in Beijing.
    due = datetime(2026, 12, 4, 16, 30, tzinfo=UTC)
    zh, en, _ = summarise([Line("医疗救助", "Medical assistance", "new", due_at=due)])
    assert en.endswith("due 5 Dec") and zh.endswith("12 月 5 日前答复")
