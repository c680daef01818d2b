"""Web Push end to end: a browser-like subscription, the API, the outbox, a real arq worker, and a
local push service that checks VAPID and decrypts like a browser. Plus the SMS fallback."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from arq import create_pool
from arq.connections import ArqRedis
from arq.worker import Worker
from litestar import Litestar

from backend.lib.redis import arq_settings
from backend.outbox import services as outbox
from backend.outbox.tables import OutboxMessage
from backend.push.tables import PushSubscription
from backend.settings import get_settings
from jobs import push as push_jobs
from jobs.worker import WorkerSettings
from tests.fakes.push_service import FakePushService
from tests.integration.conftest import PASSWORD, Api

pytestmark = pytest.mark.anyio

# What the inbox may say, and a push must never carry.
SECRET_TITLE = "走访任务：张三丰 幸福路8号"
SECRET_DETAIL = {"household": "H-4711", "address": "幸福路8号3单元", "phone": "13912345678"}


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def push_service(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePushService]:
    with FakePushService() as service:
        # The worker trusts the fake service's certificate, and may call it (it is on 127.0.0.1).
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(service.ca_file))
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        monkeypatch.setenv("PUSH_ALLOWED_HOSTS", "fcm.googleapis.com,127.0.0.1")
        get_settings.cache_clear()
        try:
            yield service
        finally:
            monkeypatch.undo()
            get_settings.cache_clear()


@pytest.fixture(scope="module")
async def push_http(app: Litestar, http: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """The session's client once backend/app.py registers PushController; until then an app with it.

    The second app shares the session's database pool (opened by ``http``), so it runs no lifespan.
    """
    if any(route.path.startswith("/api/v1/push/") for route in app.routes):
        yield http
        return
    from backend import app as app_module
    from backend.push.controllers import PushController

    registered = app_module.API_CONTROLLERS
    app_module.API_CONTROLLERS = [*registered, PushController]
    try:
        local = app_module.create_app()
    finally:
        app_module.API_CONTROLLERS = registered
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=local), base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def redis() -> AsyncIterator[ArqRedis]:
    pool = await create_pool(arq_settings())
    try:
        yield pool
    finally:
        await pool.aclose()


async def _person(http: httpx.AsyncClient, *, phone: str | None = None, role: str = "resident") -> tuple[str, Api]:
    from backend.accounts.services import NewAccount, create_account
    from backend.accounts.tables import Role
    from backend.audit.services import Actor

    username = f"push_{secrets.token_hex(4)}"
    account_id = await create_account(
        NewAccount(username=username, display_name="推送测试", password=PASSWORD, role=Role(role), phone=phone),
        actor=Actor.system("tests"),
    )
    device = Api(http)
    assert (await device.login(username)).status_code == 200
    return str(account_id), device


async def _notify(account_id: str, kind: str = "task.assigned") -> int:
    from backend.notifications.services import notify

    await notify([account_id], kind=kind, title_zh=SECRET_TITLE, title_en="Visit Zhang Sanfeng", detail=SECRET_DETAIL)
    row = await OutboxMessage.select(OutboxMessage.id).order_by(OutboxMessage.id, ascending=False).first()
    assert row is not None
    return int(row["id"])


async def _relay(redis: ArqRedis, message_id: int) -> None:
    # Job ids come from the row's random key, so another session's jobs in a shared Redis never
    # shadow ours (row ids restart with every fresh database; keys do not).
    await outbox.relay(redis, queue_name=WorkerSettings.queue_name)


async def _run_worker() -> Worker:
    """A real arq worker in burst mode: it runs what is queued, then returns."""
    pool = await create_pool(arq_settings())
    # Ours are added until jobs/worker.py lists them; arq.func() wrappers carry .name, plain functions __name__.
    known = (*WorkerSettings.functions, push_jobs.push_notify, push_jobs.sms_fallback)
    functions = {getattr(f, "name", None) or f.__name__: f for f in reversed(known)}
    worker = Worker(
        functions=list(functions.values()),
        redis_pool=pool,
        queue_name=WorkerSettings.queue_name,
        burst=True,
        poll_delay=0,
        max_tries=WorkerSettings.max_tries,
    )
    try:
        await worker.main()
    finally:
        await worker.close()
    return worker


async def _done(message_id: int) -> bool:
    row = await OutboxMessage.select(OutboxMessage.done_at).where(OutboxMessage.id == message_id).first()
    return row is not None and row["done_at"] is not None


async def _subscription(endpoint_token: str) -> dict[str, Any] | None:
    return await PushSubscription.select().where(PushSubscription.endpoint.like(f"%/{endpoint_token}")).first()


# --- the key --------------------------------------------------------------------------------


async def test_the_vapid_key_is_made_once_and_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from backend.push import vapid

    key = vapid.public_key_b64()
    path = get_settings().paths.vapid_key_file
    assert path.stat().st_mode & 0o777 == 0o600
    vapid.application_server_key.cache_clear()  # a restart
    assert vapid.public_key_b64() == key
    assert not list(path.parent.glob(f".{path.name}.*"))  # no temporary file left behind

    # A second creator (another process racing us) keeps the first key instead of replacing it.
    racing = tmp_path / "vapid.pem"
    vapid._create_key_file(racing)
    first = racing.read_bytes()
    vapid._create_key_file(racing)
    assert racing.read_bytes() == first

    # Configured keys win over the file, in both forms operators paste.
    private = ec.generate_private_key(ec.SECP256R1())
    expected = vapid.b64url(
        private.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    raw = vapid.b64url(private.private_numbers().private_value.to_bytes(32, "big"))
    try:
        for configured in (pem, pem.replace("\n", "\\n"), raw):
            monkeypatch.setenv("VAPID_PRIVATE_KEY", configured)
            get_settings.cache_clear()
            vapid.application_server_key.cache_clear()
            assert vapid.public_key_b64() == expected
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        vapid.application_server_key.cache_clear()
    assert vapid.public_key_b64() == key


# --- the API --------------------------------------------------------------------------------


async def test_a_device_subscribes_once_per_endpoint_and_only_its_owner_unsubscribes(
    push_http: httpx.AsyncClient, push_service: FakePushService
) -> None:
    from backend.audit.tables import AuditLog

    account_id, device = await _person(push_http)
    key = (await device.get("/api/v1/push/vapid-public-key")).json()["public_key"]
    assert len(key) == 87 and key == (await device.get("/api/v1/push/vapid-public-key")).json()["public_key"]

    browser = push_service.new_subscription()
    first = await device.post("/api/v1/push/subscriptions", json=browser.to_json())
    assert first.status_code == 201, first.text
    again = await device.post("/api/v1/push/subscriptions", json=browser.to_json())
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]

    # The same phone, now signed in by someone else: the subscription moves, it is not copied.
    other_id, other = await _person(push_http)
    moved = await other.post("/api/v1/push/subscriptions", json=browser.to_json())
    assert moved.status_code == 200 and moved.json()["id"] == first.json()["id"]
    assert await PushSubscription.count().where(PushSubscription.endpoint == browser.endpoint) == 1
    row = await _subscription(browser.token)
    assert row is not None and str(row["account"]) == other_id

    gone = await device.request("DELETE", "/api/v1/push/subscriptions", json={"endpoint": browser.endpoint})
    assert gone.status_code == 404
    assert await AuditLog.exists().where(
        AuditLog.actor_id == account_id, AuditLog.action == "push.unsubscribe", AuditLog.outcome == "denied"
    )
    assert (
        await other.request("DELETE", "/api/v1/push/subscriptions", json={"endpoint": browser.endpoint})
    ).status_code == 204
    assert await _subscription(browser.token) is None


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda body: body.update(endpoint="http://127.0.0.1/push/x"), None),  # not https
        (lambda body: body.update(endpoint="https://10.0.0.7/push/x"), "push.endpoint_not_allowed"),
        (lambda body: body.update(endpoint="https://fcm.googleapis.com/" + "a" * 1100), None),
        (lambda body: body["keys"].update(p256dh="B" + "A" * 86), "push.invalid_keys"),  # not on the curve
        (lambda body: body["keys"].update(auth="AAAA"), None),
        (lambda body: body.update(userId="someone-else"), None),  # unknown fields are refused
        (lambda body: body["keys"].pop("auth"), None),
    ],
)
async def test_a_bad_subscription_is_refused(
    push_http: httpx.AsyncClient, push_service: FakePushService, change: Any, code: str | None
) -> None:
    _, device = await _person(push_http)
    body = push_service.new_subscription().to_json()
    change(body)
    response = await device.post("/api/v1/push/subscriptions", json=body)
    assert response.status_code in (400, 422), response.text
    if code:
        assert response.json()["code"] == code
    assert await PushSubscription.count().where(PushSubscription.endpoint == body["endpoint"]) == 0


# --- delivery -------------------------------------------------------------------------------


async def test_a_notification_reaches_the_device_as_a_count_and_nothing_else(
    push_http: httpx.AsyncClient, push_service: FakePushService, redis: ArqRedis
) -> None:
    account_id, device = await _person(push_http, role="grid_worker")
    public_key = (await device.get("/api/v1/push/vapid-public-key")).json()["public_key"]
    browser = push_service.new_subscription()
    assert (await device.post("/api/v1/push/subscriptions", json=browser.to_json())).status_code == 201

    message_id = await _notify(account_id)
    await _relay(redis, message_id)
    await _run_worker()

    received = push_service.next(timeout=10)
    assert received.problems == []
    assert received.token == browser.token and received.answered == 201
    assert received.vapid_key == public_key  # signed with the key the browser subscribed with
    assert received.claims["aud"] == push_service.origin
    assert received.payload == {
        "title": "网格救助",
        "body": "您有 1 条未读消息",
        "count": 1,
        "tag": "gridaid-inbox",
        "url": "/#/inbox",
    }
    text = received.plaintext.decode()
    for secret in (SECRET_TITLE, "张三丰", "Zhang", *SECRET_DETAIL.values(), account_id):
        assert secret not in text
    assert push_service.drain() == []  # exactly one message
    assert await _done(message_id)
    row = await _subscription(browser.token)
    assert row is not None and row["last_success_at"] is not None and row["failures"] == 0

    # arq delivers at least once: the same job again finds its message done and sends nothing.
    assert await push_jobs.push_notify({"job_try": 1}, message_id) is None
    assert push_service.drain() == []


async def test_a_tap_opens_the_task_when_every_unread_item_is_about_it(
    push_http: httpx.AsyncClient, push_service: FakePushService
) -> None:
    import uuid

    from backend.notifications.services import notify
    from backend.push.services import send_inbox_nudges

    account_id, device = await _person(push_http, role="grid_worker")
    browser = push_service.new_subscription()
    assert (await device.post("/api/v1/push/subscriptions", json=browser.to_json())).status_code == 201
    task = str(uuid.uuid4())
    for kind in ("task.assigned", "task.visited_elsewhere"):
        await notify([account_id], kind=kind, title_zh=SECRET_TITLE, title_en="t", detail={"task": task}, push=False)
    await send_inbox_nudges([account_id])
    received = push_service.next(timeout=10)
    assert received.problems == [] and received.payload["count"] == 2
    assert received.payload["url"] == f"/#/tasks/{task}"
    assert SECRET_TITLE not in received.plaintext.decode()

    # A second task's message: the tap opens the inbox, where both are.
    await notify([account_id], kind="task.assigned", title_zh="t", title_en="t", detail={"task": str(uuid.uuid4())})
    await send_inbox_nudges([account_id])
    assert push_service.next(timeout=10).payload["url"] == "/#/inbox"
    assert push_service.drain() == []


async def test_gone_subscriptions_are_deleted_and_failing_ones_kept_without_retrying(
    push_http: httpx.AsyncClient, push_service: FakePushService, redis: ArqRedis
) -> None:
    account_id, device = await _person(push_http)
    expired = push_service.new_subscription(status=410)
    broken = push_service.new_subscription(status=500)
    for browser in (expired, broken):
        assert (await device.post("/api/v1/push/subscriptions", json=browser.to_json())).status_code == 201

    message_id = await _notify(account_id, kind="application.decided")
    await _relay(redis, message_id)
    await _run_worker()

    answers = {item.token: item.answered for item in (push_service.next(), push_service.next())}
    assert answers == {expired.token: 410, broken.token: 500}
    assert push_service.drain() == []  # no retry storm: one attempt each, and the message is done
    assert await _done(message_id)
    assert await _subscription(expired.token) is None
    kept = await _subscription(broken.token)
    assert kept is not None and kept["failures"] == 1 and kept["last_success_at"] is None

    # Sending again (a re-run, a later notification) neither crashes on the deleted row nor deletes twice.
    from backend.push.services import send_inbox_nudges

    report = await send_inbox_nudges([account_id])
    assert (report.sent, report.gone, report.failed) == (0, 0, 1)
    assert [item.token for item in push_service.drain()] == [broken.token]
    kept = await _subscription(broken.token)
    assert kept is not None and kept["failures"] == 2


async def test_a_queued_push_survives_losing_redis(
    push_http: httpx.AsyncClient, push_service: FakePushService, redis: ArqRedis
) -> None:
    account_id, device = await _person(push_http)
    browser = push_service.new_subscription()
    assert (await device.post("/api/v1/push/subscriptions", json=browser.to_json())).status_code == 201
    message_id = await _notify(account_id)
    await _relay(redis, message_id)

    # Redis loses everything queued (a restart without persistence, a failover).
    # Only this session's queue and this job: what a flush does to us, without touching what other
    # tests (or other sessions sharing the test Redis) keep there.
    key = (await OutboxMessage.select(OutboxMessage.key).where(OutboxMessage.id == message_id).first())["key"]
    await redis.delete(WorkerSettings.queue_name, f"arq:job:{outbox.job_id(key)}")
    await _run_worker()
    assert push_service.drain() == [] and not await _done(message_id)

    # The outbox row is still pending; once its enqueue is old enough the relay hands it over again.
    await outbox.relay(redis, queue_name=WorkerSettings.queue_name)
    await _run_worker()
    assert push_service.drain() == []  # not yet: it was enqueued moments ago
    await OutboxMessage.update(
        {OutboxMessage.enqueued_at: datetime.now(UTC) - outbox.REENQUEUE_AFTER - timedelta(minutes=1)}
    ).where(OutboxMessage.id == message_id)
    await _relay(redis, message_id)
    await _run_worker()

    received = push_service.next(timeout=10)
    assert received.token == browser.token and received.problems == [] and received.payload["count"] == 1
    assert push_service.drain() == []
    assert await _done(message_id)


# --- SMS fallback ---------------------------------------------------------------------------


def _phones(count: int) -> list[str]:
    """Mobile numbers whose masked forms (139****1234) differ, so the log tells them apart."""
    tails = secrets.SystemRandom().sample(range(10000), count)
    return [f"139{secrets.randbelow(10000):04d}{tail:04d}" for tail in tails]


async def _age(account_id: str, minutes: int) -> None:
    from backend.notifications.tables import Notification

    await Notification.update({Notification.created_at: datetime.now(UTC) - timedelta(minutes=minutes)}).where(
        Notification.account == account_id
    )


async def _sms_run(redis: ArqRedis) -> None:
    await redis.enqueue_job("sms_fallback", _queue_name=WorkerSettings.queue_name)
    await _run_worker()


async def test_unseen_task_notifications_earn_one_sms_per_account(
    push_http: httpx.AsyncClient, redis: ArqRedis, caplog: pytest.LogCaptureFixture
) -> None:
    from backend.lib.pii import mask_phone
    from backend.notifications.services import notify
    from backend.notifications.tables import Notification

    caplog.set_level(logging.INFO, logger="gridaid.sms")
    phones = _phones(5)
    unseen, read, pushed, fresh, no_push_yet = [
        (await _person(push_http, phone=phone, role="grid_worker"))[0] for phone in phones
    ]
    for account in (unseen, read, pushed, fresh, no_push_yet):
        await notify([account], kind="task.assigned", title_zh=SECRET_TITLE, title_en="t", push=False)
    await notify([unseen], kind="task.reassigned", title_zh=SECRET_TITLE, title_en="t", push=False)
    await notify([unseen], kind="account.updated", title_zh="非任务", title_en="t", push=False)  # not SMS-worthy
    for account in (unseen, read, pushed, no_push_yet):
        await _age(account, minutes=45)
    await Notification.update({Notification.read_at: datetime.now(UTC)}).where(Notification.account == read)
    # A device of `pushed` got a push after the notification was written: the app was nudged, no SMS.
    await PushSubscription.insert(
        PushSubscription(
            account=pushed,
            endpoint=f"https://fcm.googleapis.com/fcm/send/{secrets.token_hex(8)}",
            endpoint_hash=secrets.token_hex(32),
            p256dh="x",
            auth="x",
            last_success_at=datetime.now(UTC) - timedelta(minutes=40),
        ),
        # `no_push_yet` has a device, but nothing reached it since: it gets the SMS.
        PushSubscription(
            account=no_push_yet,
            endpoint=f"https://fcm.googleapis.com/fcm/send/{secrets.token_hex(8)}",
            endpoint_hash=secrets.token_hex(32),
            p256dh="x",
            auth="x",
            last_success_at=datetime.now(UTC) - timedelta(hours=2),
            failures=3,
        ),
    )

    await _sms_run(redis)
    await _sms_run(redis)  # the cron comes round again: nobody is texted twice

    texts: dict[str, list[str]] = {mask_phone(phone): [] for phone in phones}
    for record in caplog.records:
        if record.name == "gridaid.sms":
            for masked in texts:
                if masked in record.getMessage():
                    texts[masked].append(record.getMessage())
    by_account = dict(zip((unseen, read, pushed, fresh, no_push_yet), texts.values(), strict=True))
    assert by_account[unseen] == [f"sms to {mask_phone(phones[0])}: 您有 2 条待处理的走访任务，请打开网格救助查看"]
    assert by_account[no_push_yet] == [f"sms to {mask_phone(phones[4])}: 您有 1 条待处理的走访任务，请打开网格救助查看"]
    assert by_account[read] == [] and by_account[pushed] == [] and by_account[fresh] == []
    assert not any(phone in record.getMessage() for record in caplog.records for phone in phones)
