"""Hold N open event streams (a second process): ``python -m bench.streams HOST PORT TOKEN N``.

Prints "ready" once every stream has said ``: connected``, keeps reading them (heartbeats) and
exits when its stdin closes.
"""

from __future__ import annotations

import asyncio
import sys


async def _open(host: str, port: int, token: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET /v1/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    seen = b""
    while b": connected" not in seen:
        chunk = await reader.read(4096)
        if not chunk:
            raise RuntimeError(f"a stream closed before it connected: {seen[:200]!r}")
        seen += chunk
    return reader, writer


async def _drain(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass


async def main(host: str, port: int, token: str, count: int) -> None:
    streams = [await _open(host, port, token) for _ in range(count)]
    drains = [asyncio.ensure_future(_drain(reader)) for reader, _ in streams]
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
    for task in drains:
        task.cancel()
    for _, writer in streams:
        writer.close()


if __name__ == "__main__":
    host, port, token, count = sys.argv[1:5]
    asyncio.run(main(host, int(port), token, int(count)))
