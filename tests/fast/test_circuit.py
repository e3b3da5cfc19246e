"""The outage circuit as a pure state machine: times are plain numbers, nothing sleeps."""

from __future__ import annotations

from batchgen.core.circuit import LEASE_GAPS, Circuit, OutagePolicy

POLICY = OutagePolicy(threshold=3, probe_base=1.0, probe_cap=4.0, patience=100.0)


def test_a_few_failures_among_answers_never_open_it():
    """Failures in a row open it; an answer in between starts the count again."""
    circuit = Circuit(POLICY)
    for t in range(10):
        circuit.failure(t)
        circuit.failure(t + 0.1)
        circuit.success(t + 0.2)
    assert not circuit.is_open
    assert circuit.permit(11.0) == 0.0


def test_open_circuit_probes_one_call_at_growing_gaps_up_to_the_cap():
    """After the threshold: one call per gap, gaps 1, 2, 4, 4 s; other callers wait."""
    circuit = Circuit(POLICY)
    assert [circuit.failure(0.0) for _ in range(3)] == [False, False, True]
    assert circuit.permit(0.0) == 1.0  # the first probe waits probe_base
    grants = []
    t = 0.0
    while t < 12.0:
        if circuit.permit(t) == 0.0:
            grants.append(t)
            assert circuit.permit(t) > 0  # a second caller at the same moment waits
            circuit.failure(t)  # the probe fails
        t = round(t + 0.5, 1)
    assert grants == [1.0, 3.0, 7.0, 11.0]


def test_a_hung_probe_holds_the_turn_until_it_reports_or_its_lease_ends():
    """No second probe joins one that is still out (a hung call), however the gaps grow; its
    answer frees the turn, and a probe that never reports frees it after LEASE_GAPS gaps."""
    circuit = Circuit(POLICY)
    for _ in range(3):
        circuit.failure(0.0)
    assert circuit.permit(1.0) == 0.0  # the probe goes out and hangs
    lease = LEASE_GAPS * POLICY.probe_cap
    assert all(circuit.permit(1.0 + dt) > 0 for dt in (2.0, 4.0, 8.0, lease - 0.5))
    assert circuit.permit(1.0 + lease) == 0.0  # never came back: the next one may go
    circuit.failure(1.0 + lease + 30)  # and it failed
    assert circuit.permit(1.0 + lease + 31) == 0.0  # past its gap: the turn is free at once


def test_first_answer_closes_it_and_records_the_outage():
    """Recovery: an answer closes the circuit; every caller goes again."""
    circuit = Circuit(POLICY)
    for _ in range(3):
        circuit.failure(10.0)
    assert circuit.down_for(15.0) == 5.0
    assert circuit.success(16.0) is True
    assert not circuit.is_open
    assert circuit.outages == [(10.0, 16.0)]
    assert circuit.permit(16.0) == 0.0
    assert circuit.down_for(17.0) == 0.0


def test_failures_during_an_outage_spend_no_attempts_or_time():
    """A streak's attempts and seconds exclude what the outage took."""
    circuit = Circuit(POLICY)
    streak = 5.0  # a job's failure streak began before the outage
    assert circuit.excuse(streak) is False  # the server is up: the failure counts
    for _ in range(3):
        circuit.failure(10.0)
    assert circuit.excuse(streak) is True
    assert circuit.excuse(streak) is True
    circuit.success(40.0)
    # Four failures in the streak, two of them excused; 37 s since it began, 30 of them down.
    assert circuit.charged(4, streak, 42.0) == (2, 7.0)
    assert circuit.charged(1, 41.0, 42.0) == (1, 1.0)  # a new streak owes nothing to the outage


def test_patience_and_scaling():
    """Over patience the circuit says so; scaled() compresses every duration."""
    circuit = Circuit(POLICY)
    for _ in range(3):
        circuit.failure(0.0)
    assert not circuit.over_patience(100.0)
    assert circuit.over_patience(100.5)
    fast = OutagePolicy().scaled(1 / 60)
    assert (fast.probe_base, fast.probe_cap, fast.patience) == (1 / 60, 10 / 60, 30.0)
    assert fast.threshold == OutagePolicy().threshold
