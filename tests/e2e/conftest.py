"""Browser tests drive Debian's Chromium against the real app (API + worker) on 127.0.0.1.

One app per session: a fresh database (PostgreSQL when ``GRIDAID_TEST_DB=postgres``, else SQLite),
Redis from ``GRIDAID_TEST_REDIS`` (its host, database 10, a queue of our own) or the app's embedded
one. Tests keep out of each other's way by using their own workers (worker1..worker8) and tasks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import AppServer, World, artifacts_dir, launch_chromium, new_phone


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives Debian's Chromium against the running app (PostgreSQL pass)")
    from playwright.sync_api import expect

    # Two shared cores: what a phone shows within a blink can take seconds here.
    expect.set_options(timeout=20_000)


def _redis_url() -> str | None:
    url = os.environ.get("GRIDAID_TEST_REDIS")
    if not url:
        return None
    # Same server as the other tests, its own database number (the queue name is ours too).
    return url.rsplit("/", 1)[0] + "/" + os.environ.get("GRIDAID_E2E_REDIS_DB", "10")


@pytest.fixture(scope="session")
def app_server(engine_name: str) -> Iterator[AppServer]:
    started = time.monotonic()
    server = AppServer(engine=engine_name, redis_url=_redis_url())
    try:
        server.start()
        print(f"\ne2e app up in {time.monotonic() - started:.1f} s at {server.base} ({engine_name})")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def world(app_server: AppServer) -> World:
    return World(app_server)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """The session's one Chromium (sync Playwright cannot run twice at once in a process)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def phone(browser: Any, app_server: AppServer) -> Iterator[Callable[[], Any]]:
    """``phone()`` → a new browser context as a fresh phone (closed after the test)."""
    contexts: list[Any] = []

    def make() -> Any:
        context = new_phone(browser, app_server.base)
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    return artifacts_dir()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    # When a browser test fails, the server's last words usually say why.
    if report.when == "call" and report.failed and "app_server" in getattr(item, "fixturenames", ()):
        server = item.funcargs.get("app_server")  # type: ignore[attr-defined]
        if server is not None:
            report.sections.append(("gridaid server log (tail)", server.log_tail()))
