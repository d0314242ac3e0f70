"""Run one durability operation in a fresh process and print its time and peak RSS as JSON.

python -m bench.child snapshot|restore REDIS_URL NAMESPACE DIRECTORY
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from sharedstate import SharedStore
from sharedstate.durability.restore import restore_newest
from sharedstate.durability.snapshots import take_snapshot


def peak_rss_mb() -> float:
    """This process's peak resident memory. Not ru_maxrss: Linux carries that over from the
    parent across fork and exec, so a child would report its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    what, url, namespace, directory = sys.argv[1:5]
    store = SharedStore.from_url(url, namespace, "bench", timeout=60)
    started = time.perf_counter()
    if what == "snapshot":
        result = take_snapshot(store, Path(directory))
        extra = {"path": str(result.path), "documents": result.header.documents, "size": result.size}
    else:
        report = restore_newest(store, Path(directory))
        assert report is not None
        extra = {"documents": len(report.restored)}
    elapsed = time.perf_counter() - started
    peak_mb = peak_rss_mb()
    print(json.dumps({"seconds": elapsed, "peak_rss_mb": peak_mb, **extra}))


if __name__ == "__main__":
    main()
