"""Helpers for the field-app tests: a household with an open task, photos as phones take them, uploads."""

from __future__ import annotations

import hashlib
import io
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from PIL import Image

from tests.helpers import id_number
from tests.integration.conftest import Api, World

UPLOAD = "application/offset+octet-stream"


async def open_task(
    http: Any, world: World, *, side: str = "A", worker: str = "worker_a", due_in: timedelta | None = None
) -> str:
    """A new household in the side's first grid (through the API) and an open visit task for ``worker``."""
    from backend.orgs.tables import OrgUnit
    from backend.tasks.tables import VisitTask
    from tests.integration.conftest import PASSWORD

    admin = Api(http)
    assert (await admin.login(world.usernames["admin"], PASSWORD)).status_code == 200
    grid = world.grid_codes[f"G{side}1"]
    response = await admin.post(
        "/api/v1/households",
        json={
            "code": f"V{secrets.token_hex(5)}",
            "head_name": "走访户",
            "address": "走访路1号",
            "grid_code": grid,
            "members": [{"name": "走访户", "relation": "head", "id_number": id_number()}],
        },
    )
    assert response.status_code == 201, response.text
    street = (await OrgUnit.select(OrgUnit.id).where(OrgUnit.code == world.street_codes[side]).first())["id"]
    row = await VisitTask.insert(
        VisitTask(
            household=response.json()["id"],
            assignee=world.account_ids[worker],
            street=street,
            grid_code=grid,
            type_codes="[]",
            due_at=datetime.now(UTC) + (due_in if due_in is not None else timedelta(days=3)),
        )
    ).returning(VisitTask.id)
    return str(row[0]["id"])


def phone_photo(width: int = 640, height: int = 480, *, orientation: int = 6, seed: int | None = None) -> bytes:
    """A JPEG as a phone writes it: EXIF with the camera, GPS position and orientation, an ICC profile, XMP."""
    rng = secrets.SystemRandom()
    colour = (seed or rng.randint(0, 255), rng.randint(0, 255), 40)
    image = Image.new("RGB", (width, height), colour)
    image.paste((250, 250, 250), (0, 0, width // 4, height // 8))  # a mark in the top-left corner
    if seed is not None:
        # Photos with different seeds differ in shape, not only in colour: two flat colours one
        # step apart can encode to the same JPEG bytes (seen once in CI as "two" photos with one hash).
        step = width // 16
        image.paste((10, 10, 10), ((seed % 16) * step, height - height // 8, (seed % 16 + 1) * step, height))
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (31.0, 42.0, 18.0), 3: "E", 4: (119.0, 54.0, 6.0)}
    out = io.BytesIO()
    image.save(
        out,
        "JPEG",
        quality=90,
        exif=exif.tobytes(),
        icc_profile=b"\0" * 128 + b"fake-icc-profile",
        xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/">GPS 31.705 119.905</x:xmpmeta>',
    )
    return out.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def record_visit(device: Api, task_id: str, photos: tuple[bytes, ...] = (), **body: Any) -> Any:
    payload = {
        "found": "家中老人独居，行动不便",
        "needs": ["medical"],
        "notes": "下周再访",
        "lon": 119.905,
        "lat": 31.705,
        "accuracy_m": 12.5,
        "photos": [sha256(photo) for photo in photos],
        **body,
    }
    return await device.post(
        f"/api/v1/tasks/{task_id}/visit", json=payload, headers={"idempotency-key": str(uuid.uuid4())}
    )


async def put_chunk(device: Api, visit_id: str, data: bytes, offset: int, end: int, *, sha: str | None = None) -> Any:
    return await device.request(
        "PUT",
        f"/api/v1/visits/{visit_id}/photos/{sha or sha256(data)}",
        content=data[offset:end],
        headers={"upload-offset": str(offset), "upload-length": str(len(data)), "content-type": UPLOAD},
    )


async def upload(device: Api, visit_id: str, data: bytes, chunk: int = 64 * 1024, *, sha: str | None = None) -> Any:
    """The whole photo in chunks, as the phone's outbox sends it; the last answer."""
    response = None
    for offset in range(0, len(data), chunk):
        response = await put_chunk(device, visit_id, data, offset, min(offset + chunk, len(data)), sha=sha)
        if response.status_code >= 300:
            return response
    return response
