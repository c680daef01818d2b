"""Show a validation's findings to people: a rich table on the terminal, or JSON for machines."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from geo.validate import Finding, findings_to_json

_STYLE = {"error": "bold red", "warning": "yellow"}


def render_report(
    findings: Sequence[Finding],
    console: Console,
    *,
    title: str = "Validation report",
    chinese: bool = False,
    limit: int | None = None,
) -> None:
    """A table (severity, check, feature, message), errors first, then counts per check.

    ``chinese`` shows ``message_zh``; ``limit`` cuts the table (the counts still cover everything).
    """
    ordered = sorted(findings, key=lambda f: (not f.is_error, f.check, f.feature))
    if not ordered:
        console.print(Text("No problems found. 未发现问题。", style="bold green"))
        return
    shown = ordered if limit is None else ordered[:limit]
    table = Table(title=title, show_lines=False, expand=False)
    table.add_column("Severity", no_wrap=True)
    table.add_column("Check", no_wrap=True)
    table.add_column("Feature", overflow="fold")
    table.add_column("Message", overflow="fold")
    for finding in shown:
        table.add_row(
            Text(finding.severity, style=_STYLE[finding.severity]),
            finding.check,
            finding.feature,
            finding.message_zh if chinese else finding.message,
        )
    console.print(table)
    if len(shown) < len(ordered):
        console.print(f"… {len(ordered) - len(shown)} more not shown (the JSON report has them all)")
    console.print(_summary(ordered))


def _summary(findings: Sequence[Finding]) -> Text:
    errors = sum(1 for f in findings if f.is_error)
    warnings = len(findings) - errors
    per_check = Counter(f.check for f in findings)
    text = Text()
    text.append(f"{errors} error{'s' if errors != 1 else ''}", style=_STYLE["error"] if errors else "green")
    text.append(", ")
    text.append(f"{warnings} warning{'s' if warnings != 1 else ''}", style=_STYLE["warning"] if warnings else "green")
    text.append(f" (错误 {errors} 个，警告 {warnings} 个)")
    if per_check:
        text.append("\n" + ", ".join(f"{check}: {count}" for check, count in sorted(per_check.items())))
    return text


def report_json(findings: Sequence[Finding]) -> dict[str, Any]:
    """``{"ok", "errors", "warnings", "by_check", "findings": [...]}``, ready for ``json.dumps``."""
    return findings_to_json(findings)
