"""The legacy bot and its cron service, both through the drop-in, at the same time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sharedstate import SharedStore
from sharedstate.redis_server import RedisProcess
from tests.deployments import wait_for

ROOT = Path(__file__).parents[2]
SIGN_UPS = 1000
CRON_RUNS = 250


def _start(module: str, count: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", f"examples.legacy_bot.{module}", str(count)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def test_bot_and_cron_lose_nothing_of_each_other(own_redis: RedisProcess, tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SHAREDSTATE_")},
        "SHAREDSTATE_REDIS_URL": own_redis.url,
        "SHAREDSTATE_NAMESPACE": "legacy",
        "PYTHONPATH": str(ROOT),
    }
    client = own_redis.client()
    store = SharedStore(client, "legacy", "test")
    bot = _start("bot", SIGN_UPS, env, tmp_path / "bot.log")
    # The two overlap by construction, not by timing (the client cache makes the bot's saves
    # fast enough to finish before a cron process has started): the bot is paused after its
    # first saves, and goes on once the cron is a tenth of the way through its runs.
    wait_for(lambda: len(store.load("database", {}).get("users", {})) >= 20, 60, "the bot's first saves")
    bot.send_signal(signal.SIGSTOP)
    try:
        cron = _start("cron", CRON_RUNS, env, tmp_path / "cron.log")
        wait_for(
            lambda: store.load("database", {}).get("cron", {}).get("runs", 0) >= CRON_RUNS // 10 + 5,
            120,
            "the cron's first runs",
        )
    finally:
        bot.send_signal(signal.SIGCONT)
    assert cron.wait(300) == 0, (tmp_path / "cron.log").read_text()
    assert bot.wait(300) == 0, (tmp_path / "bot.log").read_text()

    data = store.load("database")
    # every sign-up of the bot, int keys stored as json wrote them
    assert sorted(data["users"]) == sorted(str(i) for i in range(SIGN_UPS))
    assert data["users"]["7"] == {"name": "user 7", "joined": 7}
    assert data["contacted"] == list(range(SIGN_UPS))  # the set the bot converted by hand
    # every run of the cron, and no token it removed came back through a bot save
    assert data["cron"]["runs"] == CRON_RUNS
    removed = set(data["cron"]["removed"])
    assert removed and not removed & set(data["verification_tokens"])
    assert {f"tok-{i}" for i in range(SIGN_UPS) if i % 3} <= set(data["verification_tokens"])
    # both sides' appends to the shared list
    audit = data["audit"]
    assert sorted(a for a in audit if a.startswith("bot")) == sorted(
        f"bot: signed up {i}" for i in range(SIGN_UPS)
    )
    assert sorted(a for a in audit if a.startswith("cron")) == sorted(
        f"cron: run {i}" for i in range(1, CRON_RUNS + 1)
    )
    # the shared list, in the order of its appends, interleaves both sides (see the pause)
    last_bot = max(i for i, entry in enumerate(audit) if entry.startswith("bot"))
    first_cron = min(i for i, entry in enumerate(audit) if entry.startswith("cron"))
    cron_during = sum(1 for entry in audit[:last_bot] if entry.startswith("cron"))
    bot_during = sum(1 for entry in audit[first_cron:] if entry.startswith("bot"))
    print(
        f"\ninterleaved: {cron_during} cron runs before the last bot save, "
        f"{bot_during} bot saves after the first cron run"
    )
    assert cron_during >= CRON_RUNS // 10 and bot_during >= SIGN_UPS // 20, (cron_during, bot_during)
    assert "overwrote" not in (tmp_path / "bot.log").read_text() + (tmp_path / "cron.log").read_text()
    store.close()
    client.close()
