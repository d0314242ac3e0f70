"""A bot written the old way: registries in one dict loaded at start, saved after changes.

The only line changed to move it onto sharedstate is the import below (it was
``from examples.legacy_bot.storage import load_json_file, save_json_file``).

``database.json`` holds several registries: ``users`` keyed by Telegram user id (ints in
memory; ``json`` turns them into strings), ``verification_tokens``, ``contacted`` (a set in
memory, converted to a sorted list by hand before saving) and ``audit`` (a list both the bot
and its cron job append to).

Run ``python -m examples.legacy_bot.bot N`` to handle N simulated sign-ups.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from sharedstate.compat import load_json_file, save_json_file

DATABASE = "/app/data/database.json"


class Bot:
    """The bot's in-memory state and its debounced save."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = load_json_file(DATABASE)
        for registry in ("users", "verification_tokens"):
            self.data.setdefault(registry, {})
        self.data.setdefault("audit", [])
        self.contacted: set[int] = set(self.data.get("contacted", []))  # a set in memory
        self.lock = threading.Lock()
        self.dirty = threading.Event()

    def sign_up(self, user_id: int) -> None:
        """One user signs up: a user record, a token (every third born expired), contacted."""
        with self.lock:
            self.data["users"][user_id] = {"name": f"user {user_id}", "joined": user_id}
            token = {"user": user_id, "expired": user_id % 3 == 0}
            self.data["verification_tokens"][f"tok-{user_id}"] = token
            self.contacted.add(user_id)
            self.data["audit"].append(f"bot: signed up {user_id}")
        self.dirty.set()

    def save(self) -> None:
        """What the debounced save thread does: convert the set by hand, save the whole dict."""
        with self.lock:
            self.data["contacted"] = sorted(self.contacted)
            save_json_file(DATABASE, self.data)
        self.dirty.clear()


def main(count: int) -> None:
    bot = Bot()
    for user_id in range(count):
        bot.sign_up(user_id)
        bot.save()  # a debounced saver would batch these; saving each one is the harder case


if __name__ == "__main__":
    main(int(sys.argv[1]))
