"""The phone's rule evaluator, run inside Chromium, gives the server's verdicts on the shared vectors.

node --test runs the same file under Node (pwa/test/eligibility.test.mjs); this proves the browser
engine the field app actually runs in agrees too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.matching.catalogue import match, shipped_rules

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors"


@pytest.fixture(scope="module")
def page(browser: Any) -> Iterator[Any]:
    # The session's Chromium (tests/e2e/conftest.py): one sync Playwright per process.
    page = browser.new_page()
    page.set_content("<!doctype html><title>rules</title>")
    source = (ROOT / "pwa" / "src" / "eligibility.js").read_text(encoding="utf-8")
    # An inline module: the file as shipped, its exports handed to the page.
    page.add_script_tag(content=source + "\nwindow.rules = { evaluate, matchAll };", type="module")
    page.wait_for_function("window.rules !== undefined")
    yield page
    page.close()


def test_every_semantic_case_gives_the_same_verdict_in_the_browser(page: Any) -> None:
    cases = json.loads((VECTORS / "eligibility_cases.json").read_text(encoding="utf-8"))["cases"]
    found = page.evaluate(
        """cases => cases.map(c => {
            const r = window.rules.evaluate(c.rule, c.facts, c.params);
            return [r.verdict, r.leaves.map(l => l.outcome), r.missing];
        })""",
        cases,
    )
    expected = [[case["verdict"], case["leaves"], case["missing"]] for case in cases]
    assert found == expected


def test_the_shipped_catalogue_matches_households_as_the_server_does(page: Any) -> None:
    households = json.loads((VECTORS / "eligibility_catalogue.json").read_text(encoding="utf-8"))["households"]
    rules = json.loads((ROOT / "backend" / "matching" / "rules_v1.json").read_text(encoding="utf-8"))
    browser = page.evaluate(
        "([rules, households]) => households.map(h => window.rules.matchAll(rules, h.facts)"
        ".map(m => [m.service, m.verdict, m.missing]))",
        [rules, households],
    )
    # Against the engine itself, not only the recorded file: both must agree today.
    server = [
        [[item.service, item.verdict.value, item.missing] for item in match(shipped_rules(), household["facts"])]
        for household in households
    ]
    assert browser == server
    assert server == [household["expected"] for household in households]
