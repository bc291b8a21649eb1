"""The autoscaler simulation against cases worked out by hand, and against properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuserve.planner.simulate import Fleet, Schedule, simulate

MONTH = 30 * 86400.0

#: The three paths of ``simulate``; with one instance all of them apply.
METHODS = ["numpy", "events", "steps"]


def fleet(**fields: float) -> Fleet:
    values = {
        "min_instances": 0,
        "max_instances": 1,
        "max_concurrency": 1,
        "idle_window": 60.0,
        "cold_start": 0.0,
        "work": 2.0,
    }
    values.update(fields)
    return Fleet(**values)  # type: ignore[arg-type]


def assert_same(first: Schedule, second: Schedule) -> None:
    """Check that two paths gave the same schedule; time is in whole microseconds, so exactly."""
    assert first.cold_starts == second.cold_starts
    assert np.array_equal(first.starts, second.starts)
    assert np.array_equal(np.sort(first.instance_begins), np.sort(second.instance_begins))
    assert np.array_equal(np.sort(first.instance_ends), np.sort(second.instance_ends))
    assert first.busy_seconds == second.busy_seconds


def instance_seconds(schedule: Schedule) -> float:
    return float((schedule.instance_ends - schedule.instance_begins).sum())


@pytest.mark.parametrize("method", METHODS)
def test_hourly_request_bills_work_and_window(method: str) -> None:
    times = np.arange(720) * 3600.0
    schedule = simulate(times, MONTH, fleet(work=2.0, idle_window=60.0), method=method)

    assert instance_seconds(schedule) == pytest.approx(720 * (2.0 + 60.0))
    assert schedule.cold_starts == 720
    assert schedule.busy_seconds == pytest.approx(720 * 2.0)
    assert np.array_equal(schedule.starts, times)


@pytest.mark.parametrize("method", METHODS)
def test_hourly_request_bills_cold_start(method: str) -> None:
    times = np.arange(720) * 3600.0
    schedule = simulate(times, MONTH, fleet(work=2.0, idle_window=60.0, cold_start=30.0), method=method)

    assert instance_seconds(schedule) == pytest.approx(720 * (30.0 + 2.0 + 60.0))
    assert schedule.cold_starts == 720
    assert np.allclose(schedule.starts - times, 30.0)


@pytest.mark.parametrize("method", METHODS)
def test_steady_load_keeps_one_instance(method: str) -> None:
    times = np.arange(0, 86400.0, 10.0)
    schedule = simulate(times, 86400.0, fleet(work=1.0, idle_window=60.0, cold_start=5.0), method=method)

    assert schedule.cold_starts == 1
    assert len(schedule.instance_begins) == 1
    assert schedule.instance_begins[0] == 0.0
    # The first request waits 5 s; the next arrives at 10 s to a free instance, and so on.
    assert schedule.instance_ends[0] == pytest.approx(times[-1] + 1.0 + 60.0)
    assert np.count_nonzero(schedule.starts > times) == 1


@pytest.mark.parametrize("method", METHODS)
def test_min_instance_bills_whole_month(method: str) -> None:
    times = np.array([100.0, 5000.0, 2_000_000.0])
    schedule = simulate(times, MONTH, fleet(min_instances=1, cold_start=30.0), method=method)

    assert instance_seconds(schedule) == MONTH
    assert schedule.cold_starts == 0
    assert np.array_equal(schedule.starts, times)


def test_min_instance_without_traffic() -> None:
    schedule = simulate(np.array([]), MONTH, fleet(min_instances=2, max_instances=3))

    assert instance_seconds(schedule) == 2 * MONTH
    assert schedule.cold_starts == 0


def test_no_traffic_costs_nothing() -> None:
    schedule = simulate(np.array([]), MONTH, fleet())

    assert instance_seconds(schedule) == 0.0
    assert schedule.cold_starts == 0


def test_concurrency_limit_starts_instances() -> None:
    times = np.zeros(3)
    schedule = simulate(times, 3600.0, fleet(max_instances=3, max_concurrency=1, cold_start=10.0, work=1.0))

    assert schedule.cold_starts == 3
    assert np.allclose(schedule.starts, 10.0)
    assert instance_seconds(schedule) == pytest.approx(3 * (10.0 + 1.0 + 60.0))


def test_concurrent_slots_share_instance() -> None:
    times = np.zeros(3)
    schedule = simulate(times, 3600.0, fleet(max_instances=3, max_concurrency=3, cold_start=10.0, work=1.0))

    assert schedule.cold_starts == 1
    assert np.allclose(schedule.starts, 10.0)


def test_max_instances_makes_requests_queue() -> None:
    times = np.zeros(3)
    schedule = simulate(times, 3600.0, fleet(max_instances=2, max_concurrency=1, cold_start=10.0, work=1.0))

    assert schedule.cold_starts == 2
    assert sorted(schedule.starts.tolist()) == [10.0, 10.0, 11.0]


def test_warm_slot_beats_new_instance() -> None:
    # The second request finds the only slot busy until 1.5 s; a new instance would be ready at 30.5 s.
    times = np.array([0.0, 0.5])
    schedule = simulate(times, 3600.0, fleet(min_instances=1, max_instances=2, cold_start=30.0, work=1.5))

    assert schedule.starts.tolist() == [0.0, 1.5]
    assert schedule.cold_starts == 1  # started anyway, as autoscalers do when a request queues
    assert len(schedule.instance_begins) == 2


arrival_lists = st.lists(st.floats(min_value=0, max_value=20_000, allow_nan=False), max_size=60).map(sorted)
fleets = st.builds(
    Fleet,
    min_instances=st.integers(0, 1),
    max_instances=st.integers(1, 3),
    max_concurrency=st.integers(1, 3),
    idle_window=st.floats(1, 2000),
    cold_start=st.floats(0, 300),
    work=st.floats(0.01, 120),
)


@settings(max_examples=300, deadline=None)
@given(
    times=arrival_lists,
    concurrency=st.integers(1, 4),
    window=st.floats(1, 2000),
    cold=st.floats(0, 300),
    work=st.floats(0.01, 120),
    pinned=st.integers(0, 1),
)
def test_numpy_path_matches_event_loop(
    times: list[float], concurrency: int, window: float, cold: float, work: float, pinned: int
) -> None:
    arrivals = np.array(times)
    settings_ = fleet(min_instances=pinned, max_concurrency=concurrency, idle_window=window, cold_start=cold, work=work)

    fast = simulate(arrivals, 20_000.0, settings_, method="numpy")
    slow = simulate(arrivals, 20_000.0, settings_, method="steps")

    assert_same(fast, slow)


single_warm_fleets = st.builds(
    Fleet,
    min_instances=st.integers(0, 1),
    max_instances=st.just(1),
    max_concurrency=st.integers(1, 3),
    idle_window=st.floats(1, 2000),
    cold_start=st.just(0.0),
    work=st.floats(0.01, 120),
)


# The bill grows with traffic for one instance without a start time. With a start time an added
# request can lower it (next test). With several instances it can too, because it can move later
# requests to another instance, which then stops a little earlier.
@settings(max_examples=500, deadline=None)
@given(times=arrival_lists, extra=arrival_lists, settings_=single_warm_fleets)
def test_more_traffic_never_costs_less(times: list[float], extra: list[float], settings_: Fleet) -> None:
    fewer = simulate(np.array(times), 20_000.0, settings_)
    more = simulate(np.array(sorted(times + extra)), 20_000.0, settings_)

    assert instance_seconds(more) >= instance_seconds(fewer) - 1e-6
    assert more.busy_seconds >= fewer.busy_seconds - 1e-6


def test_bridging_request_saves_cold_start() -> None:
    # Without the request at 8 s the instance stops at 8 s, and the request at 9 s pays a second
    # 5 s cold start: 0-8 s and 9-17 s, 16 s. With it the instance stays up from 0 to 12 s.
    settings_ = fleet(work=1.0, idle_window=2.0, cold_start=5.0)

    fewer = simulate(np.array([0.0, 9.0]), 100.0, settings_)
    more = simulate(np.array([0.0, 8.0, 9.0]), 100.0, settings_)

    assert instance_seconds(fewer) == pytest.approx(16.0)
    assert fewer.cold_starts == 2
    assert instance_seconds(more) == pytest.approx(12.0)
    assert more.cold_starts == 1


@settings(max_examples=300, deadline=None)
@given(times=arrival_lists, settings_=fleets, longer=st.floats(0, 3000))
def test_longer_window_never_adds_cold_starts(times: list[float], settings_: Fleet, longer: float) -> None:
    short = simulate(np.array(times), 20_000.0, settings_)
    long = simulate(
        np.array(times),
        20_000.0,
        Fleet(**{**settings_.__dict__, "idle_window": settings_.idle_window + longer}),
    )

    assert long.cold_starts <= short.cold_starts


# Gaps drawn from a few scales, so that bursts, steady load and idle periods all occur.
gap_lists = st.lists(
    st.one_of(st.floats(0, 0.5), st.floats(0, 5), st.floats(0, 200), st.just(0.0)), min_size=1, max_size=400
)


@settings(max_examples=400, deadline=None)
@given(
    gaps=gap_lists,
    min_instances=st.integers(0, 2),
    extra=st.integers(0, 3),
    concurrency=st.integers(1, 3),
    window=st.floats(0.5, 300),
    cold=st.floats(0, 60),
    work=st.floats(0.01, 10),
)
def test_stretches_match_single_steps(
    gaps: list[float], min_instances: int, extra: int, concurrency: int, window: float, cold: float, work: float
) -> None:
    times = np.cumsum(gaps)
    settings_ = Fleet(max(min_instances, 0), max(min_instances, 1) + extra, concurrency, window, cold, work)

    steps = simulate(times, 30_000.0, settings_, method="steps")

    assert_same(simulate(times, 30_000.0, settings_, method="events"), steps)


def test_stretches_match_on_month() -> None:
    from gpuserve.planner.traffic import generate

    times = generate(3000, "business", 30, seed=3).times
    settings_ = fleet(max_instances=3, max_concurrency=2, idle_window=60.0, cold_start=20.0, work=40.0)

    steps = simulate(times, MONTH, settings_, method="steps")

    assert_same(simulate(times, MONTH, settings_, method="events"), steps)
