"""Which visit tasks a caller may see: decided here, once, for every task query."""

from __future__ import annotations

from typing import Any

from backend.accounts.principal import Principal
from backend.accounts.tables import Role
from backend.households.scope import NO_ACCESS
from backend.tasks.tables import VisitTask


def task_scope(principal: Principal) -> Any:
    """A WHERE clause; ``None`` for all; NO_ACCESS for none."""
    match principal.role:
        case Role.admin:
            return None
        case Role.supervisor if principal.street_id is not None:
            return VisitTask.street == principal.street_id
        case Role.grid_worker:
            return VisitTask.assignee == principal.account_id
        case _:
            return NO_ACCESS
