"""The pure window checks over recorded arrival times (what the soak and outage tests assert)."""

from __future__ import annotations

from batchgen.emulator.requestlog import RequestLog, count_between, max_in_window, quiet_from


def test_max_in_window_counts_the_limiters_windows():
    """Two requests less than a window apart share a window; exactly a window apart do not."""
    assert max_in_window([], 1.0) == 0
    assert max_in_window([0.0, 0.5, 0.99], 1.0) == 3
    assert max_in_window([0.0, 1.0, 2.0], 1.0) == 1
    assert max_in_window([0.0, 0.1, 0.2, 1.05, 1.1, 1.15, 1.19], 1.0) == 5


def test_count_between_is_half_open():
    """[start, end): a request at `end` belongs to the next interval."""
    times = [0.0, 1.0, 1.0, 2.0]
    assert count_between(times, 0.0, 1.0) == 1
    assert count_between(times, 1.0, 2.0) == 2
    assert count_between(times, 5.0, 6.0) == 0


def test_quiet_from_finds_where_the_rate_stays_low():
    """A burst then a trickle: quiet begins at the burst's last request, not before."""
    burst = [10.0 + i * 0.01 for i in range(20)]
    trickle = [12.0, 14.0, 16.0, 18.0]
    times = sorted(burst + trickle)
    assert quiet_from(times, 10.0, 20.0, window=1.0, limit=2) == burst[-1]
    assert quiet_from(trickle, 10.0, 20.0, window=1.0, limit=2) == 10.0  # quiet all along
    # A burst after `end` does not count.
    assert quiet_from([*trickle, 20.0, 20.0, 20.0], 10.0, 20.0, window=1.0, limit=2) == 10.0


def test_request_log_filters_routes_and_finds_first_status():
    """times() by route and start; first() the earliest arrival answered with a status."""
    log = RequestLog()
    for at, route, status in [(0.0, "submit", 200), (1.0, "status", 429), (2.0, "submit", 429)]:
        log.arrive(at, route).status = status
    log.arrive(3.0, "media")
    assert log.times(("submit",)) == [0.0, 2.0]
    assert log.times(since=1.0) == [1.0, 2.0, 3.0]
    assert log.first(429) == 1.0
    assert log.first(503) is None
    assert log.as_json()[-1] == [3.0, "media", 0]
