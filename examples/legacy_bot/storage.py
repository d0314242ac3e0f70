"""The bot's old JSON-file helpers, as such bots have them (kept to show what was replaced).

Each save rewrites the whole file with what this process holds in memory, so when the bot and
its cron service both save, the later save silently drops the other's changes. The example
no longer imports this module: ``bot.py`` and ``cron.py`` import the drop-in instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def load_json_file(path: str, default: Any = None) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return {} if default is None else default


def save_json_file(path: str, data: Any) -> None:
    temp = Path(path).with_suffix(".tmp")
    with open(temp, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
