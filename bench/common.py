"""Measuring and reporting: rows with a baseline, a ratio, a target and a verdict."""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Row:
    """One line of the results table.

    ``ratio`` is ours relative to the baseline in "higher is better" terms (throughput over
    throughput, or baseline seconds over our seconds); PASS when ``ratio >= target`` (or, with
    ``at_most``, when the figure is at most the target).
    """

    case: str
    ours: str
    baseline: str = ""
    ratio: float | None = None
    target: float | None = None
    at_most: bool = False
    unit: str = "x"
    note: str = ""
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        if self.target is None or self.ratio is None:
            return ""
        ok = self.ratio <= self.target if self.at_most else self.ratio >= self.target
        return "PASS" if ok else "MISS"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}


@dataclass
class Timing:
    """Throughput and latency percentiles of repeated calls."""

    ops: float
    p50_ms: float
    p99_ms: float
    count: int

    def __str__(self) -> str:
        return f"{self.ops:,.0f} ops/s (p50 {self.p50_ms:.3f} ms, p99 {self.p99_ms:.3f} ms)"


def measure(fn: Callable[[], Any], seconds: float, warmup: int = 50) -> Timing:
    """Call ``fn`` repeatedly for about ``seconds``; per-call latencies and overall ops/s."""
    for _ in range(warmup):
        fn()
    latencies: list[float] = []
    clock = time.perf_counter
    deadline = clock() + seconds
    start = clock()
    while True:
        before = clock()
        fn()
        after = clock()
        latencies.append(after - before)
        if after >= deadline:
            break
    elapsed = clock() - start
    return timing(latencies, elapsed)


def timing(latencies: list[float], elapsed: float, operations: int | None = None) -> Timing:
    """A Timing from latencies (seconds) and the wall time they took."""
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return Timing(
        (operations or len(ordered)) / elapsed, statistics.median(ordered) * 1000, p99 * 1000, len(ordered)
    )


def file_rewrite(path: Path, data: Any) -> None:
    """The legacy save: the whole JSON file, fsynced, renamed over the old one."""
    temp = path.with_suffix(".tmp")
    with open(temp, "w") as out:
        json.dump(data, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temp, path)


def seconds(value: float) -> str:
    return f"{value:.3f} s"


def table(rows: list[Row]) -> str:
    """The rows as an aligned text table."""
    head = ("case", "ours", "baseline", "ratio", "target", "")
    lines = [
        (
            row.case,
            row.ours,
            row.baseline,
            "" if row.ratio is None else f"{row.ratio:.2f}{row.unit}",
            "" if row.target is None else f"{'<=' if row.at_most else '>='} {row.target:.3g}{row.unit}",
            row.verdict,
        )
        for row in rows
    ]
    widths = [max(len(str(cells[i])) for cells in [head, *lines]) for i in range(len(head))]
    out = []
    for cells in [head, *lines]:
        out.append(
            "  ".join(str(cell).ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()
        )
    return "\n".join(out)
