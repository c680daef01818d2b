"""Base DTOs: inputs refuse unknown fields; outputs are plain Structs."""

from __future__ import annotations

import msgspec


class InputStruct(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Every request body: an unknown field is an error, never silently ignored (mass assignment)."""


class OutputStruct(msgspec.Struct, kw_only=True):
    pass


class Page(msgspec.Struct, kw_only=True):
    total: int
    limit: int
    offset: int
