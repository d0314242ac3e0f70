"""A small HTTP/1.1 keep-alive load generator (a second process): ``python -m bench.load``.

    python -m bench.load HOST PORT PATH TOKEN SECONDS CONCURRENCY

Prints JSON: requests/s, p50/p99 latency in ms, non-200 answers.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time


async def _worker(host: str, port: int, request: bytes, deadline: float, latencies: list[float]) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    errors = 0
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            errors += status != 200
    finally:
        writer.close()
    return errors


async def run(
    host: str, port: int, path: str, token: str, seconds: float, concurrency: int
) -> dict[str, float]:
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}",
        f"Authorization: Bearer {token}",
        "Connection: keep-alive",
    ]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    latencies: list[float] = []
    started = time.perf_counter()
    errors = await asyncio.gather(
        *(_worker(host, port, request, started + seconds, latencies) for _ in range(concurrency))
    )
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "ops": len(ordered) / elapsed,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[int(len(ordered) * 0.99)] * 1000,
        "errors": sum(errors),
        "count": len(ordered),
        "max_ms": ordered[-1] * 1000,
    }


if __name__ == "__main__":
    host, port, path, token, seconds, concurrency = sys.argv[1:7]
    print(json.dumps(asyncio.run(run(host, int(port), path, token, float(seconds), int(concurrency)))))
