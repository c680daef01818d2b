"""The authenticated caller as every handler and service sees it, with the scope of what they may see."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from backend.accounts.tables import Role
from backend.audit.services import Actor


@dataclass(frozen=True)
class Principal:
    account_id: UUID
    username: str
    display_name: str
    role: Role
    session_id: UUID
    mfa_pending: bool = False
    # Scope: filled from the account and its current grid assignments at authentication time.
    street_id: int | None = None
    department_id: int | None = None
    grid_codes: frozenset[str] = field(default_factory=frozenset)
    client: str = ""
    request_id: str = ""

    @property
    def actor(self) -> Actor:
        return Actor(
            account_id=str(self.account_id), role=self.role.value, client=self.client, request_id=self.request_id
        )
