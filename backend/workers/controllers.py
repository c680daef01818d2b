from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get

from backend.accounts.guards import roles
from backend.accounts.principal import Principal
from backend.accounts.tables import Role
from backend.workers import services
from backend.workers.schemas import GridWorkloadOut, WorkerOut, WorkerSyncHealthOut

SUPERVISORS = roles(Role.supervisor, Role.admin)


class WorkerController(Controller):
    path = "/api/v1/workers"
    tags = ["workers"]
    opt = SUPERVISORS

    @get("/", operation_id="listWorkers")
    async def list_workers(self, request: Request[Principal, Any, Any]) -> list[WorkerOut]:
        """The street's grid workers (an admin: all) with their grids and open and overdue tasks:
        the targets of a reassignment or an absence cover."""
        return await services.list_workers(request.user)

    @get("/sync-health", operation_id="listWorkerSyncHealth")
    async def sync_health(self, request: Request[Principal, Any, Any]) -> list[WorkerSyncHealthOut]:
        """What each worker's phone last reported: items waiting, needing attention, the oldest, the last error."""
        return await services.sync_health(request.user)


class GridWorkloadController(Controller):
    # A fixed path beside GridController's ("/api/v1/grids" has no "{…}" routes to clash with).
    path = "/api/v1/grids/workload"
    tags = ["grids"]
    opt = SUPERVISORS

    @get("/", operation_id="gridWorkload")
    async def workload(self, request: Request[Principal, Any, Any]) -> list[GridWorkloadOut]:
        """Open and overdue tasks per grid of the street, to colour the street map."""
        return await services.grid_workload(request.user)
