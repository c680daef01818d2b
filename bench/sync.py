"""The morning rush: 13,000 grid workers open the app and fetch their full task list at once.

``uv run python -m bench.sync`` (options: ``--workers``, ``--tasks``, ``--concurrency``,
``--server-workers``, ``--no-write``). PostgreSQL only: a throwaway database on 127.0.0.1:5432,
dropped afterwards, and an embedded Redis of its own.

A child process builds the scene, untimed: the demo's 13,000 grids with a worker on each (topped up
to ``--workers`` accounts), ~20 open tasks per worker on their own households (one open task per
household), a few inbox messages each, and one worker with 300 open tasks. Tokens are minted with
``backend.accounts.sessions.create_session`` (13,000 argon2 logins would measure argon2).

Then the real app runs under uvicorn on 127.0.0.1 with its connection pool, and a loopback load
generator (uvloop + httptools, bounded concurrency) makes every worker's ``GET /api/v1/sync`` (cursor=0, the
full snapshot a phone gets on a fresh start) once, with their own token. The same number of
requests against ``GET /health`` in the same run shows what the server, loop and client cost
without the database. Database, server and load generator share the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.city import ROOT, fresh_database
from bench.results import machine_facts, replace_section

COMMAND = "uv run python -m bench.sync"
TARGET_S = 60.0
TARGET_P99_MS = 250.0
TARGET_BYTES = 2 * 1024 * 1024
BIG_WORKER_TASKS = 300


# ---------------------------------------------------------------------------------------------
# The scene (child process)


async def seed(workers_n: int, tasks_per_worker: int) -> dict[str, Any]:
    import random

    from backend.accounts.passwords import hash_password
    from backend.accounts.sessions import create_session
    from backend.accounts.tables import Account, Role
    from backend.households.tables import Household
    from backend.lib.db import close_pool, open_pool
    from backend.notifications.tables import Notification
    from backend.sync.tables import SyncChange
    from backend.tasks.tables import VisitTask
    from bench.city import _account, grid_workers, household_rows, insert_rows, seed_city, task_row

    started = time.perf_counter()
    places = await seed_city()
    owners = await grid_workers()
    workers = sorted(set(owners.values()), key=str)
    now = datetime.now(UTC)
    extra = []
    password = hash_password("bench-unused-password")
    for n in range(max(0, workers_n - len(workers))):
        account = _account(uuid.uuid4(), f"bench_cover{n + 1}", Role.grid_worker.value, password, now)
        extra.append(account)
    await insert_rows(Account, extra)
    workers = workers[:workers_n] + [row["id"] for row in extra]
    worker_places: dict[Any, Any] = {}
    for place in places:
        if place.code in owners:
            worker_places.setdefault(owners[place.code], place)
    rng = random.Random(2026)  # noqa: S311 — a reproducible scene, not a secret
    big = workers[0]
    counts = [BIG_WORKER_TASKS if w == big else max(1, int(rng.gauss(tasks_per_worker, 4))) for w in workers]
    homes = [worker_places.get(w) or places[rng.randrange(len(places))] for w in workers]
    households = household_rows([home for home, n in zip(homes, counts, strict=True) for _ in range(n)], sum(counts))
    assignees = [w for w, n in zip(workers, counts, strict=True) for _ in range(n)]
    tasks = []
    for household, assignee in zip(households, assignees, strict=True):
        task = task_row(household, assignee, now - timedelta(days=rng.randint(0, 6)), days=rng.randint(-2, 7))
        task["state"] = rng.choice(["new", "new", "accepted", "visited"])
        task["priority"] = rng.randint(1, 4)
        task["type_codes"] = json.dumps(rng.sample(["large_medical_expense", "income_drop", "traffic_accident"], 2))
        tasks.append(task)
    notes = [
        {
            "id": uuid.uuid4(),
            "account": worker,
            "kind": "task.new",
            "title_zh": f"您有 {n} 个新的走访任务",
            "title_en": f"{n} new visit tasks",
            "detail": json.dumps({"new": n, "raised": 0}),
            "created_at": now - timedelta(hours=k),
            "read_at": None,
        }
        for worker, n in zip(workers, counts, strict=True)
        for k in range(3)
    ]
    changes = [
        {"account": task["assignee"], "entity": "task", "entity_id": str(task["id"]), "op": "upsert", "at": now}
        for task in tasks
    ] + [
        {"account": note["account"], "entity": "notification", "entity_id": str(note["id"]), "op": "upsert", "at": now}
        for note in notes
    ]
    await insert_rows(Household, households)
    await insert_rows(VisitTask, tasks)
    await insert_rows(Notification, notes)
    await insert_rows(SyncChange, changes)
    # Fresh statistics, as a live database has them (autovacuum would get there on its own, minutes
    # later): without them the planner reads all 250,000 tasks by state for each worker's list.
    await SyncChange.raw("ANALYZE")
    seeded = time.perf_counter() - started

    await open_pool()
    try:
        tokens: list[str] = []
        for start in range(0, len(workers), 50):
            issued = await asyncio.gather(
                *(
                    create_session(worker, mfa_pending=False, client="127.0.0.1", user_agent="bench")
                    for worker in workers[start : start + 50]
                )
            )
            tokens.extend(tokens_for.access_token for tokens_for in issued)
    finally:
        await close_pool()
    return {
        "tokens": tokens,
        "workers": len(workers),
        "workers_without_own_grid": len(extra),
        "tasks": len(tasks),
        "tasks_per_worker_median": statistics.median(counts),
        "notifications": len(notes),
        "sync_changes": len(changes),
        "grids": len(places),
        "seed_seconds": seeded,
        "all_seconds": time.perf_counter() - started,
    }


# ---------------------------------------------------------------------------------------------
# The load (parent process)


@dataclass
class Load:
    name: str
    requests: int
    concurrency: int
    seconds: float
    latencies_ms: list[float]
    errors: dict[str, int]
    bytes_median: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else float("nan")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "requests": self.requests,
            "concurrency": self.concurrency,
            "seconds": round(self.seconds, 2),
            "requests_per_second": round(self.rate, 1),
            "p50_ms": round(self.percentile(50), 1),
            "p90_ms": round(self.percentile(90), 1),
            "p99_ms": round(self.percentile(99), 1),
            "max_ms": round(max(self.latencies_ms, default=float("nan")), 1),
            "errors": self.errors,
            "bytes_median": self.bytes_median,
        }


class _Connection(asyncio.Protocol):
    """One kept-alive HTTP/1.1 connection: write a ready-made request, parse the answer with httptools.

    The load generator shares the two cores with the server and the database, so it does as little
    as a client can: no per-request objects beyond the bytes, no header dictionaries, no decoding.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        import httptools

        self.loop = loop
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.answer: asyncio.Future[tuple[int, int]] | None = None
        self.size = 0
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except Exception as exc:  # a malformed answer: fail this request, drop the connection
            if self.answer is not None and not self.answer.done():
                self.answer.set_exception(exc)
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.keep_alive = False
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(ConnectionError("connection closed before the answer"))

    def on_body(self, body: bytes) -> None:
        self.size += len(body)

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        if self.answer is not None and not self.answer.done():
            self.answer.set_result((self.parser.get_status_code(), self.size))

    async def send(self, request: bytes) -> tuple[int, int]:
        assert self.transport is not None
        self.size = 0
        self.answer = self.loop.create_future()
        self.transport.write(request)
        return await self.answer


async def run_load(bases: list[str], name: str, path: str, tokens: list[str | None], concurrency: int) -> Load:
    """Each token's request once, ``concurrency`` at a time, over kept-alive loopback connections.

    A closed loop: each of ``concurrency`` connections sends its next request as soon as the last
    answer is in; connection ``i`` goes to server ``i mod len(bases)``. Requests are pre-built bytes;
    answers are parsed by httptools (what uvicorn uses).
    """
    loop = asyncio.get_running_loop()
    head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: gridaid-bench\r\n"
    requests = [(head + (f"Authorization: Bearer {token}\r\n" if token else "") + "\r\n").encode() for token in tokens]
    queue = iter(requests)
    latencies: list[float] = []
    sizes: list[int] = []
    errors: dict[str, int] = {}

    async def connect(base: str) -> _Connection:
        host, _, port = base.removeprefix("http://").partition(":")
        _, protocol = await loop.create_connection(lambda: _Connection(loop), host, int(port))
        return protocol

    async def one_user(base: str) -> None:
        connection = await connect(base)
        try:
            for request in queue:
                if not connection.keep_alive:
                    connection = await connect(base)
                began = time.perf_counter()
                try:
                    status, size = await connection.send(request)
                except (OSError, ConnectionError, ValueError) as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    connection = await connect(base)
                    continue
                latencies.append((time.perf_counter() - began) * 1000)
                sizes.append(size)
                if status != 200:
                    errors[str(status)] = errors.get(str(status), 0) + 1
        finally:
            if connection.transport is not None:
                connection.transport.close()

    began = time.perf_counter()
    await asyncio.gather(*(one_user(bases[n % len(bases)]) for n in range(concurrency)))
    seconds = time.perf_counter() - began
    return Load(name, len(tokens), concurrency, seconds, latencies, errors, int(statistics.median(sizes or [0])))


def run(coroutine: Any) -> Any:
    """The load generator's loop is uvloop, like the server's."""
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_healthy(base: str, server: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {server.returncode}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("uvicorn did not answer /health within 60 s")


def start_servers(env: dict[str, str], count: int) -> tuple[list[subprocess.Popen[bytes]], list[str], list[str]]:
    """``count`` single-process uvicorn servers of the real app, each on its own loopback port.

    Not ``uvicorn --workers N``: those processes share one listening socket and the kernel gave all
    32 kept-alive connections of the load to one of them (``ss`` showed 32 and 0), so the second
    core served nothing. Separate ports with the connections spread evenly across them is what the
    deployment does (API replicas behind nginx, ``docker/compose.yaml``).
    """
    servers: list[subprocess.Popen[bytes]] = []
    bases: list[str] = []
    command: list[str] = []
    for _ in range(count):
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "backend.asgi:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
        ]
        servers.append(subprocess.Popen(command, cwd=ROOT, env=env))  # noqa: S603 — our own app
        bases.append(f"http://127.0.0.1:{port}")
    return servers, bases, command


def stop_servers(servers: list[subprocess.Popen[bytes]]) -> None:
    for server in servers:
        server.terminate()
    for server in servers:
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def measure(env: dict[str, str], args: argparse.Namespace, tokens: dict[str, Any]) -> dict[str, Any]:
    import httpx

    from backend.lib.redis import EmbeddedRedis

    var_dir = Path(env["GRIDAID_VAR_DIR"])
    redis = EmbeddedRedis(var_dir / "redis.sock").start()
    server_env = env | {
        "REDIS_URL": redis.url,
        "DATABASE_POOL_MAX": str(args.pool),
        "DATABASE_POOL_MIN": str(min(args.pool, 4)),
    }
    servers, bases, command = start_servers(server_env, args.server_workers)
    try:
        for base, server in zip(bases, servers, strict=True):
            wait_healthy(base, server)
        big = httpx.get(
            f"{bases[0]}/api/v1/sync", params={"cursor": 0}, headers={"authorization": f"Bearer {tokens['big']}"}
        )
        big.raise_for_status()
        body = big.json()
        everyone: list[str | None] = list(tokens["tokens"])
        health = run(run_load(bases, "GET /health", "/health", [None] * len(everyone), args.concurrency))
        print(f"health: {health.to_json()}", flush=True)
        sync = run(run_load(bases, "GET /api/v1/sync?cursor=0", "/api/v1/sync?cursor=0", everyone, args.concurrency))
        print(f"sync: {sync.to_json()}", flush=True)
        # Afterwards, one request at a time: what a request costs with nobody queued ahead of it.
        alone = run(run_load(bases, "sync, one at a time", "/api/v1/sync?cursor=0", everyone[:300], 1))
        health_alone = run(run_load(bases, "health, one at a time", "/health", [None] * 300, 1))
    finally:
        stop_servers(servers)
        redis.stop()
    shown = ["uvicorn", *command[3:]]
    shown[shown.index("--port") + 1] = "PORT"
    return {
        "health": health.to_json(),
        "sync": sync.to_json(),
        "alone": {"sync_p50_ms": alone.percentile(50), "health_p50_ms": health_alone.percentile(50)},
        "big_worker": {
            "tasks": len(body["tasks"]),
            "bytes": len(big.content),
            "notifications": len(body["notifications"]),
        },
        "server": " ".join(shown),
        "servers": len(servers),
        "pool_max_per_process": args.pool,
    }


def postgres_version() -> str | None:
    from bench.warnings import postgres_version as version

    return version()


def render(seeded: dict[str, Any], result: dict[str, Any], argv: list[str]) -> str:
    sync, health, big = result["sync"], result["health"], result["big_worker"]
    within = sync["seconds"] <= TARGET_S and not sync["errors"]
    lines = [
        "## Morning rush: 13,000 workers fetch their task list (PostgreSQL)",
        "",
        f"Run: `{COMMAND}` (this section only; `uv run python -m bench` runs every benchmark).",
        "",
        f"- command: `{' '.join([COMMAND, *argv])}`",
        *machine_facts(postgres_version()),
        f"- server: {result['servers']} × `{result['server']}` (one process per core, each on its own port), "
        f"pool ≤ {result['pool_max_per_process']} connections per process; "
        "load: a minimal uvloop + httptools client (the same for both rows), "
        f"{sync['concurrency']} concurrent keep-alive connections spread evenly over the processes, each "
        "worker's request once",
        f"- scene: {seeded['workers']:,} workers ({seeded['workers_without_own_grid']:,} without a grid of their "
        f"own), {seeded['tasks']:,} open tasks (median {seeded['tasks_per_worker_median']:.0f} per worker), "
        f"{seeded['notifications']:,} inbox messages, {seeded['sync_changes']:,} sync changes, "
        f"{seeded['grids']:,} grids (built in {seeded['all_seconds']:.0f} s, not timed)",
        "",
        "| endpoint | requests | seconds | requests/s | p50 ms | p90 ms | p99 ms | max ms | errors | body |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for row in (sync, health):
        lines.append(
            f"| `{row['name']}` | {row['requests']:,} | {row['seconds']:.1f} | {row['requests_per_second']:,.0f} | "
            f"{row['p50_ms']:.0f} | {row['p90_ms']:.0f} | {row['p99_ms']:.0f} | {row['max_ms']:.0f} | "
            f"{row['errors'] or 'none'} | {row['bytes_median']:,} B |"
        )
    alone = result["alone"]
    lines += [
        "",
        f"One request at a time (nobody queued ahead, after the rush): sync p50 {alone['sync_p50_ms']:.1f} ms, "
        f"health p50 {alone['health_p50_ms']:.1f} ms.",
        "",
        "Targets:",
        "",
        f"- all {sync['requests']:,} snapshots within 60 s: {'**met**' if within else '**NOT met**'} "
        f"({sync['seconds']:.1f} s)",
        f"- p99 ≤ 250 ms: {'**met**' if sync['p99_ms'] <= TARGET_P99_MS else '**NOT met**'} "
        f"({sync['p99_ms']:.0f} ms at {sync['concurrency']} concurrent requests)",
        f"- snapshot of a worker with {big['tasks']} open tasks well under 2 MB: "
        f"{'**met**' if big['bytes'] < TARGET_BYTES / 4 else '**NOT met**'} ({big['bytes'] / 1024:,.0f} KiB "
        "uncompressed JSON)",
        "",
        "How to read it:",
        "",
        "- A snapshot is 5 queries: the caller (session, account and grids in one), the inbox with the latest",
        "  change id, open tasks joined with their households, the households' members (masked, so an",
        "  application made offline can name who consented), the worker's grids (GeoJSON text kept per",
        "  polygon in each process). A later sync with nothing new is 2. The session's last use is written in",
        "  the background, batched. Logout, revocation, a disabled account or a new grid count at once.",
        "- The load generator is deliberately light (pre-built requests, httptools parsing) so that it does not",
        "  eat the cores it measures; `GET /health` shows what server + generator cost without the database.",
        "- One uvicorn process per core on its own port, connections spread evenly: with `--workers 2` all 32",
        "  kept-alive connections landed in one process and the other stayed idle.",
        "- The scene is ANALYZEd after the bulk load (a live database has statistics): without them the",
        "  planner read all open tasks by state for every worker's list.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=13_000)
    parser.add_argument("--tasks", type=int, default=20, help="open tasks per worker (mean)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--server-workers", type=int, default=2, help="uvicorn processes, each on its own port")
    parser.add_argument("--pool", type=int, default=10, help="database pool size per server process")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    parser.add_argument("--seed-into", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seed_into:
        scene = asyncio.run(seed(args.workers, args.tasks))
        tokens = scene.pop("tokens")
        args.seed_into.write_text(json.dumps({"tokens": tokens, "big": tokens[0]}))
        print(json.dumps(scene, default=str))
        return 0
    with fresh_database("postgres") as env:
        env["ACCESS_TOKEN_TTL"] = str(4 * 3600)
        tokens_file = Path(env["GRIDAID_VAR_DIR"]) / "tokens.json"
        child = subprocess.run(  # noqa: S603 — our own module
            [
                sys.executable,
                "-m",
                "bench.sync",
                "--workers",
                str(args.workers),
                "--tasks",
                str(args.tasks),
                "--seed-into",
                str(tokens_file),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            check=True,
        )
        seeded = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"scene: {seeded}", flush=True)
        os.environ.pop("DATABASE_URL", None)
        result = measure(env, args, json.loads(tokens_file.read_text()))
    text = render(seeded, result, sys.argv[1:] if argv is None else argv)
    print(text)
    if not args.no_write:
        replace_section("sync", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
