"""The eligibility rule evaluator: declarative rules over household facts, three-valued.

A rule is data, so the same rules run on the phone (pwa/src/eligibility.js, offline) and here (the
authoritative answer). Both follow exactly these semantics, proved by the shared vectors in
tests/vectors/eligibility.json:

- A condition is ``{"all": [...]}``, ``{"any": [...]}``, ``{"not": cond}`` or a leaf
  ``{"fact": name, "op": op, "value": v}``; ``v`` is a literal or ``{"param": name, "times": k}``.
- A leaf is *met*, *unmet* or *unknown*. Unknown when the fact is missing (absent or null), when the
  types do not fit the operator (a string compared with ``<``), or when a parameter is missing: a
  rule never crashes on a household file with gaps, it says what it would need to know.
- ``all``/``any``/``not`` combine with Kleene's logic: ``all`` is unmet if any part is unmet, else
  unknown if any part is unknown; ``any`` is met if any part is met, else unknown if any is unknown.
- Booleans are not numbers (Python's ``True == 1`` must not leak into a verdict).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

MET, UNMET, UNKNOWN = "met", "unmet", "unknown"
ORDERING_OPS = frozenset({"<", "<=", ">", ">="})
OPS = ORDERING_OPS | {"==", "!=", "in", "has"}


class Verdict(StrEnum):
    eligible = "eligible"  # every condition met on the known facts
    possible = "possible"  # nothing rules it out, but some facts are unknown
    ineligible = "ineligible"


@dataclass(frozen=True)
class LeafResult:
    fact: str
    op: str
    expected: Any
    actual: Any
    outcome: str


@dataclass
class Evaluation:
    verdict: Verdict
    leaves: list[LeafResult] = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        """Facts that would have to be learnt before the verdict could be certain."""
        seen: dict[str, None] = {}
        for leaf in self.leaves:
            if leaf.outcome == UNKNOWN:
                seen.setdefault(leaf.fact, None)
        return list(seen)


class RuleError(ValueError):
    """A rule that is malformed as data (caught when an admin saves it, not when it runs)."""


def _kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number" if math.isfinite(value) else None
    if isinstance(value, str):
        return "string"
    return None


def _same(a: Any, b: Any) -> bool | None:
    """Equality of two primitives of one kind; None when the kinds differ (the answer is unknown)."""
    kind_a, kind_b = _kind(a), _kind(b)
    if kind_a is None or kind_a != kind_b:
        return None
    return bool(a == b)


def _resolve(value: Any, params: dict[str, Any]) -> tuple[bool, Any]:
    if isinstance(value, dict):
        name = value.get("param")
        if name not in params or params[name] is None:
            return False, None
        base = params[name]
        times = value.get("times", 1)
        if times != 1:
            if _kind(base) != "number" or _kind(times) != "number":
                return False, None
            return True, base * times
        return True, base
    return True, value


def _leaf(node: dict[str, Any], facts: dict[str, Any], params: dict[str, Any]) -> LeafResult:
    name, op = node["fact"], node["op"]
    resolved, expected = _resolve(node.get("value"), params)
    actual = facts.get(name)
    outcome = UNKNOWN
    if resolved and actual is not None:
        outcome = _compare(op, actual, expected)
    return LeafResult(fact=name, op=op, expected=expected, actual=actual, outcome=outcome)


def _compare(op: str, actual: Any, expected: Any) -> str:
    if op in ORDERING_OPS:
        if _kind(actual) != "number" or _kind(expected) != "number":
            return UNKNOWN
        held = {
            "<": actual < expected,
            "<=": actual <= expected,
            ">": actual > expected,
            ">=": actual >= expected,
        }[op]
        return MET if held else UNMET
    if op in {"==", "!="}:
        same = _same(actual, expected)
        if same is None:
            return UNKNOWN
        return MET if same == (op == "==") else UNMET
    if op == "in":
        if not isinstance(expected, list) or _kind(actual) is None:
            return UNKNOWN
        return MET if any(_same(actual, option) for option in expected) else UNMET
    if op == "has":
        if not isinstance(actual, list) or _kind(expected) is None:
            return UNKNOWN
        return MET if any(_same(item, expected) for item in actual) else UNMET
    return UNKNOWN


def _combine(kind: str, outcomes: list[str]) -> str:
    decisive, other = (UNMET, MET) if kind == "all" else (MET, UNMET)
    if decisive in outcomes:
        return decisive
    if UNKNOWN in outcomes:
        return UNKNOWN
    return other


def _walk(node: dict[str, Any], facts: dict[str, Any], params: dict[str, Any], leaves: list[LeafResult]) -> str:
    if "all" in node or "any" in node:
        kind = "all" if "all" in node else "any"
        return _combine(kind, [_walk(part, facts, params, leaves) for part in node[kind]])
    if "not" in node:
        inner = _walk(node["not"], facts, params, leaves)
        return {MET: UNMET, UNMET: MET}.get(inner, UNKNOWN)
    result = _leaf(node, facts, params)
    leaves.append(result)
    return result.outcome


def evaluate(rule: dict[str, Any], facts: dict[str, Any], params: dict[str, Any]) -> Evaluation:
    """Every leaf is evaluated (no short cut) so the explanation names every fact that counted."""
    leaves: list[LeafResult] = []
    outcome = _walk(rule, facts, params, leaves)
    verdict = {MET: Verdict.eligible, UNMET: Verdict.ineligible}.get(outcome, Verdict.possible)
    return Evaluation(verdict=verdict, leaves=leaves)


def check_rule(node: Any, where: str = "rule") -> None:
    """Refuse a malformed rule when it is saved, with the path to the bad part."""
    if not isinstance(node, dict):
        raise RuleError(f"{where}: a condition must be an object")
    for kind in ("all", "any"):
        if kind in node:
            parts = node[kind]
            if not isinstance(parts, list) or not parts:
                raise RuleError(f"{where}.{kind}: needs a non-empty list")
            for index, part in enumerate(parts):
                check_rule(part, f"{where}.{kind}[{index}]")
            return
    if "not" in node:
        check_rule(node["not"], f"{where}.not")
        return
    if not isinstance(node.get("fact"), str) or not node["fact"]:
        raise RuleError(f"{where}: a leaf needs a fact name")
    if node.get("op") not in OPS:
        raise RuleError(f"{where}: unknown operator {node.get('op')!r}")
    if "value" not in node:
        raise RuleError(f"{where}: a leaf needs a value")
