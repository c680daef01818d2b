"""Sentences a grid worker can read aloud: which facts qualified, which failed, which are unknown."""

from __future__ import annotations

from typing import Any

from backend.matching.engine import MET, UNMET, Evaluation, LeafResult
from backend.matching.facts import FACTS_BY_NAME, Fact

OP_WORDS = {
    "<": ("低于", "below"),
    "<=": ("不超过", "at most"),
    ">": ("高于", "above"),
    ">=": ("至少", "at least"),
    "==": ("为", "is"),
    "!=": ("不为", "is not"),
    "in": ("属于", "one of"),
    "has": ("包含", "includes"),
}
MARKS = {MET: ("符合", "Meets"), UNMET: ("不符合", "Does not meet")}


def _value(value: Any, fact: Fact | None, *, chinese: bool) -> str:
    if isinstance(value, bool):
        return ("是" if value else "否") if chinese else ("yes" if value else "no")
    if isinstance(value, list):
        return ("、" if chinese else ", ").join(_value(item, fact, chinese=chinese) for item in value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and fact is not None:
        return fact.say(value, chinese=chinese)
    unit = (fact.unit_zh if chinese else fact.unit_en) if fact else ""
    if chinese:
        return f"{value}{unit}"
    return f"{value} {unit}".strip()


def _condition(leaf: LeafResult, fact: Fact | None, *, chinese: bool) -> str:
    label = (fact.label_zh if chinese else fact.label_en) if fact else leaf.fact
    if leaf.op in {"==", "!="} and isinstance(leaf.expected, bool):
        # "has a chronic illness", not "has a chronic illness is yes".
        positive = leaf.expected == (leaf.op == "==")
        if chinese:
            return label if positive else f"并非{label}"
        return label if positive else f"not {label}"
    op_zh, op_en = OP_WORDS.get(leaf.op, (leaf.op, leaf.op))
    expected = _value(leaf.expected, fact, chinese=chinese)
    return f"{label}{op_zh}{expected}" if chinese else f"{label} {op_en} {expected}"


def _sentence(leaf: LeafResult, *, chinese: bool) -> str:
    fact = FACTS_BY_NAME.get(leaf.fact)
    condition = _condition(leaf, fact, chinese=chinese)
    if leaf.outcome not in MARKS:
        return f"尚不清楚：{condition}" if chinese else f"Not known yet: {condition}"
    actual = _value(leaf.actual, fact, chinese=chinese)
    mark_zh, mark_en = MARKS[leaf.outcome]
    return f"{mark_zh}：{condition}（实际：{actual}）" if chinese else f"{mark_en}: {condition} (actual: {actual})"


def explain(outcome: Evaluation) -> tuple[list[str], list[str]]:
    return (
        [_sentence(leaf, chinese=True) for leaf in outcome.leaves],
        [_sentence(leaf, chinese=False) for leaf in outcome.leaves],
    )
