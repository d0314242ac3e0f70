"""All configuration, read from the environment in this one object.

Variables use the prefix ``SHAREDSTATE_``; where a platform sets its own name
(``REDIS_URL``, ``RAILWAY_VOLUME_MOUNT_PATH``, ``PORT``) that name is the fallback.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sharedstate.connection import check_url
from sharedstate.errors import ConfigurationError
from sharedstate.keys import (
    DEFAULT_FEED_MAXLEN,
    DEFAULT_HISTORY_BUDGET,
    DEFAULT_HISTORY_LIMIT,
    DEFAULT_MAX_DOCUMENT_BYTES,
    DEFAULT_NAMESPACE,
    DEFAULT_PAYLOAD_LIMIT,
    DEFAULT_TIMEOUT,
    NAMESPACE_RE,
)

Role = Literal["read", "write", "admin"]
ROLES: tuple[Role, ...] = ("read", "write", "admin")
if TYPE_CHECKING:
    from sharedstate.durability.target import Target

_KEEP_RE = re.compile(r"(last|hourly|daily|weekly)=(\d+)")
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _env(name: str, *fallbacks: str) -> AliasChoices:
    return AliasChoices(f"SHAREDSTATE_{name}", *fallbacks)


class Settings(BaseSettings):
    """Every setting of the client, worker, API and CLI, with its default."""

    model_config = SettingsConfigDict(env_prefix="SHAREDSTATE_", extra="ignore", populate_by_name=True)

    redis_url: SecretStr | None = Field(None, validation_alias=_env("REDIS_URL", "REDIS_URL"))
    namespace: str = Field(DEFAULT_NAMESPACE, validation_alias=_env("NAMESPACE"))
    client_name: str | None = Field(None, validation_alias=_env("CLIENT_NAME"))
    timeout: float = Field(DEFAULT_TIMEOUT, gt=0, validation_alias=_env("TIMEOUT"))
    stale_reads: bool = Field(True, validation_alias=_env("STALE_READS"))
    cache: bool = Field(True, validation_alias=_env("CACHE"))
    max_document_bytes: int = Field(
        DEFAULT_MAX_DOCUMENT_BYTES, gt=0, validation_alias=_env("MAX_DOCUMENT_BYTES")
    )
    feed_maxlen: int = Field(DEFAULT_FEED_MAXLEN, gt=0, validation_alias=_env("FEED_MAXLEN"))
    history_limit: int = Field(DEFAULT_HISTORY_LIMIT, gt=0, validation_alias=_env("HISTORY_LIMIT"))
    payload_limit: int = Field(DEFAULT_PAYLOAD_LIMIT, ge=0, validation_alias=_env("PAYLOAD_LIMIT"))
    history_budget: int = Field(DEFAULT_HISTORY_BUDGET, gt=0, validation_alias=_env("HISTORY_BUDGET"))

    data_dir: Path = Field(Path("./data"), validation_alias=_env("DATA_DIR", "RAILWAY_VOLUME_MOUNT_PATH"))
    backup_url: str | None = Field(None, validation_alias=_env("BACKUP_URL"))
    snapshot_interval: int = Field(60, gt=0, validation_alias=_env("SNAPSHOT_INTERVAL"))
    snapshot_keep: str = Field("last=10,hourly=24,daily=7,weekly=4", validation_alias=_env("SNAPSHOT_KEEP"))

    verify_job: str | None = Field(None, validation_alias=_env("VERIFY_JOB"))
    verify_cron: str = Field("0 */6 * * *", validation_alias=_env("VERIFY_CRON"))
    verify_interval: int | None = Field(None, gt=0, validation_alias=_env("VERIFY_INTERVAL"))
    verify_timeout: int = Field(180, gt=0, validation_alias=_env("VERIFY_TIMEOUT"))
    verify_retries: int = Field(0, ge=0, validation_alias=_env("VERIFY_RETRIES"))
    cron_config: str | None = Field(None, validation_alias=_env("CRON_CONFIG"))
    snapshot_key: SecretStr | None = Field(None, validation_alias=_env("SNAPSHOT_KEY"))
    failed_job_ttl: int = Field(3600, gt=0, validation_alias=_env("FAILED_JOB_TTL"))
    restore_lease_ttl: float = Field(15.0, gt=0, validation_alias=_env("RESTORE_LEASE_TTL"))
    restore_check_interval: int = Field(3, gt=0, validation_alias=_env("RESTORE_CHECK_INTERVAL"))
    journal: bool = Field(True, validation_alias=_env("JOURNAL"))
    integrity_interval: int = Field(3600, gt=0, validation_alias=_env("INTEGRITY_INTERVAL"))
    shutdown_grace: float = Field(25.0, gt=0, validation_alias=_env("SHUTDOWN_GRACE"))

    api_host: str = Field("127.0.0.1", validation_alias=_env("API_HOST"))
    api_port: int = Field(8080, gt=0, lt=65536, validation_alias=_env("API_PORT", "PORT"))
    api_tokens: SecretStr | None = Field(None, validation_alias=_env("API_TOKENS"))
    api_admin_token: SecretStr | None = Field(None, validation_alias=_env("API_ADMIN_TOKEN"))
    api_access_log: bool = Field(True, validation_alias=_env("API_ACCESS_LOG"))
    api_max_body_bytes: int = Field(32 * 1024 * 1024, gt=0, validation_alias=_env("API_MAX_BODY_BYTES"))
    api_heartbeat: float = Field(15.0, gt=0, le=30, validation_alias=_env("API_HEARTBEAT"))
    api_max_streams: int = Field(1000, gt=0, validation_alias=_env("API_MAX_STREAMS"))
    api_header_timeout: float = Field(10.0, gt=0, validation_alias=_env("API_HEADER_TIMEOUT"))
    api_body_timeout: float = Field(60.0, gt=0, validation_alias=_env("API_BODY_TIMEOUT"))

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if not NAMESPACE_RE.fullmatch(value):
            raise ValueError("use 1-64 characters of ASCII letters, digits and ._-")
        return value

    @field_validator("verify_job")
    @classmethod
    def _verify_job(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[\w.]+:[\w.]+", value):
            raise ValueError("expected an import path such as 'mybot.jobs:periodic_verification'")
        return value or None

    @field_validator("snapshot_keep")
    @classmethod
    def _snapshot_keep(cls, value: str) -> str:
        parse_keep(value)
        return value

    @field_validator("api_tokens")
    @classmethod
    def _api_tokens(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_tokens(value.get_secret_value())
        return value

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias=_env("LOG_LEVEL")
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Read the environment; ConfigurationError (naming the variable, never a value) if invalid."""
        try:
            return cls(**overrides)
        except ValidationError as exc:
            problems = "; ".join(f"{_variable(err['loc'])}: {err['msg']}" for err in exc.errors())
            raise ConfigurationError(f"invalid configuration: {problems}") from None

    def require_redis_url(self) -> str:
        """The Redis URL, or a ConfigurationError that says how to set it."""
        if self.redis_url is None or not self.redis_url.get_secret_value():
            raise ConfigurationError(
                "no Redis configured: set SHAREDSTATE_REDIS_URL (or REDIS_URL), e.g. redis://localhost:6379/0"
            )
        return check_url(self.redis_url.get_secret_value())

    @property
    def signing_key(self) -> bytes | None:
        """The key snapshots are signed and checked with (HMAC-SHA256), None when unset."""
        if self.snapshot_key is None or not self.snapshot_key.get_secret_value():
            return None
        return self.snapshot_key.get_secret_value().encode()

    @property
    def backup_dir(self) -> Path:
        """The directory backups live in, when ``SHAREDSTATE_BACKUP_URL`` names one (``file:///data``
        or a plain path), else the data dir. ConfigurationError for a bucket, which has none."""
        location = parse_backup_url(self.backup_url, self.data_dir)
        if not isinstance(location, Path):
            raise ConfigurationError("SHAREDSTATE_BACKUP_URL names a bucket, not a directory")
        return location

    @property
    def snapshot_dir(self) -> Path:
        """Where snapshots live in a directory target: ``<backup dir>/snapshots``."""
        return self.backup_dir / "snapshots"

    def backup_target(self) -> Target:
        """The backup target (a directory or a bucket). Checked only where backups are used, so
        a bot that shares the worker's variables never fails on it."""
        from sharedstate.durability.target import open_target

        return open_target(self.backup_url, self.data_dir)

    def tokens(self) -> dict[str, Role]:
        """Token -> role from ``SHAREDSTATE_API_TOKENS`` and ``SHAREDSTATE_API_ADMIN_TOKEN``."""
        tokens = parse_tokens(self.api_tokens.get_secret_value()) if self.api_tokens else {}
        admin = self.api_admin_token.get_secret_value().strip() if self.api_admin_token else ""
        if admin:
            tokens[admin] = "admin"
        return tokens


def parse_backup_url(url: str | None, default: Path) -> Path | tuple[str, str]:
    """``SHAREDSTATE_BACKUP_URL`` read: a directory (``file:///data``, a path; empty: ``default``)
    or ``(bucket, prefix)`` for ``s3://bucket/prefix``. ConfigurationError, in one line, if neither."""
    url = (url or "").strip()
    if not url:
        return default
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "file":
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise ConfigurationError(
                "SHAREDSTATE_BACKUP_URL: a file:// URL names a local directory (file:///data)"
            )
        return Path(unquote(parts.path))
    if scheme == "s3":
        parts = urlsplit(url)
        bucket, prefix = parts.netloc, unquote(parts.path).strip("/")
        if not _BUCKET_RE.fullmatch(bucket) or parts.query or parts.fragment or "@" in url:
            raise ConfigurationError(
                "SHAREDSTATE_BACKUP_URL: an s3 URL is s3://<bucket>/<prefix> (credentials come from the "
                "AWS_* variables, never the URL)"
            )
        if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
            raise ConfigurationError(
                "SHAREDSTATE_BACKUP_URL: the prefix of an s3 URL has an empty or dot part"
            )
        return bucket, prefix
    if scheme:
        raise ConfigurationError(
            f"SHAREDSTATE_BACKUP_URL: unsupported scheme {scheme[:16]!r}; use a directory (file:///data or "
            "a path) or a bucket (s3://bucket/prefix)"
        )
    return Path(url)


def parse_tokens(text: str) -> dict[str, Role]:
    """Parse ``role:token,role:token``; ValueError (without the tokens) if malformed."""
    tokens: dict[str, Role] = {}
    for index, item in enumerate(part.strip() for part in text.split(",")):
        if not item:
            continue
        role, sep, token = item.partition(":")
        role = role.strip()
        if not sep or role not in ROLES or not token.strip():
            raise ValueError(f"entry {index + 1} is not 'role:token' with a role of read, write or admin")
        tokens[token.strip()] = role
    return tokens


def parse_keep(text: str) -> dict[str, int]:
    """Parse ``last=10,hourly=24,daily=7,weekly=4``."""
    keep = {"last": 0, "hourly": 0, "daily": 0, "weekly": 0}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        match = _KEEP_RE.fullmatch(item)
        if not match:
            raise ValueError(f"{item!r} is not one of last=N, hourly=N, daily=N, weekly=N")
        keep[match.group(1)] = int(match.group(2))
    if keep["last"] < 1:
        raise ValueError("last=N must keep at least one snapshot")
    return keep


def _variable(loc: tuple[int | str, ...]) -> str:
    """The environment variable a validation error is about (pydantic names the alias it read)."""
    name = str(loc[0]).upper() if loc else "?"
    return name if name.startswith("SHAREDSTATE_") or name in ("REDIS_URL", "PORT") else f"SHAREDSTATE_{name}"
