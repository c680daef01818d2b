"""Small helpers shared by tests: synthetic identifiers and addresses."""

from __future__ import annotations

import random
import re

from backend.lib.pii import id_check_char

# Bounded by non-alphanumerics so a run of digits inside a hex id or a timestamp does not count.
ID_NUMBER_PATTERN = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dX](?![0-9A-Za-z])")
PHONE_PATTERN = re.compile(r"(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z])")


def id_number(region: str = "320402") -> str:
    """A synthetic, checksum-valid 18-character ID number."""
    rng = random.SystemRandom()
    body = f"{region}{rng.randint(1950, 2010)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    return body + id_check_char(body)


def random_ip() -> str:
    rng = random.SystemRandom()
    return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
