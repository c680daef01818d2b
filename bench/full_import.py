"""Target (d): import and validate the demo's 13,000 grids from a GeoPackage through the real importer.

Runs in a child process with its own var/ directory (fresh SQLite, its own keyring), so the
settings the backend reads at import time are this benchmark's, not the caller's. Prints one JSON
line: the importer's phases and the total.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path


async def _run(map_path: Path) -> dict[str, float | int]:
    from backend.audit.services import Actor
    from backend.demo.seed import _insert_city_and_districts
    from backend.grids.importer import ImportOptions, import_grid_file
    from backend.lib.db import write_transaction
    from backend.lib.migrate import migrate

    await migrate()
    async with write_transaction():
        await _insert_city_and_districts()
    started = time.perf_counter()
    outcome = await import_grid_file(map_path, ImportOptions(crs="wgs84"), actor=Actor.system("bench"))
    seconds = time.perf_counter() - started
    if not outcome.written:
        raise SystemExit(f"import refused: {outcome.to_json()['report']}")
    return {"seconds": seconds, "grids": outcome.grids, "communities": len(outcome.created_communities)}


def main() -> None:
    map_path = Path(sys.argv[1]).resolve()
    with tempfile.TemporaryDirectory(prefix="gridaid-bench-") as var:
        os.environ["GRIDAID_VAR_DIR"] = var
        os.environ.pop("DATABASE_URL", None)
        os.environ.pop("GRIDAID_KEYRING", None)
        print(json.dumps(asyncio.run(_run(map_path))))


if __name__ == "__main__":
    main()
