"""What Redis's persistence settings cost, as /v1/health and doctor say it."""

from __future__ import annotations

from sharedstate.persistence import JOURNAL_SILENT_AFTER, assess, journal_live

NOW = 1_800_000_000.0


def test_aof_off_costs_a_snapshot_interval_without_a_live_journal() -> None:
    warnings = assess({"aof_enabled": 0}, "").warnings
    assert len(warnings) == 1 and "since the last snapshot" in warnings[0]


def test_aof_off_costs_about_a_second_while_the_journal_follows_the_feed() -> None:
    warnings = assess({"aof_enabled": 0}, "", journaled=True).warnings
    assert len(warnings) == 1 and "last second" in warnings[0]
    assert "since the last snapshot" not in warnings[0]
    assert assess({"aof_enabled": 1}, "", journaled=True).warnings == []


def test_a_journal_counts_as_live_only_while_a_worker_runs_and_it_reports() -> None:
    fresh = {"updated_at": NOW - 1}
    assert journal_live(fresh, True, NOW)
    assert not journal_live(fresh, False, NOW)  # no worker: nothing journals what comes next
    assert not journal_live(None, True, NOW)  # never ran
    assert not journal_live({"updated_at": NOW - JOURNAL_SILENT_AFTER - 1}, True, NOW)
    assert not journal_live({}, True, NOW)
