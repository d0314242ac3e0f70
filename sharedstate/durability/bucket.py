"""The bucket target: an S3-compatible bucket (Railway Buckets, Tigris, R2, S3, MinIO).

Built on obstore (the ``[s3]`` extra): one self-contained wheel of ~6 MB with no Python
dependencies (boto3 brings botocore, ~17 MB compressed and ~100 MB installed; minio is small
but synchronous only and pulls in argon2 and pycryptodome), sync and asyncio calls, multipart
uploads and streaming reads in Rust. Every upload is one atomic PUT (multipart for large
files), so a reader never sees half an object.

Errors never carry the endpoint or a credential: an S3 client's message names the URL it
called, which is an internal address on a private network, so only the kind of failure and
the object's ``s3://`` name are reported.
"""

from __future__ import annotations

import io
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import obstore
from obstore.exceptions import (
    BaseError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from obstore.store import S3Store

from sharedstate.durability.target import Item, Source
from sharedstate.errors import ConfigurationError, SnapshotError

READ_BUFFER = 1 << 20
TIMEOUT = timedelta(seconds=60)
CONNECT_TIMEOUT = timedelta(seconds=10)
_TRUE = ("1", "true", "yes", "on")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, NotFoundError | FileNotFoundError):
        return "no such object"
    if isinstance(exc, PermissionDeniedError | UnauthenticatedError):
        return "access denied (check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
    if isinstance(exc, BaseError):
        return f"the bucket refused or did not answer ({type(exc).__name__})"
    return f"the bucket did not answer ({type(exc).__name__})"


class _Reader(io.RawIOBase):
    """obstore's buffered reader as a file of ``bytes`` (gzip wants ``bytes`` back)."""

    def __init__(self, file: Any, where: str) -> None:
        self._file = file
        self._where = where

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._file.read(len(buffer))
        except (BaseError, OSError, RuntimeError) as exc:
            raise OSError(_reason(exc)) from None
        size = len(data)
        memoryview(buffer)[:size] = memoryview(data)
        return size

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


@dataclass(frozen=True, slots=True)
class BucketObject:
    """An object of a bucket target, read as a stream."""

    target: BucketTarget
    key: str
    size: int = 0

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    def open(self) -> IO[bytes]:
        try:
            file = obstore.open_reader(self.target.store, self.key, buffer_size=READ_BUFFER)
        except (BaseError, OSError, RuntimeError) as exc:
            raise SnapshotError(self, _reason(exc)) from None
        return io.BufferedReader(_Reader(file, str(self)), READ_BUFFER)

    def __str__(self) -> str:
        return f"{self.target.description}/{self.key}"


def _names_subdomains(host: str) -> bool:
    """Whether ``<bucket>.<host>`` can name the bucket (virtual-hosted requests): not for an IP
    address, nor for a name without a dot (``localhost``, a compose service such as ``minio``).
    Such endpoints are local servers (MinIO, moto), which take path-style requests."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return "." in host
    return False


class BucketTarget:
    """``s3://<bucket>/<prefix>``: ``snapshots/`` and ``journal/`` under the prefix."""

    shared = True

    def __init__(self, bucket: str, prefix: str, store: S3Store) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.store = store
        self._staging: dict[str, Path] = {}

    @classmethod
    def from_environment(cls, bucket: str, prefix: str, env: dict[str, str] | None = None) -> BucketTarget:
        """The bucket with credentials and endpoint from the usual AWS variables:
        ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` (``AWS_SESSION_TOKEN``),
        ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``, ``AWS_REGION`` (``AWS_DEFAULT_REGION``),
        ``AWS_S3_FORCE_PATH_STYLE``."""
        env = dict(os.environ if env is None else env)
        config: dict[str, Any] = {
            "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        }
        for variable, option in (
            ("AWS_ACCESS_KEY_ID", "access_key_id"),
            ("AWS_SECRET_ACCESS_KEY", "secret_access_key"),
            ("AWS_SESSION_TOKEN", "session_token"),
        ):
            if env.get(variable):
                config[option] = env[variable]
        endpoint = (env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or "").strip().rstrip("/")
        path_style = env.get("AWS_S3_FORCE_PATH_STYLE", "").strip().lower() in _TRUE
        client: dict[str, Any] = {"timeout": TIMEOUT, "connect_timeout": CONNECT_TIMEOUT}
        if endpoint:
            parts = urlsplit(endpoint)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigurationError("AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL is not an http(s) URL")
            path_style = path_style or not _names_subdomains(parts.hostname)
            if not path_style:  # the bucket is the first label of the host name
                parts = parts._replace(netloc=f"{bucket}.{parts.netloc}")
            config["endpoint"] = urlunsplit(parts)
            client["allow_http"] = parts.scheme == "http"
        config["virtual_hosted_style_request"] = not path_style
        try:
            store = S3Store(bucket, prefix=prefix or None, config=config, client_options=client)  # type: ignore[arg-type]
        except (BaseError, ValueError) as exc:
            raise ConfigurationError(
                f"SHAREDSTATE_BACKUP_URL: cannot use the bucket ({_reason(exc)})"
            ) from None
        return cls(bucket, prefix, store)

    @property
    def description(self) -> str:
        return f"s3://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")

    def _key(self, folder: str, name: str) -> str:
        return f"{folder}/{name}"

    def list(self, folder: str) -> list[Item]:
        items = []
        try:
            for chunk in obstore.list(self.store, prefix=f"{folder}/"):
                for meta in chunk:
                    name = meta["path"][len(folder) + 1 :]
                    if name and "/" not in name:
                        items.append(Item(name, int(meta["size"]), meta["last_modified"].timestamp()))
        except (BaseError, OSError, RuntimeError) as exc:
            raise SnapshotError(f"{self.description}/{folder}/", f"cannot list: {_reason(exc)}") from None
        return items

    def source(self, folder: str, name: str) -> Source:
        return BucketObject(self, self._key(folder, name))

    def sized(self, folder: str, item: Item) -> BucketObject:
        """The object a listing named, knowing its size."""
        return BucketObject(self, self._key(folder, item.name), item.size)

    def staging(self, folder: str) -> Path:
        import tempfile

        directory = self._staging.get(folder)
        if directory is None or not directory.is_dir():
            directory = Path(tempfile.mkdtemp(prefix=f"sharedstate-{folder}-"))
            self._staging[folder] = directory
        return directory

    def publish(self, folder: str, local: Path) -> Source:
        name = local.name.removeprefix(".tmp-")
        key = self._key(folder, name)
        size = local.stat().st_size
        try:
            obstore.put(self.store, key, local)
        except (BaseError, OSError, RuntimeError) as exc:
            raise SnapshotError(f"{self.description}/{key}", f"cannot upload: {_reason(exc)}") from None
        finally:
            local.unlink(missing_ok=True)
        return BucketObject(self, key, size)

    def write(self, folder: str, name: str, data: bytes, unchanged: int = 0) -> None:
        key = self._key(folder, name)
        try:
            obstore.put(self.store, key, data)  # whole: a bucket has no append
        except (BaseError, OSError, RuntimeError) as exc:
            raise SnapshotError(f"{self.description}/{key}", f"cannot upload: {_reason(exc)}") from None

    def delete(self, folder: str, names: Sequence[str]) -> None:
        if not names:
            return
        keys = [self._key(folder, name) for name in names]
        try:
            obstore.delete(self.store, keys)
        except NotFoundError:
            pass
        except (BaseError, OSError, RuntimeError) as exc:
            raise SnapshotError(f"{self.description}/{folder}/", f"cannot delete: {_reason(exc)}") from None
