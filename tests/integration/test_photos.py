"""Visit photos: resumable uploads by content hash, checked and cleaned, stored, read back in scope."""

from __future__ import annotations

import io
import struct
import time
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from litestar import Litestar
from PIL import Image

from backend.audit.tables import AuditLog
from backend.settings import get_settings
from backend.tasks.tables import VisitTask
from backend.visits.tables import MaterialPhoto, VisitPhoto
from tests.integration.conftest import Api
from tests.integration.field import UPLOAD, open_task, phone_photo, put_chunk, record_visit, sha256, upload

pytestmark = pytest.mark.anyio


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int = 60_000, height: int = 60_000) -> bytes:
    """A valid PNG header claiming 3.6 gigapixels (10 GB decoded), in a few dozen bytes."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 4096))
        + _png_chunk(b"IEND", b"")
    )


async def _visit(http, as_role, world, photos: tuple[bytes, ...]) -> tuple[Api, str, str]:
    task_id = await open_task(http, world)
    worker = await as_role("worker_a")
    response = await record_visit(worker, task_id, photos)
    assert response.status_code == 200, response.text
    return worker, task_id, response.json()["visit_id"]


async def test_a_photo_arrives_in_chunks_resumes_after_a_restart_and_is_stored_clean(
    app: Litestar, http, as_role, world
) -> None:
    photo = phone_photo(640, 480, orientation=6)
    worker, task_id, visit_id = await _visit(http, as_role, world, (photo,))
    digest = sha256(photo)
    status_url = f"/api/v1/visits/{visit_id}/photos/{digest}/status"
    assert (await worker.get(status_url)).json() == {"received": 0, "complete": False, "photo_id": None}

    first = await put_chunk(worker, visit_id, photo, 0, 5000)
    assert first.status_code == 200 and first.json() == {"received": 5000, "complete": False, "photo_id": None}
    # The answer to the next chunk was lost; the phone resends the same chunk: told where to resume.
    again = await put_chunk(worker, visit_id, photo, 0, 5000)
    assert again.status_code == 409
    assert again.json()["code"] == "photo.offset_mismatch" and again.json()["received"] == 5000
    ahead = await put_chunk(worker, visit_id, photo, 9000, 12000)
    assert ahead.status_code == 409 and ahead.json()["received"] == 5000

    # The server restarts: a new application process over the same storage still holds the 5000 bytes.
    from backend.app import create_app

    restarted = create_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=restarted), base_url="http://testserver") as client:
        phone = Api(client, ip=worker.ip, access_token=worker.access_token)
        head = await phone.request("HEAD", status_url)
        assert head.status_code == 200 and head.headers["upload-offset"] == "5000"
        assert head.headers["upload-complete"] == "?0"
        done = None
        for offset in range(5000, len(photo), 4000):
            done = await put_chunk(phone, visit_id, photo, offset, min(offset + 4000, len(photo)))
            assert done.status_code in (200, 201), done.text
    assert done is not None and done.status_code == 201
    photo_id = done.json()["photo_id"]
    assert done.json() == {"received": len(photo), "complete": True, "photo_id": photo_id}

    # "Already have it": a repeat of the last chunk (its answer lost) or of any chunk says so.
    repeat = await put_chunk(worker, visit_id, photo, 0, 4000)
    assert repeat.status_code == 200 and repeat.json() == {
        "received": len(photo),
        "complete": True,
        "photo_id": photo_id,
    }
    assert await VisitPhoto.count().where(VisitPhoto.visit == visit_id) == 1
    assert (await worker.get(status_url)).json() == {"received": len(photo), "complete": True, "photo_id": photo_id}

    supervisor = await as_role("supervisor_a")
    stored = await supervisor.get(f"/api/v1/photos/{photo_id}")
    assert stored.status_code == 200 and stored.headers["content-type"] == "image/jpeg"
    assert stored.headers["cache-control"] == "no-store"
    image = Image.open(io.BytesIO(stored.content))
    assert image.format == "JPEG"
    assert image.size == (480, 640)  # turned upright from EXIF orientation 6 (rotate 90° clockwise)
    assert dict(image.getexif()) == {}
    assert not {"exif", "icc_profile", "xmp", "XML:com.adobe.xmp"} & set(image.info)
    assert b"31.705" not in stored.content and b"PhoneMaker" not in stored.content
    # The mark that was in the top-left corner is now top-right: the pixels moved, not just a tag.
    assert min(image.convert("RGB").getpixel((475, 5))) > 200

    thumb = await supervisor.get(f"/api/v1/photos/{photo_id}/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    small = Image.open(io.BytesIO(thumb.content))
    assert max(small.size) <= 320 and small.size == (240, 320) and dict(small.getexif()) == {}

    visits = (await supervisor.get(f"/api/v1/visits?task_id={task_id}")).json()
    assert visits[0]["photos"] == [
        {"sha256": digest, "complete": True, "photo_id": photo_id, "width": 480, "height": 640}
    ]
    for action in ("photo.read", "photo.read_thumbnail"):
        assert await AuditLog.exists().where(
            AuditLog.actor_id == world.account_ids["supervisor_a"],
            AuditLog.action == action,
            AuditLog.object_id == photo_id,
            AuditLog.outcome == "success",
        )
    # Nothing is left half-uploaded on disk.
    assert not (get_settings().storage.incoming_dir / visit_id).exists()


async def test_a_replayed_visit_says_which_photos_are_still_missing(http, as_role, world) -> None:
    one, two = phone_photo(seed=1), phone_photo(seed=2)
    task_id = await open_task(http, world)
    worker = await as_role("worker_a")
    body = {"found": "两张照片", "photos": [sha256(one), sha256(two)]}
    key = {"idempotency-key": "visit-with-two-photos-" + task_id}
    first = await worker.post(f"/api/v1/tasks/{task_id}/visit", json=body, headers=key)
    visit_id = first.json()["visit_id"]
    assert first.json()["photos_missing"] == [sha256(one), sha256(two)]
    assert (await upload(worker, visit_id, one)).status_code == 201
    replay = await worker.post(f"/api/v1/tasks/{task_id}/visit", json=body, headers=key)
    assert replay.json()["visit_id"] == visit_id and replay.json()["photos_missing"] == [sha256(two)]


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: b"This is a text file, renamed IMG_0001.jpg by someone.\n" * 20, "photo.not_an_image"),
        (lambda: b"\xff\xd8\xff\xe0" + b"\0" * 500, "photo.not_an_image"),  # JPEG magic, no picture
        (lambda: b"GIF89a" + b"\0" * 100, "photo.not_an_image"),
        (bomb_png, "photo.too_many_pixels"),
    ],
    ids=["text-as-jpg", "truncated-jpeg", "gif", "decompression-bomb"],
)
async def test_what_is_not_a_photo_we_accept_is_refused_with_422(http, as_role, world, make, code) -> None:
    data = make()
    worker, _, visit_id = await _visit(http, as_role, world, (data,))
    refused = await upload(worker, visit_id, data)  # never decoded: tests/unit/test_images.py
    assert refused.status_code == 422 and refused.json()["code"] == code
    assert await VisitPhoto.count().where(VisitPhoto.visit == visit_id) == 0
    # The bytes are dropped: a corrected photo can be sent afresh under a new hash.
    status = await worker.get(f"/api/v1/visits/{visit_id}/photos/{sha256(data)}/status")
    assert status.json() == {"received": 0, "complete": False, "photo_id": None}


async def test_bytes_that_do_not_match_their_hash_are_refused(http, as_role, world) -> None:
    photo, other = phone_photo(seed=3), phone_photo(seed=4)
    worker, _, visit_id = await _visit(http, as_role, world, (photo,))
    # The phone's file changed (or a bit flipped) after it hashed it: same length, other bytes.
    corrupted = other[: len(photo)].ljust(len(photo), b"\0")
    refused = await upload(worker, visit_id, corrupted, sha=sha256(photo))
    assert refused.status_code == 422 and refused.json()["code"] == "photo.hash_mismatch"
    assert (await upload(worker, visit_id, photo)).status_code == 201  # the right bytes still go through


async def test_only_the_visits_worker_uploads_and_only_its_listed_photos(http, as_role, world) -> None:
    photo = phone_photo()
    worker, _, visit_id = await _visit(http, as_role, world, (photo,))
    unlisted = phone_photo(seed=9)
    refused = await upload(worker, visit_id, unlisted)
    assert refused.status_code == 422 and refused.json()["code"] == "photo.not_in_visit"

    worker_b = await as_role("worker_b")
    hidden = await upload(worker_b, visit_id, photo)
    assert hidden.status_code == 404
    assert await AuditLog.exists().where(
        AuditLog.actor_id == world.account_ids["worker_b"], AuditLog.object_id == visit_id, AuditLog.outcome == "denied"
    )
    supervisor = await as_role("supervisor_a")
    assert (await upload(supervisor, visit_id, photo)).status_code == 403

    # Headers the protocol needs, checked once the caller is known to own the visit.
    no_headers = await worker.request("PUT", f"/api/v1/visits/{visit_id}/photos/{sha256(photo)}", content=photo[:10])
    assert no_headers.status_code == 422
    json_body = await worker.request(
        "PUT",
        f"/api/v1/visits/{visit_id}/photos/{sha256(photo)}",
        json={"photo": "x"},
        headers={"upload-offset": "0", "upload-length": str(len(photo))},
    )
    assert json_body.status_code == 422 and json_body.json()["code"] == "photo.media_type"
    too_long = await worker.request(
        "PUT",
        f"/api/v1/visits/{visit_id}/photos/{sha256(photo)}",
        content=photo[:100],
        headers={"upload-offset": "0", "upload-length": "50", "content-type": UPLOAD},
    )
    assert too_long.status_code == 422 and too_long.json()["code"] == "photo.too_long"


async def test_photos_are_read_by_who_may_see_the_household_and_every_read_is_audited(http, as_role, world) -> None:
    photo = phone_photo()
    worker, _, visit_id = await _visit(http, as_role, world, (photo,))
    photo_id = (await upload(worker, visit_id, photo)).json()["photo_id"]
    for role in ("worker_a", "supervisor_a", "admin"):
        reader = await as_role(role)
        assert (await reader.get(f"/api/v1/photos/{photo_id}")).status_code == 200, role
    for role in ("worker_b", "supervisor_b"):
        outsider = await as_role(role)
        for path in (f"/api/v1/photos/{photo_id}", f"/api/v1/photos/{photo_id}/thumbnail"):
            response = await outsider.get(path)
            assert response.status_code == 404 and response.json()["code"] == "photo.not_found", role
        assert await AuditLog.exists().where(
            AuditLog.actor_id == world.account_ids[role],
            AuditLog.object_id == photo_id,
            AuditLog.outcome == "denied",
        ), role
    # An officer sees only photos handed in with their department's cases (tests/integration/test_cases.py).
    assert (await (await as_role("officer")).get(f"/api/v1/photos/{photo_id}")).status_code == 404
    assert (await (await as_role("resident")).get(f"/api/v1/photos/{photo_id}")).status_code == 403


async def test_stored_files_are_private_to_the_server(http, as_role, world) -> None:
    photo = phone_photo()
    worker, _, visit_id = await _visit(http, as_role, world, (photo,))
    assert (await upload(worker, visit_id, photo)).status_code == 201
    stored = get_settings().storage.local_dir / "photos" / f"{sha256(photo)}.jpg"
    assert stored.is_file() and stored.stat().st_mode & 0o777 == 0o600


# --- S3-compatible storage ------------------------------------------------------------------


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 (a stand-in for AWS, MinIO or OSS) and settings that point at it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    bucket = "gridaid-photos"
    assert httpx.put(f"{endpoint}/{bucket}").status_code == 200
    for name, value in {
        "GRIDAID_STORAGE": "s3",
        "S3_ENDPOINT_URL": endpoint,
        "S3_BUCKET": bucket,
        "S3_ACCESS_KEY_ID": "testing",
        "S3_SECRET_ACCESS_KEY": "testing",
        "S3_PREFIX": "t/",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        yield endpoint
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        server.stop()


async def test_photos_round_trip_through_s3_compatible_storage(http, as_role, world, s3: str) -> None:
    photo = phone_photo(800, 600, orientation=1)
    worker, _, visit_id = await _visit(http, as_role, world, (photo,))
    done = await upload(worker, visit_id, photo)
    assert done.status_code == 201, done.text
    photo_id = done.json()["photo_id"]
    # The object is in the bucket (read straight from the S3 API), not on the server's disk.
    async with httpx.AsyncClient() as s3_api:
        listing = (await s3_api.get(f"{s3}/gridaid-photos?list-type=2&prefix=t/")).text
    assert f"t/photos/{sha256(photo)}.jpg" in listing and f"t/thumbnails/{sha256(photo)}.jpg" in listing
    assert not (get_settings().storage.local_dir / "photos" / f"{sha256(photo)}.jpg").exists()
    read = await (await as_role("supervisor_a")).get(f"/api/v1/photos/{photo_id}")
    assert read.status_code == 200 and Image.open(io.BytesIO(read.content)).size == (800, 600)
    thumb = await worker.get(f"/api/v1/photos/{photo_id}/thumbnail")
    assert Image.open(io.BytesIO(thumb.content)).size == (320, 240)


async def test_abandoned_partial_uploads_are_purged_and_fresh_ones_kept(http, as_role, world) -> None:
    import os

    from jobs.photos import purge_stale_uploads

    old, fresh = phone_photo(seed=5), phone_photo(seed=6)
    worker, _, visit_id = await _visit(http, as_role, world, (old, fresh))
    for photo in (old, fresh):
        assert (await put_chunk(worker, visit_id, photo, 0, 1000)).json()["received"] == 1000
    part = get_settings().storage.incoming_dir / visit_id / f"{sha256(old)}.part"
    long_ago = time.time() - 31 * 24 * 3600
    os.utime(part, (long_ago, long_ago))

    assert await purge_stale_uploads({}) == 1
    status = f"/api/v1/visits/{visit_id}/photos/{{}}/status"
    assert (await worker.get(status.format(sha256(old)))).json()["received"] == 0
    assert (await worker.get(status.format(sha256(fresh)))).json()["received"] == 1000
    # The phone starts the purged photo again from 0, and it goes through.
    assert (await upload(worker, visit_id, old)).status_code == 201


async def test_a_storage_failure_after_the_last_byte_loses_nothing(
    http, as_role, world, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRIDAID_PHOTO_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        blocker = tmp_path / "photos"
        blocker.write_text("a file where the photo folder should be: every write fails")
        photo = phone_photo(seed=7)
        worker, _, visit_id = await _visit(http, as_role, world, (photo,))
        failed = await upload(worker, visit_id, photo, chunk=len(photo) // 2 + 1)
        assert failed.status_code == 500
        assert await VisitPhoto.count().where(VisitPhoto.visit == visit_id) == 0
        status = await worker.get(f"/api/v1/visits/{visit_id}/photos/{sha256(photo)}/status")
        assert status.json() == {"received": len(photo), "complete": False, "photo_id": None}
        # The phone retries its last chunk while storage is still down: the bytes stay put.
        again = await put_chunk(worker, visit_id, photo, len(photo) // 2 + 1, len(photo))
        assert again.status_code == 500

        blocker.unlink()  # storage is back: the same retry finishes the photo, nothing resent
        finished = await put_chunk(worker, visit_id, photo, len(photo) // 2 + 1, len(photo))
        assert finished.status_code == 201, finished.text
        assert (await put_chunk(worker, visit_id, photo, len(photo), len(photo))).status_code == 200  # already held
        read = await worker.get(f"/api/v1/photos/{finished.json()['photo_id']}")
        assert Image.open(io.BytesIO(read.content)).size == (480, 640)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


async def test_the_same_photo_sent_five_times_at_once_is_stored_once(http, as_role, world) -> None:
    import asyncio

    photo = phone_photo(seed=8)
    worker, _, visit_id = await _visit(http, as_role, world, (photo,))
    answers = await asyncio.gather(*(put_chunk(worker, visit_id, photo, 0, len(photo)) for _ in range(5)))
    codes = sorted(answer.status_code for answer in answers)
    assert codes.count(201) == 1 and set(codes) <= {200, 201, 409}, codes
    assert await VisitPhoto.count().where(VisitPhoto.visit == visit_id) == 1
    # Whatever each copy was told, asking again settles it: one photo, complete.
    status = (await worker.get(f"/api/v1/visits/{visit_id}/photos/{sha256(photo)}/status")).json()
    created = next(answer for answer in answers if answer.status_code == 201)
    assert status == {"received": len(photo), "complete": True, "photo_id": created.json()["photo_id"]}


# --- material photos: taken on the apply screen, for the task's household ---------------------------


async def put_material(device: Api, task_id: str, data: bytes, chunk: int = 64 * 1024) -> Any:
    """The whole photo in chunks to the task's material photos, as the phone's outbox sends it."""
    response = None
    for offset in range(0, len(data), chunk):
        response = await device.request(
            "PUT",
            f"/api/v1/tasks/{task_id}/photos/{sha256(data)}",
            content=data[offset : offset + chunk],
            headers={"upload-offset": str(offset), "upload-length": str(len(data)), "content-type": UPLOAD},
        )
        if response.status_code >= 300:
            return response
    return response


async def test_a_material_photo_is_uploaded_for_the_tasks_household_once_and_audited(http, as_role, world) -> None:
    task_id = await open_task(http, world)
    worker = await as_role("worker_a")
    photo = phone_photo(seed=21)
    done = await put_material(worker, task_id, photo, chunk=7000)
    assert done is not None and done.status_code == 201, done.text
    photo_id = done.json()["photo_id"]
    assert done.json()["complete"] is True and done.json()["received"] == len(photo)

    # Sent again (the answer was lost): the same photo, not a second one.
    again = await put_material(worker, task_id, photo)
    assert again is not None and again.status_code == 200
    assert again.json() == {"received": len(photo), "complete": True, "photo_id": photo_id}
    rows = await MaterialPhoto.select().where(MaterialPhoto.task == task_id)
    assert [str(row["id"]) for row in rows] == [photo_id]
    task = await VisitTask.select(VisitTask.household).where(VisitTask.id == task_id).first()
    assert task is not None and rows[0]["household"] == task["household"]
    assert rows[0]["worker"] == uuid.UUID(world.account_ids["worker_a"])
    assert await AuditLog.exists().where(
        AuditLog.action == "photo.upload", AuditLog.object_id == photo_id, AuditLog.outcome == "success"
    )

    # Stored clean, like a visit photo, and read back by who may see the household.
    read = await worker.get(f"/api/v1/photos/{photo_id}")
    assert read.status_code == 200 and read.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(read.content))
    assert image.size == (480, 640) and not image.getexif()
    assert (await (await as_role("worker_b")).get(f"/api/v1/photos/{photo_id}")).status_code == 404


async def test_only_the_tasks_worker_uploads_material_photos(http, as_role, world) -> None:
    task_id = await open_task(http, world)
    photo = phone_photo(seed=22)
    intruder = await as_role("worker_b")
    refused = await put_material(intruder, task_id, photo)
    assert refused is not None and refused.status_code == 404
    assert await AuditLog.exists().where(
        AuditLog.actor_id == world.account_ids["worker_b"],
        AuditLog.object_id == task_id,
        AuditLog.action == "photo.upload",
        AuditLog.outcome == "denied",
    )
    supervisor = await as_role("supervisor_a")
    assert (await put_material(supervisor, task_id, photo)).status_code == 403
    assert await MaterialPhoto.count().where(MaterialPhoto.task == task_id) == 0
    # Not a photo: refused, and nothing kept.
    worker = await as_role("worker_a")
    bomb = await put_material(worker, task_id, bomb_png())
    assert bomb is not None and bomb.status_code == 422
    assert await MaterialPhoto.count().where(MaterialPhoto.task == task_id) == 0


async def test_an_application_names_a_material_photo_of_its_own_household_only(as_role, world) -> None:
    from datetime import UTC, datetime

    from tests.integration.application_kit import new_family, submission, submit

    admin, worker = await as_role("admin"), await as_role("worker_a")
    family, neighbours = await new_family(admin, world), await new_family(admin, world)
    task = await VisitTask.insert(
        VisitTask(
            household=family.id,
            grid_code=world.grid_codes["GA1"],
            assignee=world.account_ids["worker_a"],
            type_codes="[]",
            due_at=datetime(2099, 1, 1, tzinfo=UTC),
        )
    ).returning(VisitTask.id)
    done = await put_material(worker, str(task[0]["id"]), phone_photo(seed=23))
    assert done is not None and done.status_code == 201, done.text
    handed_in = {"photos": [{"photo_id": done.json()["photo_id"]}]}

    # The neighbours' application cannot hand in this family's ID card.
    body = submission(neighbours)
    body["materials"]["id_card"] = handed_in
    refused = await submit(worker, neighbours, body)
    assert refused.status_code == 422 and refused.json()["code"] == "application.photo_unknown"

    body = submission(family)
    body["materials"]["id_card"] = handed_in
    accepted = await submit(worker, family, body)
    assert accepted.status_code == 201, accepted.text
