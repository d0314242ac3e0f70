"""python -m bench [--quick] [--only CASE ...]: run the benchmarks on a fresh redis-server."""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import tempfile
import time
from pathlib import Path

from bench import api, client, durability, journal, reads, telegram, writes
from bench.common import Row, table
from sharedstate.redis_server import RedisProcess

CASES = {"client": client.run, "reads": reads.run, "writes": writes.run, "durability": durability.run,
         "api": api.run, "journal": journal.run,
         "telegram": telegram.run}  # fmt: skip
RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, object]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="a ~30 s smoke run with small sizes")
    parser.add_argument("--only", nargs="+", choices=sorted(CASES), help="run only these cases")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop the redis-server child
    rows: list[Row] = []
    started = time.time()
    with (
        tempfile.TemporaryDirectory(prefix="sharedstate-bench-") as workdir,
        RedisProcess(Path(workdir) / "redis") as server,
    ):
        for name in args.only or CASES:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            rows += CASES[name](server, Path(workdir), args.quick)
    print(table(rows))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime(started)),
                "quick": args.quick,
                "machine": machine(),
                "rows": [row.to_dict() for row in rows],
            },
            indent=2,
        )
    )
    misses = [row.case for row in rows if row.verdict == "MISS"]
    print(f"\n{len(rows)} rows, {len(misses)} MISS; results in {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
