"""The real app for browser tests: its own database, Redis, API and worker, and a phone to use it with.

``AppServer`` creates a fresh database (PostgreSQL ``gridaid_e2e_<random>``, or a SQLite file),
seeds the place (``tests.e2e.seed``), starts ``gridaid run`` (API + arq worker as one process tree)
on a free port of 127.0.0.1 and waits for ``/ready``. ``Api`` talks to it as a person or a
department system would. Also here: the Chromium launch options, the phone context, going
offline for real (the service worker included), and camera-like JPEGs.

``bench/pwa.py`` uses the same pieces.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 390, "height": 844}
PG_ADMIN_DSN = os.environ.get("GRIDAID_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _in_own_loop(coroutine: Any) -> Any:
    """Run a coroutine to its end from sync code, even under Playwright's sync API (which keeps an
    event loop running in this thread)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _pg_admin(sql: str) -> None:
    import asyncpg

    async def run() -> None:
        connection = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    _in_own_loop(run())


def artifacts_dir() -> Path:
    """Where screenshots go: ``$GRIDAID_ARTIFACTS`` or ``tests/e2e/artifacts`` (gitignored)."""
    folder = Path(os.environ.get("GRIDAID_ARTIFACTS") or ROOT / "tests" / "e2e" / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# ---------------------------------------------------------------------------------------------
# The server


@dataclass
class AppServer:
    engine: str  # "postgres" or "sqlite"
    redis_url: str | None = None  # None: gridaid run starts its own embedded Redis
    port: int = field(default_factory=free_port)
    var_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gridaid-e2e-")))
    database: str | None = None
    process: subprocess.Popen[bytes] | None = None
    seeded: dict[str, Any] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.var_dir / "server.log"

    def env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("GRIDAID_", "REDIS_URL", "DATABASE_URL", "TRUST_FORWARDED_FOR"))
        }
        env["GRIDAID_VAR_DIR"] = str(self.var_dir / "var")
        env["GRIDAID_QUEUE"] = f"arq:e2e:{uuid.uuid4().hex[:8]}"
        # Every browser and the test itself speak from 127.0.0.1: a person's login limit would
        # otherwise count the whole suite as one very busy client.
        env["LOGIN_RATE_PER_CLIENT"] = "10000"
        env["PUBLIC_RATE_PER_CLIENT"] = "10000"
        if self.database:
            env["DATABASE_URL"] = PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{self.database}"
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        return env

    def start(self, timeout_s: float = 120.0) -> AppServer:
        if not (ROOT / "pwa" / "dist" / "sw.js").exists():
            raise RuntimeError("pwa/dist is not built: run `bash scripts/build_pwa.sh` (scripts/test.sh does)")
        if self.engine == "postgres":
            self.database = f"gridaid_e2e_{secrets.token_hex(5)}"
            _pg_admin(f'CREATE DATABASE "{self.database}"')
        out = self.var_dir / "seeded.json"
        subprocess.run([sys.executable, "-m", "tests.e2e.seed", str(out)], cwd=ROOT, env=self.env(), check=True)
        self.seeded = json.loads(out.read_text())
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "backend.cli", "run", "--port", str(self.port)],
                cwd=ROOT,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_ready(timeout_s)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        with httpx.Client(base_url=self.base, timeout=2) as client:
            while time.monotonic() < deadline:
                try:
                    if client.get("/ready").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                try:
                    self.process.wait(timeout=0.25)  # a crash ends the wait at once
                except subprocess.TimeoutExpired:
                    continue
                raise RuntimeError(f"gridaid run exited with {self.process.returncode}:\n{self.log_tail()}")
        raise RuntimeError(f"gridaid run was not ready in {timeout_s:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.database:
            _pg_admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        import shutil

        shutil.rmtree(self.var_dir, ignore_errors=True)

    def account_id(self, username: str) -> str:
        return str(self.seeded["accounts"][username])

    def grid_of(self, username: str) -> str:
        return str(self.seeded["grids"][username])

    def api(self, username: str | None = None) -> Api:
        api = Api(self.base)
        if username:
            api.login(username)
        return api

    def query(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """Read the app's database directly (what is really stored, not what the API chooses to say)."""
        if self.engine == "postgres":
            import asyncpg

            async def run() -> list[dict[str, Any]]:
                connection = await asyncpg.connect(self.env()["DATABASE_URL"])
                try:
                    return [dict(row) for row in await connection.fetch(sql, *args)]
                finally:
                    await connection.close()

            return list(_in_own_loop(run()))
        import sqlite3

        connection = sqlite3.connect(self.var_dir / "var" / "gridaid.sqlite3")
        connection.row_factory = sqlite3.Row
        try:
            # asyncpg numbers its parameters ($1); sqlite3 takes "?" in order.
            import re

            return [dict(row) for row in connection.execute(re.sub(r"\$\d+", "?", sql), args)]
        finally:
            connection.close()


# ---------------------------------------------------------------------------------------------
# Talking to it over HTTP


@dataclass
class Api:
    base: str
    token: str | None = None
    api_key: str | None = None

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        if self.api_key:
            headers["x-api-key"] = self.api_key
        if method == "POST":
            headers.setdefault("idempotency-key", str(uuid.uuid4()))
        with httpx.Client(base_url=self.base, timeout=30) as client:
            return client.request(method, path, headers=headers, **kwargs)

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def login(self, username: str, password: str | None = None) -> None:
        from tests.e2e.seed import PASSWORD

        tokens = self.ok("POST", "/api/v1/auth/login", json={"login": username, "password": password or PASSWORD})
        self.token = tokens["access_token"]


class World:
    """Households and tasks made through the API, the way departments and admins make them."""

    def __init__(self, server: AppServer) -> None:
        self.server = server
        self.admin = server.api("admin")
        key = self.admin.ok(
            "POST", "/api/v1/departments/medical_insurance/api-keys", json={"name": f"医保系统 {secrets.token_hex(2)}"}
        )
        self.department = Api(server.base, api_key=key["api_key"])

    def household(self, worker: str, head_name: str = "张秀英") -> tuple[str, str]:
        """A household in ``worker``'s grid: (its id, the head's ID number)."""
        from tests.e2e.seed import cell
        from tests.helpers import id_number

        person = id_number()
        west, south, east, north = cell(int(self.server.grid_of(worker).rsplit("G", 1)[1]))
        rng = secrets.SystemRandom()
        created = self.admin.ok(
            "POST",
            "/api/v1/households",
            json={
                "code": f"E2E{secrets.token_hex(4)}",
                "head_name": head_name,
                "address": "和平路12号3单元",
                "grid_code": self.server.grid_of(worker),
                "lon": rng.uniform(west + 0.001, east - 0.001),
                "lat": rng.uniform(south + 0.001, north - 0.001),
                "category": "dibao",
                "phone": "13812345678",
                "members": [{"name": head_name, "relation": "head", "id_number": person, "is_main_earner": True}],
            },
        )
        return created["id"], person

    def task(self, worker: str, kind: str = "large_medical_expense", head_name: str = "张秀英") -> str:
        """A visit task for ``worker``, from a department's warning: its id."""
        _, person = self.household(worker, head_name)
        answer = self.department.ok(
            "POST",
            "/api/v1/warnings",
            json={
                "warnings": [
                    {
                        "source_record_id": f"E2E{secrets.token_hex(6)}",
                        "type": kind,
                        "id_number": person,
                        "facts": {"amount_yuan": 86000},
                    }
                ]
            },
        )
        (result,) = answer["results"]
        assert result["outcome"] == "tasked", result
        return str(result["task_id"])


# ---------------------------------------------------------------------------------------------
# The phone


def launch_chromium(playwright: Any) -> Any:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def new_phone(browser: Any, base: str) -> Any:
    """A fresh phone: its own storage, service workers allowed, 390×844, Chinese first."""
    return browser.new_context(
        base_url=base,
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        service_workers="allow",
        geolocation={"longitude": 119.955, "latitude": 31.785, "accuracy": 12},
        permissions=["geolocation"],
    )


def wait_for_service_worker(page: Any, timeout_ms: float = 30_000) -> None:
    """The page is controlled by the service worker (not just registered): reload once after install."""
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    if not page.evaluate("!!navigator.serviceWorker.controller"):
        page.reload()
    page.wait_for_function("() => !!navigator.serviceWorker.controller", timeout=timeout_ms)
    app_ready(page)


def app_ready(page: Any) -> None:
    page.wait_for_function("() => !!window.gridaid && !!window.gridaid.ready")
    page.evaluate("window.gridaid.ready.then(() => true)")


def _cut(route: Any) -> None:
    route.abort("internetdisconnected")


def go_offline(context: Any) -> None:
    """Offline as a phone in a basement is: the page AND its service worker reach nothing.

    ``set_offline`` alone does not cut the service worker's own fetches (microsoft/playwright#2311),
    so every request to the app's API that reaches the network is aborted as well.
    """
    context.set_offline(True)
    context.route("**/api/**", _cut)


def go_online(context: Any) -> None:
    context.unroute("**/api/**", _cut)
    context.set_offline(False)


def assert_offline(page: Any) -> None:
    """Prove it: neither the page nor the service worker can reach the server."""
    from_page = page.evaluate(
        "fetch('/api/v1/auth/me', {cache: 'no-store'}).then(r => 'answered ' + r.status, () => 'failed')"
    )
    # A service worker may answer an API call itself when offline; what matters is that the
    # server did not: our own answers carry the request id header.
    if from_page != "failed":
        headers = page.evaluate(
            "fetch('/api/v1/auth/me', {cache: 'no-store'}).then(r => r.headers.get('x-request-id'))"
        )
        assert headers is None, f"the page reached the server while offline ({from_page})"
    for worker in page.context.service_workers:
        from_worker = worker.evaluate(
            "fetch('/ready', {cache: 'no-store'}).then(r => 'answered ' + r.status, () => 'failed')"
        )
        assert from_worker == "failed", f"the service worker reached the server while offline ({from_worker})"


def outbox_count(page: Any) -> int:
    return int(page.evaluate("window.gridaid.outboxCount()"))


def wait_outbox(page: Any, count: int, timeout_ms: float = 30_000) -> None:
    page.wait_for_function(
        "async (n) => (await window.gridaid.outboxCount()) === n", arg=count, polling=100, timeout=timeout_ms
    )


def flush(page: Any) -> None:
    page.evaluate("window.gridaid.flush()")


# ---------------------------------------------------------------------------------------------
# Photos


def camera_jpeg(path: Path, width: int = 4000, height: int = 3000, target_bytes: int = 4_000_000) -> Path:
    """A camera-like JPEG of about ``target_bytes``: sensor noise over a scene, EXIF with GPS and a
    90° orientation flag (the phone held upright), as a mid-range Android camera writes it."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(2026)
    y = np.arange(height, dtype=np.float32)[:, None]
    x = np.arange(width, dtype=np.float32)[None, :]
    scene = np.empty((height, width, 3), dtype=np.float32)
    scene[..., 0] = 120 + 80 * np.sin(x / 370.0) * np.cos(y / 290.0)
    scene[..., 1] = 110 + 70 * np.cos(x / 510.0 + y / 830.0)
    scene[..., 2] = 100 + 60 * np.sin((x + y) / 650.0)
    noise_level, quality = 9.0, 92
    for _ in range(8):
        noise = rng.standard_normal(scene.shape, dtype=np.float32) * noise_level
        pixels = np.clip(scene + noise, 0, 255).astype("uint8")
        data = _jpeg_bytes(Image.fromarray(pixels, "RGB"), quality)
        if 0.85 * target_bytes <= len(data) <= 1.15 * target_bytes:
            break
        noise_level *= (target_bytes / len(data)) ** 0.8
    path.write_bytes(data)
    return path


def small_jpeg(path: Path, width: int = 1280, height: int = 960) -> Path:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (200, 190, 170))
    draw = ImageDraw.Draw(image)
    for i in range(0, width, 40):
        draw.line([(i, 0), (width - i, height)], fill=(40 + i % 200, 80, 120), width=6)
    path.write_bytes(_jpeg_bytes(image, 90))
    return path


def _jpeg_bytes(image: Any, quality: int) -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F] = "Xiaomi"  # Make
    exif[0x0110] = "Redmi Note 12"  # Model
    exif[0x0112] = 6  # Orientation: rotate 90° CW to display
    exif[0x0132] = "2026:11:22 09:41:07"  # DateTime
    exif[0x8825] = {  # GPS IFD: where the family lives
        1: "N",
        2: (31.0, 47.0, 6.12),
        3: "E",
        4: (119.0, 57.0, 18.33),
    }
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, exif=exif.tobytes())
    return buffer.getvalue()


def has_exif(data: bytes) -> bool:
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    return bool(image.getexif()) or b"Exif\x00\x00" in data or "exif" in image.info
