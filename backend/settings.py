"""Settings: one dataclass per concern, read from the environment once (``get_settings``).

The embedded default needs no configuration at all: SQLite and a child Redis under ``./var``.
Production sets ``DATABASE_URL=postgresql://…`` and ``REDIS_URL=redis://…``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class PathSettings:
    var_dir: Path = field(default_factory=lambda: Path(_env("GRIDAID_VAR_DIR", "var")).resolve())

    @property
    def sqlite_file(self) -> Path:
        return self.var_dir / "gridaid.sqlite3"

    @property
    def redis_socket(self) -> Path:
        return self.var_dir / "redis.sock"

    @property
    def keys_file(self) -> Path:
        return self.var_dir / "keys.json"

    @property
    def log_dir(self) -> Path:
        return self.var_dir / "log"

    @property
    def vapid_key_file(self) -> Path:
        return self.var_dir / "vapid_private.pem"


@dataclass(frozen=True)
class DatabaseSettings:
    # Empty means the embedded SQLite file under var/.
    url: str = field(default_factory=lambda: _env("DATABASE_URL"))
    pool_min: int = field(default_factory=lambda: _env_int("DATABASE_POOL_MIN", 2))
    pool_max: int = field(default_factory=lambda: _env_int("DATABASE_POOL_MAX", 10))
    sqlite_timeout_s: int = field(default_factory=lambda: _env_int("SQLITE_TIMEOUT", 30))

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith(("postgres://", "postgresql://"))


@dataclass(frozen=True)
class RedisSettings:
    # Empty means: start our own redis-server on a unix socket under var/.
    url: str = field(default_factory=lambda: _env("REDIS_URL"))
    queue_name: str = field(default_factory=lambda: _env("GRIDAID_QUEUE", "arq:queue"))


@dataclass(frozen=True)
class AuthSettings:
    access_ttl_s: int = field(default_factory=lambda: _env_int("ACCESS_TOKEN_TTL", 30 * 60))
    # A phone may stay offline for days; the refresh token outlives that so queued work is never lost.
    refresh_ttl_s: int = field(default_factory=lambda: _env_int("REFRESH_TOKEN_TTL", 30 * 24 * 3600))
    login_per_client_per_minute: int = field(default_factory=lambda: _env_int("LOGIN_RATE_PER_CLIENT", 20))
    # Residents' public endpoints (sign-up codes, guest requests, tracking), per client address.
    public_per_client_per_minute: int = field(default_factory=lambda: _env_int("PUBLIC_RATE_PER_CLIENT", 10))
    login_failures_per_account: int = field(default_factory=lambda: _env_int("LOGIN_FAILURES_PER_ACCOUNT", 5))
    login_lock_s: int = field(default_factory=lambda: _env_int("LOGIN_LOCK_SECONDS", 15 * 60))
    reveals_per_day: int = field(default_factory=lambda: _env_int("PII_REVEALS_PER_DAY", 50))
    # Only trust X-Forwarded-For when a proxy we run sets it (docker compose does).
    trust_forwarded_for: bool = field(default_factory=lambda: _env_bool("TRUST_FORWARDED_FOR", False))
    totp_issuer: str = field(default_factory=lambda: _env("TOTP_ISSUER", "GridAid 网格救助"))


@dataclass(frozen=True)
class CryptoSettings:
    # JSON: {"active": "k1", "keys": {"k1": "<base64 32 bytes>"}, "index_key": "<base64 32 bytes>"}.
    # Empty means a key file under var/ is created on first use (embedded default only).
    keyring_json: str = field(default_factory=lambda: _env("GRIDAID_KEYRING"))


def _env_list(name: str, default: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in os.environ.get(name, default).split(",") if item.strip())


@dataclass(frozen=True)
class PushSettings:
    # PEM, or the base64url raw/DER form py-vapid reads. Empty means a key file under var/ is
    # created on first use (embedded default only: API and worker must share one key).
    vapid_private_key: str = field(default_factory=lambda: _env("VAPID_PRIVATE_KEY"))
    vapid_subject: str = field(default_factory=lambda: _env("VAPID_SUBJECT", "mailto:ops@gridaid.invalid"))
    # The only hosts the worker will POST to (host or parent domain): a subscription names a URL
    # our server calls, so anything else would let any account aim the worker at internal hosts.
    allowed_hosts: tuple[str, ...] = field(
        default_factory=lambda: _env_list(
            "PUSH_ALLOWED_HOSTS",
            "fcm.googleapis.com,android.googleapis.com,push.services.mozilla.com,push.apple.com,notify.windows.com",
        )
    )
    ttl_s: int = field(default_factory=lambda: _env_int("PUSH_TTL", 12 * 3600))
    timeout_s: int = field(default_factory=lambda: _env_int("PUSH_TIMEOUT", 10))
    concurrency: int = field(default_factory=lambda: _env_int("PUSH_CONCURRENCY", 8))
    sms_after_minutes: int = field(default_factory=lambda: _env_int("SMS_FALLBACK_AFTER_MINUTES", 30))
    # Notification kinds (prefixes) worth an SMS when nobody saw them: work someone must do.
    sms_kind_prefixes: tuple[str, ...] = field(default_factory=lambda: _env_list("SMS_FALLBACK_KINDS", "task."))
    # Older unread items are not texted about (a first deployment must not text about old backlog).
    sms_lookback_hours: int = field(default_factory=lambda: _env_int("SMS_FALLBACK_LOOKBACK_HOURS", 72))


@dataclass(frozen=True)
class ServerSettings:
    host: str = field(default_factory=lambda: _env("GRIDAID_HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: _env_int("GRIDAID_PORT", 8000))
    max_body_bytes: int = field(default_factory=lambda: _env_int("MAX_BODY_BYTES", 1024 * 1024))
    debug: bool = field(default_factory=lambda: _env_bool("GRIDAID_DEBUG", False))


@dataclass(frozen=True)
class StorageSettings:
    """Where visit photos live: a local directory (the embedded default) or S3-compatible storage.

    Partial uploads always wait on local disk under ``local_dir/incoming`` so a restarted server resumes them.
    """

    backend: str = field(default_factory=lambda: _env("GRIDAID_STORAGE", "local").strip().lower())
    local_dir: Path = field(
        default_factory=lambda: Path(
            _env("GRIDAID_PHOTO_DIR") or str(Path(_env("GRIDAID_VAR_DIR", "var")) / "photos")
        ).resolve()
    )
    s3_endpoint: str = field(default_factory=lambda: _env("S3_ENDPOINT_URL"))
    s3_bucket: str = field(default_factory=lambda: _env("S3_BUCKET"))
    s3_region: str = field(default_factory=lambda: _env("S3_REGION", "us-east-1"))
    s3_access_key_id: str = field(default_factory=lambda: _env("S3_ACCESS_KEY_ID"))
    s3_secret_access_key: str = field(default_factory=lambda: _env("S3_SECRET_ACCESS_KEY"))
    s3_prefix: str = field(default_factory=lambda: _env("S3_PREFIX", "gridaid/"))
    # A phone sends ~300 KB; a camera original is a few MB. Anything beyond these is refused.
    photo_max_bytes: int = field(default_factory=lambda: _env_int("PHOTO_MAX_BYTES", 15 * 1024 * 1024))
    # Checked from the header before any pixel is decoded: a decompression bomb never reaches memory.
    photo_max_pixels: int = field(default_factory=lambda: _env_int("PHOTO_MAX_PIXELS", 40_000_000))
    chunk_bytes: int = field(default_factory=lambda: _env_int("PHOTO_CHUNK_BYTES", 1024 * 1024))
    thumbnail_px: int = field(default_factory=lambda: _env_int("PHOTO_THUMBNAIL_PX", 320))
    jpeg_quality: int = field(default_factory=lambda: _env_int("PHOTO_JPEG_QUALITY", 85))

    @property
    def is_s3(self) -> bool:
        return self.backend == "s3"

    @property
    def incoming_dir(self) -> Path:
        return self.local_dir / "incoming"


@dataclass(frozen=True)
class Settings:
    paths: PathSettings = field(default_factory=PathSettings)
    db: DatabaseSettings = field(default_factory=DatabaseSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    crypto: CryptoSettings = field(default_factory=CryptoSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    push: PushSettings = field(default_factory=PushSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
