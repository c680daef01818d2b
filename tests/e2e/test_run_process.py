"""`gridaid run` as a user starts it: one process tree that comes up ready, serves the demo,
keeps personal data out of its output, and leaves nothing behind when stopped."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import ID_NUMBER_PATTERN, PHONE_PATTERN, id_number

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
DEMO_PASSWORD = "GridAid-demo-2026"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _call(base: str, method: str, path: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body else None)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _wait_ready(process: subprocess.Popen, base: str, timeout_s: float, log_path: Path) -> None:
    """Ready as a user sees it: /ready answers 200 and the banner with the URL has been printed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if _call(base, "GET", "/ready")[0] == 200 and "GridAid is running at" in log_path.read_text(
                errors="replace"
            ):
                return
        except OSError:
            pass
        try:
            process.wait(timeout=0.25)  # waits on the process: a crash ends the wait at once
        except subprocess.TimeoutExpired:
            continue
        pytest.fail(f"gridaid run exited early with {process.returncode}")
    pytest.fail("gridaid run was not ready in time")


@pytest.fixture
def run_env(tmp_path: Path, engine_name: str):
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("GRIDAID_", "REDIS_URL", "DATABASE_URL"))
    }
    env["GRIDAID_VAR_DIR"] = str(tmp_path / "var")
    database = None
    if engine_name == "postgres":
        from tests.conftest import _PG_ADMIN_DSN, _pg_admin

        database = f"gridaid_run_{os.getpid()}_{int(time.time())}"
        _pg_admin(f'CREATE DATABASE "{database}"')
        env["DATABASE_URL"] = _PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{database}"
    yield env
    if database:
        from tests.conftest import _pg_admin

        _pg_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def test_run_serves_the_demo_and_stops_cleanly_on_sigterm(run_env: dict, tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "run.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "run", "--demo", "--port", str(port)],
            cwd=ROOT,
            env=run_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_ready(process, base, timeout_s=180, log_path=log_path)
            tree = _descendants(process.pid)
            assert len(tree) >= 3, "expected the API, the worker and redis-server as children"

            # The demo is there and scoped: a worker sees households, only in their own grids.
            status, tokens = _call(base, "POST", "/api/v1/auth/login", {"login": "worker1", "password": DEMO_PASSWORD})
            assert status == 200, tokens
            me = _call(base, "GET", "/api/v1/auth/me", token=tokens["access_token"])[1]
            page = _call(base, "GET", "/api/v1/households?limit=200", token=tokens["access_token"])[1]
            assert page["total"] > 0
            assert {item["grid_code"] for item in page["items"]} <= set(me["grid_codes"])
            # ... and opens the app to visit tasks for those households, raised by the demo's warnings.
            synced = _call(base, "GET", "/api/v1/sync?cursor=0", token=tokens["access_token"])[1]
            assert synced["tasks"] and {task["grid_code"] for task in synced["tasks"]} <= set(me["grid_codes"])
            # Something personal goes through the running server: it must not reach the log.
            secret = id_number()
            _call(base, "POST", "/api/v1/households/lookup", {"id_number": secret}, token=tokens["access_token"])
            _call(base, "POST", "/api/v1/auth/login", {"login": "13912345678", "password": "wrong-password"})
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                pytest.fail("gridaid run did not stop within 30 s of SIGTERM")

    assert code == 0
    survivors = [pid for pid in tree if _alive(pid)]
    assert survivors == [], f"processes left behind: {survivors}"

    output = log_path.read_text(errors="replace")
    assert f"GridAid is running at {base}/" in output
    assert "worker1" in output and DEMO_PASSWORD in output  # the demo logins are printed
    assert secret not in output
    assert not ID_NUMBER_PATTERN.search(output), "an ID-number-shaped value reached the log"
    assert not PHONE_PATTERN.search(output), "a phone-shaped value reached the log"
