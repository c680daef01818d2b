"""Each benchmark owns one section of ``bench/RESULTS.md``, between markers, and rewrites only that.

``bench/run.py`` rewrites the grid part of the file and keeps every marked section as it was.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import sqlite3
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"


def marked_sections(text: str) -> list[str]:
    """Every marked section in ``text``, markers included, in order."""
    return [match.group(0) for match in re.finditer(r"<!-- bench:([\w-]+) -->.*?<!-- /bench:\1 -->", text, re.S)]


def replace_section(name: str, body: str, path: Path = RESULTS) -> None:
    start, end = _markers(name)
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
    print(f"wrote the {name!r} section of {path}")


def machine_facts(postgres_version: str | None = None) -> list[str]:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kb = int(meminfo.read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GiB RAM"
    engines = f"SQLite {sqlite3.sqlite_version}" + (f", PostgreSQL {postgres_version}" if postgres_version else "")
    return [
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {cores} cores (nproc), {cpu}{memory}, {platform.system()} {platform.release()}; "
        f"load average when written: {load}",
        f"- Python {platform.python_version()}, {engines}; database, app and load generator share the machine",
    ]
