"""The package as users install it: the wheel, in a fresh venv without extras, run from a bot's
own directory that holds a `worker.py`, an `api/` package and a `jobs.py` of its own.

Slow (it builds a wheel and installs its dependencies from the index): `make test-packaging`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sharedstate.cli.main import build_parser
from sharedstate.redis_server import RedisProcess, free_port
from tests.deployments import ROOT, wait_for

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(900)]

DECOYS = {
    "worker.py": "worker",
    "api/__init__.py": "api",
    "jobs.py": "jobs",
    "rqworker.py": "rqworker",
    "cron.py": "cron",
}
TOKEN = "packaging-test-token-0123456789"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    source = tmp_path_factory.mktemp("source") / "sharedstate"  # a build leaves build/ behind
    tracked = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True, timeout=60)
        .stdout.decode()
        .split("\0")
    )
    for relative in filter(None, tracked):
        if (ROOT / relative).is_file():
            (source / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / relative, source / relative)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
        check=True, timeout=600,
    )  # fmt: skip
    (found,) = out.glob("sharedstate-*.whl")
    return found


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel and nothing else: no extras, no test dependencies."""
    home = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(home)], check=True, timeout=120)
    subprocess.run(
        [str(home / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], check=True, timeout=600
    )
    return home


@pytest.fixture
def bot_dir(tmp_path: Path) -> Path:
    """A bot repository: its own modules named like ours, each leaving a trace and failing if imported."""
    bot = tmp_path / "bot"
    for relative, name in DECOYS.items():
        path = bot / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            "import pathlib\n"
            f"pathlib.Path(__file__).resolve().parent.joinpath('IMPORTED-{name}').touch()\n"
            f"raise RuntimeError('the decoy {name} was imported')\n"
        )
    (bot / "bot_tasks.py").write_text(
        "from sharedstate import SharedStore\n\n"
        "def periodic_verification():\n"
        "    with SharedStore.from_env(client_name='verify') as store:\n"
        "        runs = store.update('verified', lambda d: {**d, 'runs': d.get('runs', 0) + 1})\n"
        "    return {'runs': runs.data['runs']}\n\n"
        "def digest():\n"
        "    return 'sent'\n"
    )
    (bot / "bot_cron.py").write_text(
        "from sharedstate.worker.schedule import cron_job\n\n"
        "cron_jobs = [cron_job('bot_tasks:digest', name='digest', cron='0 8 * * *')]\n"
    )
    return bot


def _bot_env(bot: Path, venv: Path, server: RedisProcess, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SHAREDSTATE_", "REDIS_URL", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(bot),  # as images often set it (PYTHONPATH=/app)
        PYTHONUNBUFFERED="1",
        SHAREDSTATE_REDIS_URL=server.url,
        SHAREDSTATE_NAMESPACE="packaged",
        SHAREDSTATE_DATA_DIR=str(bot / "data"),
        **extra,
    )
    return env


def test_the_wheel_holds_one_top_level_package(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        top = {name.split("/", 1)[0] for name in archive.namelist()}
        assert "sharedstate/api/console/console.js" in archive.namelist()
        assert "sharedstate/scripts/write.lua" in archive.namelist()
    assert top == {"sharedstate", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}


def test_pip_show_lists_only_sharedstate(venv: Path) -> None:
    shown = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "show", "-f", "sharedstate"],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    files = [line.strip() for line in shown.split("Files:", 1)[1].splitlines() if line.strip()]
    in_site_packages = {line.split("/", 1)[0] for line in files if not line.startswith("..")}
    assert {top for top in in_site_packages if not top.endswith(".dist-info")} == {"sharedstate"}
    assert [line for line in files if line.startswith("..")] == ["../../../bin/sharedstate"]


def test_every_command_answers_help_without_extras(
    venv: Path, bot_dir: Path, redis_server: RedisProcess
) -> None:
    env = _bot_env(bot_dir, venv, redis_server)
    subcommands = next(action for action in build_parser()._actions if action.dest == "command").choices  # type: ignore[union-attr]
    for argv in [[], *([name] for name in subcommands)]:
        done = subprocess.run(
            ["sharedstate", *argv, "--help"], env=env, cwd=bot_dir, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, (argv, done.stderr)
        assert "usage: sharedstate" in done.stdout
        assert "Traceback" not in done.stderr
    assert sorted(path.name for path in bot_dir.rglob("IMPORTED-*")) == []


class Service:
    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        if service.process.poll() is None:
            os.killpg(service.process.pid, signal.SIGKILL)
            service.process.wait()


def test_worker_and_api_run_from_a_bot_directory(
    venv: Path, bot_dir: Path, redis_server: RedisProcess, services: list[Service], tmp_path: Path
) -> None:
    port = free_port()
    env = _bot_env(
        bot_dir, venv, redis_server,
        SHAREDSTATE_VERIFY_JOB="bot_tasks:periodic_verification",
        SHAREDSTATE_VERIFY_INTERVAL="2",
        SHAREDSTATE_CRON_CONFIG="bot_cron",
        SHAREDSTATE_API_PORT=str(port),
        SHAREDSTATE_API_TOKENS=f"admin:{TOKEN}",
    )  # fmt: skip
    worker = Service(["sharedstate", "worker"], env, bot_dir, tmp_path / "worker.log")
    services.append(worker)
    api = Service(["sharedstate", "api"], env, bot_dir, tmp_path / "api.log")
    services.append(api)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def get(path: str) -> object:
        assert worker.process.poll() is None, worker.output()
        assert api.process.poll() is None, api.output()
        try:
            answer = httpx.get(base + path, headers=headers, timeout=5)
        except httpx.TransportError:
            return None
        return answer.json() if answer.status_code == 200 else None

    def verified() -> object:
        jobs = get("/v1/jobs?runs=5") or []
        verify = next((job for job in jobs if job["name"] == "verify"), None)  # type: ignore[union-attr]
        return verify and any(run["status"] == "ok" for run in verify["last_runs"]) and jobs

    jobs = wait_for(verified, 120, f"a verification run\n{worker.output()}")
    assert "digest" in {job["name"] for job in jobs}
    # The user's cron job stays in the published schedule, heartbeat after heartbeat.
    first = wait_for(lambda: get("/v1/health"), 10, "health")["worker"]["workers"][0]["heartbeat_at"]  # type: ignore[index]
    deadline = time.monotonic() + 30
    beats = {first}
    while len(beats) < 3 and time.monotonic() < deadline:
        health = get("/v1/health")
        if health:
            beats.add(health["worker"]["workers"][0]["heartbeat_at"])  # type: ignore[index]
        assert "digest" in {job["name"] for job in get("/v1/jobs") or [{"name": "digest"}]}  # type: ignore[union-attr]
        time.sleep(0.2)
    assert len(beats) >= 3, "the heartbeat did not move"
    assert "digest" in {job["name"] for job in get("/v1/jobs")}  # type: ignore[union-attr]
    verified_doc = get("/v1/docs/verified")
    assert verified_doc and verified_doc["data"]["runs"] >= 1  # type: ignore[index]
    assert worker.stop() == 0, worker.output()
    assert api.stop() == 0, api.output()
    assert sorted(path.name for path in bot_dir.rglob("IMPORTED-*")) == [], worker.output() + api.output()
    assert "Traceback" not in worker.output(), worker.output()
    assert TOKEN not in worker.output() + api.output()


def test_without_the_extra_import_pickle_says_what_to_install(
    venv: Path, bot_dir: Path, redis_server: RedisProcess
) -> None:
    (bot_dir / "state.pickle").write_bytes(b"")
    done = subprocess.run(
        ["sharedstate", "import-pickle", "state.pickle"], env=_bot_env(bot_dir, venv, redis_server),
        cwd=bot_dir, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "sharedstate[telegram]" in done.stderr and "Traceback" not in done.stderr


def test_without_the_extra_a_bucket_target_says_what_to_install(
    venv: Path, bot_dir: Path, redis_server: RedisProcess
) -> None:
    env = _bot_env(bot_dir, venv, redis_server, SHAREDSTATE_BACKUP_URL="s3://my-bucket/bot")
    done = subprocess.run(["sharedstate", "snapshots"], env=env, cwd=bot_dir, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 2 and "sharedstate[s3]" in done.stderr and "Traceback" not in done.stderr


def test_the_telegram_extra_runs_the_example_bots_offline_test(
    wheel: Path, tmp_path: Path, redis_server: RedisProcess, real_redis: object
) -> None:
    home = tmp_path / "venv-telegram"
    subprocess.run([sys.executable, "-m", "venv", str(home)], check=True, timeout=120)
    subprocess.run(
        [str(home / "bin" / "python"), "-m", "pip", "install", "-q", f"{wheel}[telegram]"],
        check=True,
        timeout=600,
    )
    bot = tmp_path / "bot"  # the user's own code: the example bot copied out of the repository
    shutil.copytree(ROOT / "examples", bot / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    env = _bot_env(bot, home, redis_server)
    done = subprocess.run(
        [str(home / "bin" / "python"), "-m", "examples.bot.telegram_bot", "--offline"], env=env, cwd=bot,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "offline self-test passed" in done.stdout
