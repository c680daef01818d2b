"""A resident's request can carry a photo: sent once however often it is sent, cleaned like a visit
photo, refused from anyone but the person who asked, and seen by the grid worker (every read audited)."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest
from PIL import Image

from backend.audit.tables import AuditLog
from backend.requests.tables import RequestPhoto
from backend.visits.storage import photo_storage
from tests.integration.conftest import Api, World
from tests.integration.field import phone_photo, sha256
from tests.integration.test_photos import bomb_png
from tests.integration.test_requests import _inside, _request

pytestmark = pytest.mark.anyio


async def _guest_request(http: Any, world: World, grid: str = "GA1") -> tuple[Api, dict[str, Any]]:
    guest = Api(http)
    lon, lat = await _inside(world.grid_codes[grid])
    sent = await guest.post(
        "/api/v1/requests/guest",
        json=_request(location={"source": "pin", "lon": lon, "lat": lat}),
        headers={"idempotency-key": str(uuid.uuid4())},
    )
    assert sent.status_code == 201, sent.text
    return guest, sent.json()


async def _put_guest(device: Api, answer: dict[str, Any], data: bytes, token: str | None = None, **kw: Any) -> Any:
    digest = kw.pop("sha", None) or sha256(data)
    headers = {"upload-token": answer["upload_token"] if token is None else token}
    return await device.request(
        "PUT", f"/api/v1/requests/{answer['id']}/guest-photos/{digest}", content=data, headers=headers
    )


async def test_a_guest_sends_a_photo_once_and_the_grid_worker_sees_it_clean(http, world: World, as_role) -> None:
    guest, answer = await _guest_request(http, world)
    assert len(answer["upload_token"]) == 64 and answer["photos"] == []
    photo = phone_photo(640, 480, orientation=6)

    first = await _put_guest(guest, answer, photo)
    again = await _put_guest(guest, answer, photo)  # the answer was lost: the phone sends it again

    assert first.status_code == 201, first.text
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    # Turned upright from the EXIF orientation, as a person would hold it.
    assert (first.json()["width"], first.json()["height"]) == (480, 640)
    assert await RequestPhoto.count().where(RequestPhoto.request == answer["id"]) == 1
    stored = await RequestPhoto.select().where(RequestPhoto.id == first.json()["id"]).first()
    assert stored is not None
    kept = await photo_storage().get(stored["storage_key"])
    with Image.open(io.BytesIO(kept)) as image:
        assert not image.getexif() and "icc_profile" not in image.info
    assert b"GPS" not in kept and b"PhoneMaker" not in kept

    # The grid worker of GA1 finds it on the request, and opens it: audited.
    worker = await as_role("worker_a")
    listed = next(item for item in (await worker.get("/api/v1/requests")).json() if item["id"] == answer["id"])
    assert [item["id"] for item in listed["photos"]] == [first.json()["id"]]
    url = f"/api/v1/requests/{answer['id']}/photos/{first.json()['id']}"
    thumb = await worker.get(url + "/thumbnail")
    full = await worker.get(url)
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert full.status_code == 200 and full.content == kept
    with Image.open(io.BytesIO(thumb.content)) as image:
        assert max(image.size) <= 320
    for action in ("request_photo.read", "request_photo.read_thumbnail"):
        assert await AuditLog.exists().where(
            AuditLog.action == action,
            AuditLog.object_id == first.json()["id"],
            AuditLog.actor_id == world.account_ids["worker_a"],
        )
    assert await AuditLog.exists().where(
        AuditLog.action == "request_photo.upload", AuditLog.object_id == first.json()["id"]
    )
    # The street's supervisor sees it; another street's worker and supervisor do not, and that is audited.
    assert (await (await as_role("supervisor_a")).get(url + "/thumbnail")).status_code == 200
    for other in ("worker_b", "supervisor_b"):
        refused = await (await as_role(other)).get(url)
        assert refused.status_code == 404, other
        assert await AuditLog.exists().where(
            AuditLog.actor_id == world.account_ids[other],
            AuditLog.object_id == answer["id"],
            AuditLog.outcome == "denied",
        )
    # Officers see nothing of a resident's request.
    assert (await (await as_role("officer")).get(url)).status_code == 403


async def test_only_the_person_who_asked_can_add_a_photo(http, world: World, as_role) -> None:
    guest, answer = await _guest_request(http, world)
    _, someone_else = await _guest_request(http, world)
    photo = phone_photo(seed=3)

    wrong_token = await _put_guest(Api(http), answer, photo, token=someone_else["upload_token"])
    no_token = await _put_guest(Api(http), answer, photo, token="")
    resident = await (await as_role("resident")).request(
        "PUT", f"/api/v1/requests/{answer['id']}/photos/{sha256(photo)}", content=photo
    )

    garbled = await Api(http).request(
        "PUT",
        f"/api/v1/requests/{answer['id']}/guest-photos/{sha256(photo)}",
        content=photo,
        headers={"upload-token": "令牌".encode()},
    )

    assert wrong_token.status_code == 404 and wrong_token.json()["code"] == "request.not_found"
    assert no_token.status_code == 404 and resident.status_code == 404 and garbled.status_code == 404
    assert await RequestPhoto.count().where(RequestPhoto.request == answer["id"]) == 0
    denied = await AuditLog.select(AuditLog.actor_role).where(
        AuditLog.action == "request_photo.upload", AuditLog.object_id == answer["id"], AuditLog.outcome == "denied"
    )
    assert sorted(row["actor_role"] for row in denied) == ["guest", "guest", "guest", "resident"]
    # A request that does not exist answers the same, and leaves no denial behind.
    missing = str(uuid.uuid4())
    assert (await _put_guest(guest, {**answer, "id": missing}, photo)).status_code == 404
    assert not await AuditLog.exists().where(AuditLog.object_id == missing)


@pytest.mark.parametrize(
    ("data", "sha", "code"),
    [
        (b"GIF89a not a photo at all", None, "photo.not_an_image"),
        (b"\xff\xd8\xff\xe0 a JPEG cut off after its first bytes", None, "photo.not_an_image"),
        (bomb_png(), None, "photo.too_many_pixels"),
        (b"\xff\xd8\xffsomething", "0" * 64, "photo.hash_mismatch"),
        (b"\xff\xd8\xffsomething", "NOT-HEX", "photo.bad_sha256"),
    ],
    ids=["not-an-image", "truncated-jpeg", "pixel-bomb", "hash-mismatch", "bad-sha256"],
)
async def test_bad_bytes_are_refused_with_a_clear_reason(
    http, world: World, data: bytes, sha: str | None, code: str
) -> None:
    guest, answer = await _guest_request(http, world)
    refused = await _put_guest(guest, answer, data, sha=sha)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == code
    # Said in both languages, so the phone can tell the person what to do.
    assert refused.json()["detail_en"] and refused.json()["detail_zh"]
    assert await RequestPhoto.count().where(RequestPhoto.request == answer["id"]) == 0


async def test_a_signed_in_resident_sends_photos_and_sees_them_on_their_request(http, world: World, as_role) -> None:
    resident = await as_role("resident")
    lon, lat = await _inside(world.grid_codes["GA2"])
    key = str(uuid.uuid4())
    body = _request(location={"source": "gps", "lon": lon, "lat": lat})
    sent = await resident.post("/api/v1/requests", json=body, headers={"idempotency-key": key})
    assert sent.status_code == 201, sent.text
    answer = sent.json()
    replay = await resident.post("/api/v1/requests", json=body, headers={"idempotency-key": key})
    assert replay.json()["upload_token"] == answer["upload_token"]  # the same request, the same token

    photos = [phone_photo(seed=seed) for seed in (11, 12, 13, 14)]
    stored = []
    for photo in photos[:3]:
        put = await resident.request("PUT", f"/api/v1/requests/{answer['id']}/photos/{sha256(photo)}", content=photo)
        assert put.status_code == 201, put.text
        stored.append(put.json()["id"])
    fourth = await resident.request(
        "PUT", f"/api/v1/requests/{answer['id']}/photos/{sha256(photos[3])}", content=photos[3]
    )
    assert fourth.status_code == 422 and fourth.json()["code"] == "request.too_many_photos"
    # Sending one of the three again is still fine: the phone's retry after a lost answer.
    resent = await resident.request(
        "PUT", f"/api/v1/requests/{answer['id']}/photos/{sha256(photos[0])}", content=photos[0]
    )
    assert resent.status_code == 200 and resent.json()["id"] == stored[0]

    mine = next(item for item in (await resident.get("/api/v1/requests/mine")).json() if item["id"] == answer["id"])
    assert [item["id"] for item in mine["photos"]] == stored
    own = await resident.get(f"/api/v1/requests/{answer['id']}/photos/{stored[0]}/thumbnail")
    assert own.status_code == 200 and own.headers["content-type"] == "image/jpeg"
    assert await AuditLog.exists().where(
        AuditLog.action == "request_photo.read_thumbnail",
        AuditLog.object_id == stored[0],
        AuditLog.actor_id == world.account_ids["resident"],
    )
    # Another resident cannot see it; a photo id under the wrong request is not found either.
    stranger = Api(http)
    await _sign_up_stranger(stranger)
    assert (await stranger.get(f"/api/v1/requests/{answer['id']}/photos/{stored[0]}")).status_code == 404
    _, other = await _guest_request(http, world, "GA2")
    worker = await as_role("worker_a")
    assert (await worker.get(f"/api/v1/requests/{other['id']}/photos/{stored[0]}")).status_code == 404
    assert (await worker.get(f"/api/v1/requests/{answer['id']}/photos/{stored[0]}")).status_code == 200


async def _sign_up_stranger(device: Api) -> None:
    import secrets

    from backend.accounts.services import NewAccount, create_account
    from backend.accounts.tables import Role
    from backend.audit.services import Actor
    from tests.integration.conftest import PASSWORD

    username = f"stranger_{secrets.token_hex(3)}"
    await create_account(
        NewAccount(username=username, display_name="陌生人", password=PASSWORD, role=Role.resident),
        actor=Actor.system("tests"),
    )
    assert (await device.login(username)).status_code == 200


async def _ask_as_guest(guest: Api, body: dict[str, Any]) -> dict[str, Any]:
    sent = await guest.post("/api/v1/requests/guest", json=body, headers={"idempotency-key": str(uuid.uuid4())})
    assert sent.status_code == 201, sent.text
    return sent.json()


async def test_the_worker_opens_a_task_and_gets_the_requests_that_raised_it(http, world: World, as_role) -> None:
    guest = Api(http)
    lon, lat = await _inside(world.grid_codes["GA1"])
    where = {"source": "pin", "lon": lon, "lat": lat}
    body = _request(location=where)
    answer = await _ask_as_guest(guest, body)
    photo = await _put_guest(guest, answer, phone_photo(seed=21))
    assert photo.status_code == 201, photo.text
    # The same person asks again before the visit: it joins the same task. Another family's is another task.
    later = _request(location=where, id_number=body["id_number"], description="又停电了，药放不了冰箱", needs=[])
    again = await _ask_as_guest(guest, later)
    stranger = await _ask_as_guest(guest, _request(location=where))
    worker = await as_role("worker_a")
    everything = {item["id"]: item for item in (await worker.get("/api/v1/requests")).json()}
    task_id = everything[answer["id"]]["task_id"]
    assert task_id and everything[again["id"]]["task_id"] == task_id
    assert everything[stranger["id"]]["task_id"] not in (None, task_id)

    listed = await worker.get("/api/v1/requests", params={"task_id": task_id})

    assert listed.status_code == 200, listed.text
    items = listed.json()
    assert [item["id"] for item in items] == [again["id"], answer["id"]]  # newest first, this task's only
    first = items[1]
    assert first["description"] == body["description"] and first["needs"] == ["medical", "living"]
    assert first["created_at"] and first["task_id"] == task_id
    assert [item["id"] for item in first["photos"]] == [photo.json()["id"]]
    assert first["phone_masked"] == body["phone"][:3] + "****" + body["phone"][-4:]
    assert items[0]["photos"] == [] and items[0]["needs"] == []
    # Masked fields only: no full phone, ID number or name anywhere in the answer.
    for secret in (body["phone"], later["phone"], body["id_number"], body["name"]):
        assert secret not in listed.text
    # Another grid's worker and another street's supervisor get nothing for that task (as for the
    # list itself); the street's own supervisor gets the same two.
    for other in ("worker_b", "supervisor_b"):
        refused = await (await as_role(other)).get("/api/v1/requests", params={"task_id": task_id})
        assert refused.status_code == 200 and refused.json() == [], other
    street = await (await as_role("supervisor_a")).get("/api/v1/requests", params={"task_id": task_id})
    assert [item["id"] for item in street.json()] == [again["id"], answer["id"]]
    # A task id that is not one is refused, never read as "no filter".
    assert (await worker.get("/api/v1/requests", params={"task_id": "nope"})).status_code == 400
