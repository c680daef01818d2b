"""Which households a caller may see: the one place that decides it. Every household query uses it."""

from __future__ import annotations

from typing import Any

from backend.accounts.principal import Principal
from backend.accounts.tables import Role
from backend.households.tables import Household


class NoAccess:
    """The caller's scope contains no households at all."""


NO_ACCESS = NoAccess()


def household_scope(principal: Principal) -> Any:
    """A WHERE clause limiting households to the caller's scope; ``None`` for all; NO_ACCESS for none."""
    match principal.role:
        case Role.admin:
            return None
        case Role.supervisor if principal.street_id is not None:
            return Household.street == principal.street_id
        case Role.grid_worker if principal.grid_codes:
            return Household.grid_code.is_in(sorted(principal.grid_codes))
        case _:
            # Officers see households through their department's cases, residents through their own
            # requests; neither exists yet, so neither sees a household file.
            return NO_ACCESS
