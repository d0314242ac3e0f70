"""The bot's cron service, the old way: load the file, change it, save it, every run.

Like ``bot.py`` it imports the drop-in instead of ``examples.legacy_bot.storage``. Each run
removes the expired verification tokens (recording which), counts its runs and appends to
the shared ``audit`` list.

Run ``python -m examples.legacy_bot.cron N`` for N runs back to back.
"""

from __future__ import annotations

import sys

from sharedstate.compat import load_json_file, save_json_file

DATABASE = "/app/data/database.json"


def run_once() -> int:
    """One run of the cron job; returns how many tokens it removed."""
    data = load_json_file(DATABASE)
    tokens = data.setdefault("verification_tokens", {})
    expired = [token for token, record in tokens.items() if record.get("expired")]
    for token in expired:
        del tokens[token]
    cron = data.setdefault("cron", {"runs": 0, "removed": []})
    cron["runs"] += 1
    cron["removed"].extend(expired)
    data.setdefault("audit", []).append(f"cron: run {cron['runs']}")
    save_json_file(DATABASE, data)
    return len(expired)


def main(runs: int) -> None:
    for _ in range(runs):
        run_once()


if __name__ == "__main__":
    main(int(sys.argv[1]))
