"""Every command, given wrong input, says what is wrong in one line and exits 2: no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from sharedstate.cli import main
from sharedstate.redis_server import RedisProcess, free_port

ROOT = Path(__file__).parents[3]


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "baddir").mkdir()
    (tmp_path / "baddir" / "x.json").write_text("{not json")
    (tmp_path / "existing").write_text("")
    (tmp_path / "good.json").write_text('{"a": 1}')
    return tmp_path


def _one_line_exit_2(capsys: pytest.CaptureFixture[str], args: list[str], expect: str = "") -> None:
    code = main(args)
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2, (args, captured.err)
    assert "Traceback" not in captured.err + captured.out, args
    assert len(lines) == 1 and lines[0].startswith(("error:", "configuration error:")), (args, captured.err)
    assert expect.lower() in captured.err.lower(), (args, captured.err)


COMMANDS_WITH_REDIS = [
    ["ls"], ["get", "doc"], ["put", "doc", "good.json"], ["delete", "doc", "--yes"], ["history", "doc"],
    ["watch", "--timeout", "0.1"], ["snapshot"], ["restore"], ["import", "baddir"], ["export", "out"],
]  # fmt: skip


@pytest.mark.parametrize("args", COMMANDS_WITH_REDIS, ids=lambda a: a[0])
@pytest.mark.parametrize("url", ["http://example.com", "not a url", "redis://:pw@[::1"])
def test_a_bad_url(
    args: list[str],
    url: str,
    files: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(files)
    monkeypatch.setenv("SHAREDSTATE_DATA_DIR", str(files / "data"))
    monkeypatch.setenv("SHAREDSTATE_REDIS_URL", "redis://127.0.0.1:1/0")
    _one_line_exit_2(capsys, [*args, "--url", url], "Redis URL")
    assert "pw" not in capsys.readouterr().err


@pytest.fixture
def at_redis(
    redis_server: RedisProcess, real_redis: redis.Redis, files: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    monkeypatch.chdir(files)
    monkeypatch.setenv("SHAREDSTATE_REDIS_URL", redis_server.url)
    monkeypatch.setenv("SHAREDSTATE_DATA_DIR", str(files / "data"))
    return files


WRONG_INPUTS: list[tuple[list[str], str]] = [
    (["put", "doc", "missing.json"], "no such file"),
    (["put", "doc", "bad.json"], "bad.json"),
    (["put", "bad name", "good.json"], "document name"),
    (["get", "bad/name"], "document name"),
    (["history", "doc", "--limit", "x"], "invalid int"),
    (["delete", "doc"], "--yes"),  # no terminal: refused, nothing deleted
    (["watch", "--after", "yesterday"], "feed position"),
    (["import", "missing"], "no such directory"),
    (["import", "baddir"], "x.json"),
    (["import", "--split", "missing.json"], "no such file"),
    (["import"], "DIRECTORY"),
    (["export", "existing"], "existing"),
    (["restore", "missing.jsonl.gz"], "no such snapshot file"),
    (["verify", "missing.jsonl.gz"], "no such snapshot file"),
    (["restore", "--force"], "--yes"),
    (["restore", "--at", "2026-12-01T10:00:00Z"], "--yes"),  # a roll-back: refused without a terminal
    (["restore", "--at", "yesterday"], "not a time"),
    (["restore", "--at", "nan"], "not a time"),
    (["restore", "--at", "2999-01-01T00:00:00Z", "--yes"], "in the future"),
    (["restore", "x.jsonl.gz", "--at", "1796120000", "--yes"], "not both"),
    (["snapshots", "--namespace", "bad name!"], "SHAREDSTATE_NAMESPACE"),
    (["nosuchcommand"], "invalid choice"),
]


@pytest.mark.parametrize(
    ("args", "expect"), WRONG_INPUTS, ids=lambda a: " ".join(a) if isinstance(a, list) else ""
)
def test_wrong_inputs(
    args: list[str], expect: str, at_redis: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        _one_line_exit_2(capsys, args, expect)
    except SystemExit as exc:  # argparse's own usage errors: one line too, exit 2
        captured = capsys.readouterr()
        lines = [line for line in captured.err.splitlines() if line.strip()]
        assert exc.code == 2 and expect.lower() in captured.err.lower(), captured.err
        assert len(lines) == 1 and lines[0].startswith("error: sharedstate") and "--help" in lines[0], lines


def test_the_error_names_the_variable_once(
    at_redis: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHAREDSTATE_NAMESPACE", "bad name!")
    _one_line_exit_2(capsys, ["ls"], "SHAREDSTATE_NAMESPACE")
    assert main(["ls"]) == 2
    assert "SHAREDSTATE_SHAREDSTATE" not in capsys.readouterr().err


def test_global_options_go_before_or_after_the_command(
    at_redis: Path,
    redis_server: RedisProcess,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SHAREDSTATE_REDIS_URL", "redis://127.0.0.1:1/0")
    for args in (["--url", redis_server.url, "-n", "elsewhere", "put", "doc", "good.json"],
                 ["put", "doc", "good.json", "--url", redis_server.url, "-n", "elsewhere"]):  # fmt: skip
        assert main(args) == 0, capsys.readouterr().err
    assert main(["ls", "--json", "--url", redis_server.url, "--namespace", "elsewhere"]) == 0
    assert '"name": "doc"' in capsys.readouterr().out


def _command(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sharedstate", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_services_refuse_bad_configuration_in_one_line(files: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHAREDSTATE_", "REDIS_URL"))}
    env.update(SHAREDSTATE_DATA_DIR=str(files / "data"), PYTHONPATH=str(ROOT))
    checks: list[tuple[list[str], dict[str, str], str]] = [
        (["worker"], {"SHAREDSTATE_REDIS_URL": "http://x"}, "Redis URL"),
        (["api"], {"SHAREDSTATE_REDIS_URL": "http://x"}, "Redis URL"),
        (["api"], {}, "SHAREDSTATE_REDIS_URL"),
        (["worker"], {"SHAREDSTATE_REDIS_URL": "redis://127.0.0.1:1",
                      "SHAREDSTATE_SNAPSHOT_INTERVAL": "soon"}, "SHAREDSTATE_SNAPSHOT_INTERVAL"),
        (["worker"], {"SHAREDSTATE_REDIS_URL": "redis://127.0.0.1:1",  # a typo: not a failure per run
                      "SHAREDSTATE_VERIFY_JOB": "bot_taskz:verify"}, "SHAREDSTATE_VERIFY_JOB"),
    ]  # fmt: skip
    for args, extra, expect in checks:
        done = _command(*args, env={**env, **extra}, cwd=files)
        assert done.returncode == 2, (args, done.stderr)
        assert "Traceback" not in done.stderr and expect in done.stderr, (args, done.stderr)


def test_up_fails_fast_when_the_api_port_is_taken(files: Path) -> None:
    import socket

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHAREDSTATE_", "REDIS_URL"))}
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        env.update(SHAREDSTATE_DATA_DIR=str(files / "data"), SHAREDSTATE_REDIS_URL="redis://127.0.0.1:1",
                   SHAREDSTATE_API_PORT=str(port), PYTHONPATH=str(ROOT))  # fmt: skip
        done = _command("up", env=env, cwd=files)
    assert done.returncode == 2, done.stderr
    assert f"port {port}" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) <= 3
