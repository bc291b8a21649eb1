"""``plan``: simulate one endpoint and one traffic pattern on every provider in the price table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..endpoint import Endpoint
from ..errors import ConfigError
from ..settings import Settings
from .prices import MONTH_SECONDS, Choice, PriceTable, load_prices
from .simulate import Fleet, Schedule, simulate
from .slots import instance_slots
from .traffic import Arrivals, Traffic, arrivals

#: Grams of CO2-equivalent per kWh used when the caller gives none: a round world-average figure.
DEFAULT_GRID_INTENSITY = 400.0


@dataclass(frozen=True)
class ProviderResult:
    """The simulated month on one provider. Money in USD, times in seconds, energy in kWh."""

    provider: str
    label: str
    #: "ok", "not offered" or ``PRICE_MISSING`` ("offered, no price in table").
    status: str
    offer: str | None = None
    region: str | None = None
    gpus: int = 0
    price_per_hour: float = 0.0
    cold_start_seconds: float = 0.0
    idle_window_seconds: float = 0.0
    billed_gpu_hours: float = 0.0
    monthly_cost: float = 0.0
    active_cost: float = 0.0
    idle_cost: float = 0.0
    #: One instance running the whole month: what the same GPU costs without scaling to zero.
    always_on_cost: float = 0.0
    cold_starts: int = 0
    #: Share of requests that waited for a cold start or a free slot, 0 to 1.
    waited_share: float = 0.0
    wait_p50: float = 0.0
    wait_p95: float = 0.0
    energy_kwh: float = 0.0
    active_kwh: float = 0.0
    idle_kwh: float = 0.0
    emissions_kg: float = 0.0
    sources: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PlanReport:
    """The plan for one endpoint: its inputs and one result per provider, all scaled to a 30-day month."""

    endpoint: str
    gpu: str
    min_instances: int
    max_instances: int
    max_concurrency: int
    #: Requests one instance serves at once in the simulation, from ``max_concurrency`` and ``predict``.
    slots: int
    #: Reason for the value of ``slots``, for example "1 at a time: sync predict, not thread_safe".
    slots_note: str
    idle_timeout: float
    traffic: str
    simulated_requests: int
    simulated_days: float
    work_seconds: float
    #: "given", or where and how the work and setup times were measured.
    timing_source: str
    setup_seconds: float
    #: Work seconds arriving per second of the period, over the seconds all instances can serve: 1.0 is full.
    load: float
    #: The same share in the busiest clock hour of the period.
    peak_hour_load: float
    #: True when ``load`` is 1 or more: the instances cannot keep up, and the queue grows without bound.
    saturated: bool
    grid_intensity: float
    prices_read_on: str
    currency: str
    results: list[ProviderResult]
    recommendation: str

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain data for ``json.dumps``."""
        return asdict(self)


def plan(
    endpoint: type[Endpoint],
    traffic: Traffic | float = 1000.0,
    *,
    work_seconds: float | None = None,
    setup_seconds: float = 0.0,
    timing_source: str = "given",
    providers: Sequence[str] | None = None,
    prices: PriceTable | str | Path | None = None,
    grid_intensity: float = DEFAULT_GRID_INTENSITY,
    max_p95_wait: float | None = None,
    **overrides: Any,
) -> PlanReport:
    """Estimate a month of ``traffic`` for ``endpoint`` on each provider: cost, cold starts, waits and energy.

    ``traffic`` is a ``Traffic`` or a number of requests per day with a flat shape. ``work_seconds``
    is the GPU time of one request and ``setup_seconds`` the time ``setup`` takes; both can come
    from ``measure_endpoint``. ``overrides`` replace settings as in ``deploy``, for example
    ``idle_timeout=300``. ``max_p95_wait`` keeps the recommendation to providers whose p95 added
    wait is at most that many seconds.

    Example::

        report = gpuserve.plan(Embed, Traffic(requests_per_day=5000, shape="business"), work_seconds=0.2)
        print(report.recommendation)
    """
    settings = endpoint.deployment_settings(**overrides)
    if settings.gpu is None:
        raise ConfigError(
            f"{endpoint.__name__} has no gpu setting, and the planner prices GPU instances; "
            "set one on the class or pass it, for example gpu='L4'."
        )
    if work_seconds is None:
        raise ConfigError("plan() needs work_seconds, the GPU seconds per request; give it or measure it.")
    _check_positive(work_seconds, "work_seconds")
    _check_positive(setup_seconds, "setup_seconds", allow_zero=True)
    if (
        isinstance(grid_intensity, bool)
        or not isinstance(grid_intensity, (int, float))
        or not 0 <= grid_intensity < 1e6
    ):
        raise ConfigError(f"Invalid grid_intensity {grid_intensity!r}; use grams of CO2e per kWh, for example 400.")
    table = prices if isinstance(prices, PriceTable) else load_prices(prices)
    chosen = _check_providers(providers, table)
    if not isinstance(traffic, Traffic):
        traffic = Traffic(requests_per_day=traffic)
    requests = arrivals(traffic)
    slots = instance_slots(endpoint, settings.scaling.max_concurrency)
    capacity = settings.scaling.max_instances * slots.total
    load, peak_hour_load = _load(requests, work_seconds, capacity)

    results = [
        _simulate_provider(table, name, settings, slots.total, requests, work_seconds, setup_seconds, grid_intensity)
        for name in chosen
    ]
    return PlanReport(
        endpoint=endpoint.__name__,
        gpu=str(settings.gpu),
        min_instances=settings.scaling.min_instances,
        max_instances=settings.scaling.max_instances,
        max_concurrency=settings.scaling.max_concurrency,
        slots=slots.total,
        slots_note=slots.describe(),
        idle_timeout=settings.scaling.idle_timeout,
        traffic=traffic.describe(),
        simulated_requests=int(requests.times.size),
        simulated_days=requests.period_seconds / 86400,
        work_seconds=work_seconds,
        timing_source=timing_source,
        setup_seconds=setup_seconds,
        load=load,
        peak_hour_load=peak_hour_load,
        saturated=load >= 1,
        grid_intensity=grid_intensity,
        prices_read_on=table.read_on,
        currency=table.currency,
        results=results,
        recommendation=recommend(results, max_p95_wait, load=load, capacity=capacity, slots=slots.total),
    )


def _load(requests: Arrivals, work: float, capacity: int) -> tuple[float, float]:
    """Return the work arriving per second over the period and in its busiest hour, per slot of ``capacity``."""
    if requests.times.size == 0:
        return 0.0, 0.0
    load = requests.times.size * work / requests.period_seconds / capacity
    per_hour = np.bincount((requests.times // 3600).astype(np.int64))
    peak_hour_load = float(per_hour.max()) * work / 3600 / capacity
    return load, peak_hour_load


def _simulate_provider(
    table: PriceTable,
    name: str,
    settings: Settings,
    slots: int,
    requests: Arrivals,
    work: float,
    setup: float,
    grid_intensity: float,
) -> ProviderResult:
    assert settings.gpu is not None
    choice = table.choose(name, settings.gpu)
    provider = choice.provider
    if choice.offer is None:
        return ProviderResult(name, provider.label, choice.reason)
    scaling = settings.scaling
    fleet = Fleet(
        min_instances=scaling.min_instances,
        max_instances=scaling.max_instances,
        max_concurrency=slots,
        idle_window=provider.idle_window(scaling.idle_timeout),
        cold_start=choice.cold_start_seconds + setup,
        work=work,
    )
    schedule = simulate(requests.times, requests.period_seconds, fleet)
    return _summarize(table, choice, fleet, schedule, requests, grid_intensity)


def _summarize(
    table: PriceTable, choice: Choice, fleet: Fleet, schedule: Schedule, requests: Arrivals, grid_intensity: float
) -> ProviderResult:
    assert choice.offer is not None
    per_month = MONTH_SECONDS / requests.period_seconds
    increment = choice.provider.billing_increment_seconds
    lives = schedule.instance_ends - schedule.instance_begins
    billed = float((np.ceil(lives / increment - 1e-9) * increment).sum())
    cost = billed * choice.price_per_second * per_month
    active_cost = min(cost, schedule.busy_seconds * choice.price_per_second * per_month)

    power = table.power.get(choice.offer.gpu)
    active_kwh = idle_kwh = 0.0
    sources = [choice.offer.source]
    if power is not None:
        idle_seconds = float(lives.sum()) - schedule.busy_seconds
        active_kwh = power.active_watts * choice.gpus * schedule.busy_seconds / 3.6e6 * per_month
        idle_kwh = power.idle_watts * choice.gpus * idle_seconds / 3.6e6 * per_month
        sources.append(power.source)

    waited_share, p50, p95 = _wait_statistics(schedule.waits)
    return ProviderResult(
        provider=choice.provider.name,
        label=choice.provider.label,
        status="ok",
        offer=choice.offer.offer,
        region=choice.offer.region,
        gpus=choice.gpus,
        price_per_hour=choice.price_per_second * 3600,
        cold_start_seconds=fleet.cold_start,
        idle_window_seconds=fleet.idle_window,
        billed_gpu_hours=billed * choice.gpus / 3600 * per_month,
        monthly_cost=cost,
        active_cost=active_cost,
        idle_cost=cost - active_cost,
        always_on_cost=choice.price_per_second * MONTH_SECONDS,
        cold_starts=round(schedule.cold_starts * per_month),
        waited_share=waited_share,
        wait_p50=p50,
        wait_p95=p95,
        energy_kwh=active_kwh + idle_kwh,
        active_kwh=active_kwh,
        idle_kwh=idle_kwh,
        emissions_kg=(active_kwh + idle_kwh) * grid_intensity / 1000,
        sources=sources,
    )


def _wait_statistics(waits: np.ndarray) -> tuple[float, float, float]:
    """Return the share of positive waits and their 50th and 95th percentiles as ``np.percentile`` has them.

    Most requests usually find a warm slot, so only the positive waits are partitioned.
    """
    count = waits.size
    if count == 0:
        return 0.0, 0.0, 0.0
    positive = waits[waits > 1e-9]
    zeros = count - positive.size
    percentiles = []
    for fraction in (0.50, 0.95):
        # np.percentile's default: linear interpolation between the ranks around fraction * (count - 1).
        position = fraction * (count - 1)
        low = math.floor(position)
        ranks = (low, min(low + 1, count - 1))
        needed = sorted({rank - zeros for rank in ranks if rank >= zeros})
        found = dict(zip(needed, np.partition(positive, needed)[needed].tolist(), strict=True)) if needed else {}
        low_value, high_value = (found.get(rank - zeros, 0.0) for rank in ranks)
        percentiles.append(low_value + (high_value - low_value) * (position - low))
    return positive.size / count, percentiles[0], percentiles[1]


def recommend(
    results: Sequence[ProviderResult],
    max_p95_wait: float | None = None,
    *,
    load: float = 0.0,
    capacity: int = 1,
    slots: int = 1,
) -> str:
    """Return one sentence naming the cheapest provider, or an always-on instance when that costs less.

    ``load`` is the work arriving per second over what ``capacity`` slots serve. At 1 or more no
    provider can keep up, and the sentence names how many instances of ``slots`` slots would.
    """
    priced = [result for result in results if result.status == "ok"]
    if not priced:
        return "No provider in the price table offers this GPU with a price; add an offer with --price-file."
    if load >= 1:
        needed = math.floor(load * capacity / slots) + 1
        slot_words = "1 slot" if capacity == 1 else f"{capacity} slots"
        return (
            f"No provider can serve this traffic, because it brings {load:.0%} of the work that {slot_words} "
            f"can serve and the queue grows without bound. Let predict serve more requests at once "
            f"(thread_safe = True or an async predict, with max_concurrency) or raise max_instances "
            f"to at least {needed}."
        )
    eligible = [r for r in priced if max_p95_wait is None or r.wait_p95 <= max_p95_wait]
    if not eligible:
        return (
            f"No provider keeps the p95 added wait under {max_p95_wait:g} s with these settings; "
            "raise min_instances or max_instances, or allow a longer wait."
        )
    best = min(eligible, key=lambda result: (result.monthly_cost, result.wait_p95))
    cheapest_always_on = min(priced, key=lambda result: result.always_on_cost)
    if cheapest_always_on.always_on_cost < best.monthly_cost:
        return (
            f"Keep one instance always on (min_instances=1) on {cheapest_always_on.label}, "
            f"about ${cheapest_always_on.always_on_cost:,.0f}/month, less than scaling to zero at this traffic "
            f"(best: {best.label}, ${best.monthly_cost:,.0f}/month)."
        )
    return (
        f"{best.label} ({best.offer}), about ${best.monthly_cost:,.0f}/month with "
        f"{best.cold_starts:,} cold starts. {best.waited_share:.1%} of requests wait, and the p95 added wait is "
        f"{best.wait_p95:.1f} s. One instance always on there would cost ${best.always_on_cost:,.0f}/month."
    )


def _check_providers(providers: Sequence[str] | None, table: PriceTable) -> list[str]:
    if providers is None:
        return list(table.providers)
    unknown = [name for name in providers if name not in table.providers]
    if unknown:
        raise ConfigError(f"Unknown provider {unknown[0]!r}; valid choices are {', '.join(table.providers)}.")
    return list(providers)


def _check_positive(value: object, name: str, allow_zero: bool = False) -> None:
    valid = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not valid or value < 0 or (value == 0 and not allow_zero):  # type: ignore[operator]
        lowest = "zero or more" if allow_zero else "more than zero"
        raise ConfigError(f"Invalid {name} {value!r}; use a number of seconds {lowest}, for example 0.25.")
