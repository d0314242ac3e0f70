"""Which snapshots retention keeps (pure)."""

from __future__ import annotations

from sharedstate.durability.retention import select_kept

HOUR = 3600.0
DAY = 24 * HOUR
NOW = 1_800_000_000.0 - (1_800_000_000.0 % (7 * DAY))  # a week boundary, for readable buckets


def keep(times: list[float], **wanted: int) -> list[float]:
    return select_kept(times, lambda t: t, wanted)


def test_last_n() -> None:
    times = [NOW - i * 60 for i in range(20)]
    assert keep(times, last=5) == times[:5]


def test_hourly_keeps_the_newest_of_each_recent_hour() -> None:
    times = [NOW - i * 600 for i in range(36)]  # every 10 minutes for 6 hours
    kept = keep(times, last=1, hourly=3)
    hours = {int(t // HOUR) for t in kept}
    assert len(kept) == 3 and len(hours) == 3
    assert kept[0] == times[0]
    for t in kept:  # each kept one is the newest of its hour
        assert t == max(x for x in times if int(x // HOUR) == int(t // HOUR))


def test_daily_and_weekly() -> None:
    times = [NOW - i * 6 * HOUR for i in range(4 * 30)]  # 30 days, 4 a day
    kept = keep(times, last=2, daily=7, weekly=4)
    days = {int(t // DAY) for t in kept}
    assert len(days) >= 7
    assert min(kept) < NOW - 14 * DAY  # weekly reaches back further than daily
    assert len(kept) <= 2 + 7 + 4


def test_default_policy_bounds_the_count() -> None:
    times = [NOW - i * 60 for i in range(60 * 24 * 60)]  # a snapshot a minute for 60 days
    kept = keep(times, last=10, hourly=24, daily=7, weekly=4)
    assert len(kept) <= 10 + 24 + 7 + 4
    assert kept[:10] == times[:10]


def test_always_keeps_the_given_item() -> None:
    times = [NOW - i for i in range(10)]
    old_good = NOW - 10 * DAY
    kept = select_kept([*times, old_good], lambda t: t, {"last": 3}, always=old_good)
    assert old_good in kept and len(kept) == 4
