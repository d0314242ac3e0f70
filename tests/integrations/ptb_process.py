"""One of the two processes of the two-process test: ``python -m tests.integrations.ptb_process
FIRST COUNT ROUNDS`` updates users FIRST..FIRST+COUNT-1 each round through SharedStatePersistence
and refreshes the other process's users in between."""

from __future__ import annotations

import asyncio
import sys

from sharedstate.integrations.telegram import SharedStatePersistence


async def main(first: int, count: int, rounds: int) -> None:
    persistence = SharedStatePersistence.from_env()
    users = await persistence.get_user_data()
    others = range(1000 - first, 1000 - first + count) if first < 1000 else range(0, count)
    for round_ in range(rounds):
        for user in range(first, first + count):
            data = users.setdefault(user, {})
            data.update({"round": round_, "user": user})
            await persistence.update_user_data(user, data)
        for user in list(others)[::10]:
            await persistence.refresh_user_data(user, users.setdefault(user, {}))
    await persistence.flush()


if __name__ == "__main__":
    asyncio.run(main(*(int(arg) for arg in sys.argv[1:4])))
