"""The paced load generator's arithmetic: when requests fall due and how percentiles are read."""

from bench.paced import due_times, percentile


def test_requests_fall_due_evenly_at_the_rate() -> None:
    offsets = due_times(200, 1.5)
    assert len(offsets) == 300
    assert offsets[0] == 0
    assert offsets[1] == 0.005
    assert offsets[-1] < 1.5


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([], 0.5) == 0.0
