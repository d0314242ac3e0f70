"""Record what clients saw under faults, and check it.

Each process does random get / put(CAS) / merge / update / delete on a few documents. Every
write stores a token unique to that operation in field "w", so a read names the write it
saw. An operation is recorded with its start and end (CLOCK_MONOTONIC, shared by all
processes) and its outcome: ok, conflict, or error, which means "maybe applied" (a write
that timed out may take effect at any time after it started).

The checker verifies, per document:
  1. successful writes have unique versions, increasing in real-time order;
  2. a read returns the value of a write that began before the read ended, was not refused
     (conflict), and had not been definitely overwritten before the read began; its version
     is that write's version;
  3. reads do not go back in time (versions never decrease between reads in real-time order);
  4. so no acknowledged write is lost: a read made after everything finished must see the
     last acknowledged write (or a maybe-applied one after it).
"""

from __future__ import annotations

import bisect
import math
import random
import time
from dataclasses import asdict, dataclass
from typing import Any

from sharedstate import DocumentNotFound, SharedStore, StoreUnavailable, VersionConflict

DOCUMENTS = ("d0", "d1", "d2")
WRITES = ("put", "merge", "update", "delete")


@dataclass
class Op:
    process: int
    kind: str  # get | put | merge | update | delete
    doc: str
    token: str | None  # the value written, or read (None: absent)
    start: float
    end: float
    outcome: str  # ok | conflict | error
    version: int | None = None  # written (put/merge/update) or read
    existed: bool | None = None  # delete: whether it deleted something


def run_client(
    url: str, process: int, seconds: float, seed: int, timeout: float = 2.0
) -> list[dict[str, Any]]:
    """One process's random operations for ``seconds``; returns the records."""
    rng = random.Random(seed)
    store = SharedStore.from_url(url, "history", f"p{process}", timeout=timeout, stale_reads=False)
    known: dict[str, int] = {}
    records: list[Op] = []
    deadline = time.monotonic() + seconds
    sequence = 0
    while time.monotonic() < deadline:
        sequence += 1
        doc = rng.choice(DOCUMENTS)
        kind = rng.choice(("get", "get", "put", "merge", "update", "delete"))
        token = f"{process}:{sequence}"
        op = Op(
            process,
            kind,
            doc,
            token if kind in ("put", "merge", "update") else None,
            time.monotonic(),
            0.0,
            "ok",
        )
        try:
            if kind == "get":
                try:
                    document = store.get(doc)
                except DocumentNotFound:
                    op.token, op.version = None, None
                    known[doc] = 0
                else:
                    op.token, op.version = document.data.get("w"), document.version
                    known[doc] = document.version
            elif kind == "put":
                op.version = store.put(doc, {"w": token}, expected_version=known.get(doc, 0))
            elif kind == "merge":
                op.version = store.merge(doc, {"w": token})
            elif kind == "update":
                op.version = store.update(doc, lambda data, t=token: {**data, "w": t}, retries=3).version
            else:
                op.existed = store.delete(doc)
        except VersionConflict:
            op.outcome = "conflict"
        except StoreUnavailable:
            op.outcome = "error"
        op.end = time.monotonic()
        records.append(op)
    store.close()
    return [asdict(record) for record in records]


def check(records: list[dict[str, Any]], lossy: bool = False, trip: float = 0.0) -> list[str]:
    """Every anomaly found ([] when the history is consistent).

    ``trip``: seconds a read may lag a write finished before it began: the client cache's
    invalidation one-way trip (DESIGN: "give or take the invalidation's one-way trip"); 0 is
    strict linearizability.

    ``lossy``: the faults made Redis lose keys, so acknowledged writes may vanish (that is the
    fault); everything else must still hold: versions unique and increasing in real time across
    the losses (no compare-and-set ever succeeds against a version from before one), reads
    matching the version their write got, never seeing a refused write, never going back.
    """
    ops = [Op(**record) for record in records]
    anomalies: list[str] = []
    for doc in sorted({op.doc for op in ops}):
        anomalies += _check_document(doc, [op for op in ops if op.doc == doc], lossy, trip)
    return anomalies


def _effective_end(op: Op) -> float:
    return op.end if op.outcome == "ok" else math.inf  # a maybe-applied write may land any time


class _Finished:
    """Answers "did some acknowledged write start after t1 and end before t2?" in O(log n)."""

    def __init__(self, ops: list[Op]) -> None:
        done = sorted((op for op in ops if op.outcome == "ok"), key=lambda op: op.start)
        self.starts = [op.start for op in done]
        self.min_end_after = [math.inf] * (len(done) + 1)
        for i in range(len(done) - 1, -1, -1):
            self.min_end_after[i] = min(done[i].end, self.min_end_after[i + 1])

    def between(self, after: float, before: float) -> bool:
        return self.first_end(after) < before

    def first_end(self, after: float) -> float:
        """The earliest end of an acknowledged write that started after ``after``."""
        return self.min_end_after[bisect.bisect_right(self.starts, after)]


def _check_document(doc: str, ops: list[Op], lossy: bool = False, trip: float = 0.0) -> list[str]:
    anomalies: list[str] = []
    writes = [op for op in ops if op.kind in WRITES]
    ok_versioned = sorted(
        (op for op in writes if op.outcome == "ok" and op.version is not None), key=lambda op: op.end
    )
    if len({op.version for op in ok_versioned}) != len(ok_versioned):
        anomalies.append(f"{doc}: two successful writes got the same version")
    # real-time order: every write's version exceeds that of every write finished before it began
    by_start = sorted(ok_versioned, key=lambda op: op.start)
    highest, i = 0, 0
    for write in by_start:
        while i < len(ok_versioned) and ok_versioned[i].end < write.start:
            highest = max(highest, ok_versioned[i].version or 0)
            i += 1
        if (write.version or 0) <= highest:
            anomalies.append(
                f"{doc}: write {write.token} got v{write.version} after a finished write had v{highest}"
            )
    by_token = {op.token: op for op in writes if op.token is not None}
    # writes that changed the document (a delete that found nothing changed nothing)
    effective = [
        op for op in writes if op.outcome != "conflict" and not (op.kind == "delete" and op.existed is False)
    ]
    finished = _Finished(effective)
    deletes = [op for op in effective if op.kind == "delete"]
    reads = [op for op in ops if op.kind == "get" and op.outcome == "ok"]
    for read in reads:
        if read.token is None and lossy:
            continue  # absent: deleted, or lost
        if read.token is None:
            # the latest delete begun before the read (or the initial absence) must still stand
            begun = [op for op in deletes if op.start < read.end]
            latest_end = max((_effective_end(op) for op in begun), default=-math.inf)
        else:
            source = by_token.get(read.token)
            if source is None:
                anomalies.append(f"{doc}: read a value no operation wrote ({read.token})")
                continue
            if source.outcome == "conflict":
                anomalies.append(f"{doc}: read {read.token}, a write that was refused with a conflict")
                continue
            if source.start >= read.end:
                anomalies.append(f"{doc}: read {read.token} before its write began")
                continue
            if source.outcome == "ok" and source.version is not None and source.version != read.version:
                anomalies.append(
                    f"{doc}: read {read.token} at v{read.version}, but it was written as v{source.version}"
                )
            latest_end = _effective_end(source)
        if not lossy and finished.between(latest_end, read.start - trip):
            lag = (read.start - finished.first_end(latest_end)) * 1000
            anomalies.append(
                f"{doc}: read {read.token or 'absent'} at {read.start:.3f}, but a later write had "
                f"finished {lag:.3f} ms before"
            )
    # reads never go back: each read's version is at least that of every read finished before it began
    versioned = [r for r in reads if r.version is not None]
    by_end = sorted(versioned, key=lambda r: r.end)
    highest, i = 0, 0
    for read in sorted(versioned, key=lambda r: r.start):
        while i < len(by_end) and by_end[i].end < read.start - trip:
            highest = max(highest, by_end[i].version or 0)
            i += 1
        if (read.version or 0) < highest:
            anomalies.append(f"{doc}: read v{read.version} after an earlier read saw v{highest}")
    return anomalies
