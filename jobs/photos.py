"""Photo housekeeping: partial uploads abandoned on the server's disk are removed after a while."""

from __future__ import annotations

from typing import Any

import anyio.to_thread

from backend.visits.services import purge_stale_uploads as purge


async def purge_stale_uploads(ctx: dict[str, Any]) -> int:
    return await anyio.to_thread.run_sync(purge)
