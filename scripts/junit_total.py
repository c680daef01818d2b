"""Add up pytest's JUnit reports from several runs into one closing line."""

import sys
import xml.etree.ElementTree as ET

totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
for path in sys.argv[1:]:
    root = ET.parse(path).getroot()  # noqa: S314
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for suite in suites:
        for key in totals:
            totals[key] += int(suite.get(key, 0))
failed = totals["failures"] + totals["errors"]
passed = totals["tests"] - failed - totals["skipped"]
line = f"{passed} passed, {failed} failed"
if totals["skipped"]:
    line += f", {totals['skipped']} skipped"
print(f"total: {line}")
sys.exit(1 if failed or passed == 0 else 0)
