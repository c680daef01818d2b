"""The built field app as the server hands it to a phone: installable, cacheable the right way, and
every file the service worker precaches really there (one missing file would fail its install)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

DIST = Path(__file__).resolve().parents[2] / "pwa" / "dist"


def _build() -> dict[str, object]:
    build = DIST / "build.json"
    assert build.is_file(), "pwa/dist is missing: run `bash scripts/build_pwa.sh` (scripts/test.sh does)"
    result: dict[str, object] = json.loads(build.read_text())
    return result


async def test_shell_is_served_and_revalidated(http: httpx.AsyncClient) -> None:
    build = _build()
    page = await http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    assert '<link rel="manifest" href="/manifest.webmanifest">' in page.text
    assert f'src="{build["js"]}"' in page.text and f'href="{build["css"]}"' in page.text
    assert 'lang="zh-CN"' in page.text


async def test_hashed_assets_are_cached_for_a_year(http: httpx.AsyncClient) -> None:
    build = _build()
    for path in (build["js"], build["css"]):
        answer = await http.get(str(path))
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"


async def test_service_worker_is_never_stale_and_precaches_only_real_files(http: httpx.AsyncClient) -> None:
    build = _build()
    sw = await http.get("/sw.js")
    assert sw.status_code == 200
    assert "javascript" in sw.headers["content-type"]
    assert sw.headers["cache-control"] == "no-cache"
    assert sw.headers["service-worker-allowed"] == "/"
    assert f"gridaid-shell-{build['version']}" not in sw.text  # the name is built at run time …
    assert str(build["version"]) in sw.text  # … from the build's version
    precache = build["precache"]
    assert isinstance(precache, list) and "/index.html" in precache and build["js"] in precache
    for path in precache:
        answer = await http.get(path)
        assert answer.status_code == 200, path
        assert path in sw.text


async def test_manifest_makes_the_app_installable(http: httpx.AsyncClient) -> None:
    answer = await http.get("/manifest.webmanifest")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/manifest+json")
    manifest = answer.json()
    assert manifest["name"] == "网格救助"
    assert manifest["lang"] == "zh-CN"
    assert manifest["display"] == "standalone"
    assert manifest["start_url"] == "/"
    purposes = {icon["purpose"] for icon in manifest["icons"]}
    assert {"any", "maskable"} <= purposes
    sizes = {icon["sizes"] for icon in manifest["icons"] if icon["type"] == "image/png"}
    assert {"192x192", "512x512"} <= sizes
    for icon in manifest["icons"]:
        image = await http.get(icon["src"])
        assert image.status_code == 200
        if icon["type"] == "image/png":
            assert image.content.startswith(b"\x89PNG\r\n\x1a\n")
