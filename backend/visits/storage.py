"""Where finished photos are kept: a local directory by default, S3-compatible storage when configured.

Keys are content addresses (``photos/<sha256>.jpg``): writing the same photo twice writes the same
object, so a retried completion never leaves a second copy behind.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import anyio.to_thread

from backend.settings import StorageSettings, get_settings


class PhotoStorage(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def exists(self, key: str) -> bool: ...


class StoredObjectMissing(Exception):
    pass


def _safe_key(key: str) -> str:
    parts = key.split("/")
    if not key or any(part in ("", ".", "..") for part in parts) or "\\" in key:
        raise ValueError("bad storage key")
    return key


class LocalStorage:
    """Files under one directory, readable by the server's user only (0600 files, 0700 folders)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / _safe_key(key)

    def _write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            temporary.replace(path)  # readers see the whole file or none of it
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    def _read(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise StoredObjectMissing(key) from exc

    async def put(self, key: str, data: bytes) -> None:
        await anyio.to_thread.run_sync(self._write, key, data)

    async def get(self, key: str) -> bytes:
        return await anyio.to_thread.run_sync(self._read, key)

    async def exists(self, key: str) -> bool:
        return self._path(key).is_file()


class S3Storage:
    """Any S3-compatible service (AWS, MinIO, Ceph, Aliyun OSS's S3 API) through obstore's async client."""

    def __init__(self, settings: StorageSettings) -> None:
        from obstore.store import S3Store

        config: dict[str, str] = {"region": settings.s3_region}
        if settings.s3_access_key_id:
            config["access_key_id"] = settings.s3_access_key_id
            config["secret_access_key"] = settings.s3_secret_access_key
        if settings.s3_endpoint:
            config["endpoint"] = settings.s3_endpoint
        self.prefix = settings.s3_prefix
        self.store = S3Store(
            settings.s3_bucket,
            config=config,  # type: ignore[arg-type]
            client_options={"allow_http": settings.s3_endpoint.startswith("http://")},
        )

    def _key(self, key: str) -> str:
        return self.prefix + _safe_key(key)

    async def put(self, key: str, data: bytes) -> None:
        import obstore

        await obstore.put_async(self.store, self._key(key), data)

    async def get(self, key: str) -> bytes:
        import obstore

        try:
            result = await obstore.get_async(self.store, self._key(key))
        except FileNotFoundError as exc:
            raise StoredObjectMissing(key) from exc
        return bytes(await result.bytes_async())

    async def exists(self, key: str) -> bool:
        import obstore

        try:
            await obstore.head_async(self.store, self._key(key))
        except FileNotFoundError:
            return False
        return True


def make_storage(settings: StorageSettings) -> PhotoStorage:
    if settings.is_s3:
        return S3Storage(settings)
    return LocalStorage(settings.local_dir)


@lru_cache(maxsize=1)
def _cached(settings: StorageSettings) -> PhotoStorage:
    return make_storage(settings)


def photo_storage() -> PhotoStorage:
    """The configured storage (one client per settings object: tests may switch settings)."""
    return _cached(get_settings().storage)
