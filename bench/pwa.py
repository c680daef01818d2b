"""The field app on a phone: how big its shell is, how fast it starts offline, how small a photo gets.

``uv run python -m bench pwa`` (or ``uv run python -m bench.pwa``; options ``--runs``, ``--tasks``,
``--no-write``). Needs the built app (``pwa/dist``: ``bash scripts/build_pwa.sh``) and
Debian's Chromium at ``/usr/bin/chromium``. It starts the real app (API + worker) on 127.0.0.1
with a throwaway database (PostgreSQL on 127.0.0.1:5432 if one answers, else SQLite), the same way
the browser tests do (``tests/e2e/harness.py``).

1. **App shell size**: every text file the service worker precaches (HTML, JS, CSS, the manifest)
   plus the service worker itself, gzip -9 as a proxy would send them. Icons and map images are
   listed apart; fonts are the system's.
2. **Offline start to the task list**: a phone that logged in and synced once, then offline (the
   service worker cut off too), opens the app again; Chromium's CPU is slowed 4× through the DevTools
   protocol (``Emulation.setCPUThrottlingRate``). Measured in the page: from the navigation's start
   (``performance.timeOrigin``) to the first task row in the DOM. The reference, in the same run and
   the same throttling, is a blank HTML page served over loopback (to its ``DOMContentLoaded``):
   what any page costs the browser before the app does anything.
3. **Photo**: a 4 MB, 12-megapixel camera JPEG (EXIF with GPS and orientation) goes through the
   visit form's file input; the size the app queues and the time until its thumbnail shows.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import http.server
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.results import machine_facts, replace_section

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "pwa" / "dist"
COMMAND = "uv run python -m bench pwa"
SHELL_TARGET = 150 * 1024
START_TARGET_MS = 1000.0
PHOTO_TARGET = 300 * 1024
THROTTLE = 4
TEXT_SUFFIXES = {".html", ".js", ".css", ".webmanifest", ".json", ".svg"}

# Written into every page before its own scripts: when does the first task row appear?
_MARK_TASK_LIST = """
(() => {
  const seen = () => document.querySelector('[data-testid="task-item"]');
  const mark = () => { window.__benchTaskListAt = performance.now(); };
  const watch = () => {
    if (seen()) { mark(); return; }
    const observer = new MutationObserver(() => { if (seen()) { mark(); observer.disconnect(); } });
    observer.observe(document, {childList: true, subtree: true});
  };
  watch();
})();
"""
_BLANK_PAGE = b"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>blank</title></head>
<body><p>blank</p><script>document.addEventListener("DOMContentLoaded",
() => { window.__benchTaskListAt = performance.now(); });</script></body></html>"""


# ---------------------------------------------------------------------------------------------
# 1. Shell size


def shell_size() -> dict[str, Any]:
    build = json.loads((DIST / "build.json").read_text())
    precache = [path for path in build.get("precache", []) if path not in ("/",)]
    files = [*precache, "/sw.js"]
    rows, images = [], []
    for url in files:
        path = DIST / url.lstrip("/")
        if not path.is_file():
            continue
        data = path.read_bytes()
        row = {"file": url, "bytes": len(data), "gzip": len(gzip.compress(data, compresslevel=9, mtime=0))}
        (rows if path.suffix in TEXT_SUFFIXES and path.suffix != ".svg" else images).append(row)
    return {
        "version": build.get("version"),
        "files": rows,
        "images": images,
        "gzip_total": sum(row["gzip"] for row in rows),
        "raw_total": sum(row["bytes"] for row in rows),
    }


# ---------------------------------------------------------------------------------------------
# 2 and 3. In the browser


class _Blank(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("cache-control", "no-store")
        self.end_headers()
        with contextlib.suppress(BrokenPipeError):  # the tab was closed as soon as it had what it needed
            self.wfile.write(_BLANK_PAGE)

    def log_message(self, *args: Any) -> None:
        pass


def _timed_open(context: Any, url: str) -> float:
    """Open ``url`` in a new tab with the CPU slowed; milliseconds from navigation start to the mark."""
    page = context.new_page()
    try:
        cdp = context.new_cdp_session(page)
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": THROTTLE})
        page.goto(url, wait_until="commit")
        page.wait_for_function("() => window.__benchTaskListAt !== undefined", polling=50, timeout=30_000)
        return float(page.evaluate("window.__benchTaskListAt"))
    finally:
        page.close()


def browser_figures(runs: int, tasks: int, engine: str) -> dict[str, Any]:
    import os

    from playwright.sync_api import expect, sync_playwright

    from tests.e2e.flows import open_phone, task_item
    from tests.e2e.harness import AppServer, World, camera_jpeg, go_offline, launch_chromium, new_phone

    redis = os.environ.get("GRIDAID_BENCH_REDIS")
    server = AppServer(engine=engine, redis_url=redis).start()
    blank = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Blank)
    threading.Thread(target=blank.serve_forever, daemon=True).start()
    blank_url = f"http://127.0.0.1:{blank.server_address[1]}/blank.html"
    try:
        world = World(server)
        task_ids = [world.task("worker1") for _ in range(tasks)]
        with sync_playwright() as playwright, tempfile.TemporaryDirectory() as folder:
            browser = launch_chromium(playwright)
            phone = new_phone(browser, server.base)
            phone.set_default_timeout(60_000)
            page = open_phone(phone, "worker1")
            expect(task_item(page, task_ids[-1])).to_be_visible()
            photo = _photo(page, camera_jpeg(Path(folder) / "IMG_4032x3024.jpg"), task_ids[0])
            go_offline(phone)
            page.close()
            phone.add_init_script(_MARK_TASK_LIST)
            reference = new_phone(browser, server.base)
            app_ms, blank_ms = [], []
            _timed_open(phone, server.base + "/#/tasks")  # warm-up: compiled code cache, as a phone has it
            _timed_open(reference, blank_url)
            for _ in range(runs):  # alternate, so both see the same noise
                app_ms.append(_timed_open(phone, server.base + "/#/tasks"))
                blank_ms.append(_timed_open(reference, blank_url))
            browser.close()
        return {
            "engine": engine,
            "chromium": _chromium_version(),
            "tasks": tasks,
            "app_ms": app_ms,
            "blank_ms": blank_ms,
            "photo": photo,
        }
    finally:
        blank.shutdown()
        server.stop()


def _photo(page: Any, camera: Path, task_id: str) -> dict[str, Any]:
    from PIL import Image
    from playwright.sync_api import expect

    page.goto(f"/#/tasks/{task_id}/visit")
    expect(page.get_by_test_id("visit-form")).to_be_visible()
    started = time.perf_counter()
    page.get_by_test_id("visit-photo-input").set_input_files(str(camera))
    thumb = page.get_by_test_id("visit-photo-thumb")
    expect(thumb).to_have_count(1, timeout=120_000)
    seconds = time.perf_counter() - started
    with Image.open(camera) as image:
        original_size = image.size
    shape = thumb.first.evaluate(
        "e => { const i = e.tagName === 'IMG' ? e : e.querySelector('img');"
        " return i ? [i.naturalWidth, i.naturalHeight] : null; }"
    )
    return {
        "original_bytes": camera.stat().st_size,
        "original_px": list(original_size),
        "queued_bytes": int(thumb.first.get_attribute("data-bytes") or 0),
        "queued_px": shape,
        "seconds": seconds,
    }


def _chromium_version() -> str:
    out = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip().splitlines()[0] if out.stdout else "chromium"


# ---------------------------------------------------------------------------------------------
# Report


def _met(ok: bool) -> str:
    return "**met**" if ok else "**NOT met**"


def render(shell: dict[str, Any], figures: dict[str, Any], argv: list[str]) -> str:
    app = statistics.median(figures["app_ms"])
    blank = statistics.median(figures["blank_ms"])
    photo = figures["photo"]
    command = " ".join([COMMAND, *argv])
    lines = [
        "## The field app (PWA): shell size, offline start, photo compression",
        "",
        f"Run: `{command}` (this section only; `uv run python -m bench` runs every benchmark).",
        "",
        f"- command: `{command}`",
        *machine_facts(_postgres_version() if figures["engine"] == "postgres" else None),
        f"- browser: {figures['chromium']}, headless, 390×844, through Playwright; app build "
        f"`{shell['version']}`; server: `gridaid run` on 127.0.0.1 ({figures['engine']})",
        "",
        "Targets:",
        "",
        f"- app shell ≤ 150 KB gzip: {_met(shell['gzip_total'] <= SHELL_TARGET)} "
        f"({shell['gzip_total'] / 1024:.1f} KB gzip -9, {shell['raw_total'] / 1024:.1f} KB raw)",
        f"- offline start to the task list ≤ 1 s at {THROTTLE}× CPU throttling: {_met(app <= START_TARGET_MS)} "
        f"(median {app:.0f} ms of {len(figures['app_ms'])}; a blank page {blank:.0f} ms in the same run)",
        f"- a 4 MB camera photo ≤ 300 KB before it is queued: {_met(0 < photo['queued_bytes'] <= PHOTO_TARGET)} "
        f"({photo['original_bytes'] / 1e6:.1f} MB → {photo['queued_bytes'] / 1024:.0f} KB)",
        "",
        "### 1. App shell (what the service worker precaches)",
        "",
        "| file | bytes | gzip -9 |",
        "| --- | ---: | ---: |",
        *[f"| `{row['file']}` | {row['bytes']:,} | {row['gzip']:,} |" for row in shell["files"]],
        f"| **total** | **{shell['raw_total']:,}** | **{shell['gzip_total']:,}** |",
        "",
        "Also precached, not counted (images; fonts are the system's): "
        + ", ".join(f"`{row['file']}` {row['bytes'] / 1024:.1f} KB" for row in shell["images"])
        + ".",
        "",
        f"### 2. Offline start, CPU throttled {THROTTLE}×",
        "",
        f"The phone logged in as a worker with {figures['tasks']} open tasks and synced, then went offline "
        "(the page and its service worker cut off). Each run opens `/#/tasks` in a new tab; the time is "
        "from the navigation's start to the first task row in the DOM, read in the page. One warm-up run "
        "first (a phone that opened the app before has its compiled code cached).",
        "",
        "| page | median ms | runs (ms) |",
        "| --- | ---: | --- |",
        f"| app, offline, to the task list | {app:.0f} | {', '.join(f'{v:.0f}' for v in figures['app_ms'])} |",
        f"| blank HTML page over loopback, to DOMContentLoaded | {blank:.0f} | "
        f"{', '.join(f'{v:.0f}' for v in figures['blank_ms'])} |",
        "",
        f"The app costs {app - blank:.0f} ms more than a blank page on this machine ({app / blank:.1f}×). "
        "Throttling slows the page's main thread; the service worker runs unthrottled.",
        "",
        "### 3. A camera photo in the visit form",
        "",
        f"- in: {photo['original_bytes']:,} bytes, {photo['original_px'][0]}×{photo['original_px'][1]} px "
        "JPEG with EXIF (GPS, camera, orientation 6)",
        f"- queued: {photo['queued_bytes']:,} bytes"
        + (f", {photo['queued_px'][0]}×{photo['queued_px'][1]} px" if photo["queued_px"] else "")
        + f"; {photo['seconds']:.1f} s from choosing the file to its thumbnail (no throttling)",
    ]
    return "\n".join(lines)


def _postgres_version() -> str | None:
    from bench.warnings import postgres_version

    return postgres_version()


def _engine() -> str:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=2).close()
    except OSError:
        return "sqlite"
    return "postgres"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="timed offline starts (median reported)")
    parser.add_argument("--tasks", type=int, default=25, help="open tasks on the phone")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args(argv)
    if not (DIST / "build.json").exists():
        print("pwa/dist is not built: run `bash scripts/build_pwa.sh` first")
        return 1
    shell = shell_size()
    figures = browser_figures(args.runs, args.tasks, _engine())
    text = render(shell, figures, sys.argv[1:] if argv is None else argv)
    print(text)
    if not args.no_write:
        replace_section("pwa", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
