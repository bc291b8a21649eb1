"""Terminal tables for a plan and for the price table."""

from __future__ import annotations

from collections.abc import Sequence

from .api import PlanReport, ProviderResult
from .prices import PRICE_MISSING, PriceTable


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Align ``rows`` under ``header``: text columns to the left, numbers to the right."""
    widths = [max(len(str(row[column])) for row in [header, *rows]) for column in range(len(header))]
    numeric = [all(_is_number(row[column]) for row in rows) and bool(rows) for column in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [
            cell.rjust(width) if is_number else cell.ljust(width)
            for cell, width, is_number in zip(row, widths, numeric, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _is_number(cell: str) -> bool:
    return cell.lstrip("$").replace(",", "").replace(".", "").replace("%", "").replace(" s", "").isdigit()


def _row(result: ProviderResult) -> list[str]:
    if result.status != "ok":
        return [result.label, result.status, *["-"] * 11]
    return [
        result.label,
        str(result.offer),
        f"${result.price_per_hour:,.3f}",
        f"{result.cold_start_seconds:,.0f} s",
        f"{result.idle_window_seconds:,.0f} s",
        f"{result.billed_gpu_hours:,.1f}",
        f"${result.monthly_cost:,.2f}",
        f"${result.idle_cost:,.2f}",
        f"{result.cold_starts:,}",
        f"{result.waited_share:.1%}",
        f"{result.wait_p50:,.1f} s",
        f"{result.wait_p95:,.1f} s",
        f"{result.energy_kwh:,.1f} ({result.emissions_kg:,.1f})",
    ]


def format_plan(report: PlanReport) -> str:
    """Return the plan as a table per provider, an always-on reference line and the recommendation."""
    scaling = (
        f"min_instances={report.min_instances}, max_instances={report.max_instances}, "
        f"max_concurrency={report.max_concurrency} ({report.slots_note}), idle_timeout={report.idle_timeout:g} s"
    )
    header = [
        "provider",
        "offer",
        "$/hour",
        "cold start",
        "idle window",
        "GPU hours",
        "$/month",
        "of it idle",
        "cold starts",
        "waited",
        "p50 wait",
        "p95 wait",
        "kWh (kg CO2e)",
    ]
    lines = [
        f"Plan for {report.endpoint} on {report.gpu}: {scaling}.",
        f"Traffic: {report.traffic}; {_count(report.simulated_requests, 'request')} in "
        f"{_count(report.simulated_days, 'day')}.",
        f"Work {report.work_seconds:.3g} s per request, setup {report.setup_seconds:.3g} s ({report.timing_source}).",
        _describe_load(report),
        f"Per 30-day month; prices read on {report.prices_read_on} ({report.currency}); "
        f"grid intensity {report.grid_intensity:g} g CO2e/kWh.",
        "",
        _table(header, [_row(result) for result in report.results]),
        "",
    ]
    priced = [result for result in report.results if result.status == "ok"]
    if priced:
        cheapest = min(priced, key=lambda result: result.always_on_cost)
        lines.append(
            f"Always on, one instance: ${cheapest.always_on_cost:,.2f}/month on {cheapest.label} ({cheapest.offer})."
        )
    for result in report.results:
        if result.status == PRICE_MISSING:
            lines.append(
                f"{result.label} offers {report.gpu}, but the price table has no price for it; "
                "add one with --price-file to include it."
            )
    lines.append(f"Recommendation: {report.recommendation}")
    return "\n".join(lines)


def _count(number: float, noun: str) -> str:
    """Return ``number`` with ``noun`` in the singular or plural, for example "1 day" or "1,500 requests"."""
    text = f"{int(number):,}" if float(number).is_integer() else f"{number:,.3g}"
    return f"{text} {noun}" if number == 1 else f"{text} {noun}s"


def _describe_load(report: PlanReport) -> str:
    """Return how much of the instances' serving time the traffic needs, and a warning when it is too much."""
    slots = report.max_instances * report.slots
    line = (
        f"Load: {report.load:.1%} of what {_count(slots, 'slot')} can serve on average, "
        f"{report.peak_hour_load:.1%} in the busiest hour."
    )
    if report.saturated:
        return (
            f"{line} SATURATED: the instances cannot keep up, so the queue grows without bound and "
            "the waits below grow with the length of the simulated period."
        )
    if report.peak_hour_load >= 1:
        return f"{line} Requests queue in the busiest hours, and the waits below include that queue."
    return line


def format_prices(table: PriceTable) -> str:
    """Return the price table with each entry's source, and the power figures."""
    header = ["provider", "gpu", "offer", "region", "$/hour", "cold start", "source (read on)"]
    rows = []
    for offer in sorted(table.offers, key=lambda item: (item.provider, item.gpu)):
        provider = table.providers[offer.provider]
        price = offer.price_per_second * 3600
        unit = "/GPU" if offer.unit == "gpu" else ""
        source = f"{offer.source} ({offer.read_on})" + (f"; NOTE: {offer.note}" if offer.note else "")
        cold_start = provider.cold_start_seconds if offer.cold_start_seconds is None else offer.cold_start_seconds
        rows.append(
            [
                provider.label,
                offer.gpu,
                offer.offer,
                offer.region or "-",
                f"${price:,.4f}{unit}",
                f"{cold_start:g} s",
                source,
            ]
        )

    power_rows = [
        [entry.gpu, f"{entry.active_watts:g}", f"{entry.idle_watts:g}", f"{entry.source} ({entry.read_on})"]
        for entry in sorted(table.power.values(), key=lambda item: item.gpu)
    ]

    lines = [f"Price table read on {table.read_on}, in {table.currency}. Nothing is fetched at run time.", ""]
    lines.append(_table(header, rows))
    lines.append("")
    for provider in table.providers.values():
        lines.append(f"{provider.label} {provider.billing}. {provider.note}")
    lines.append("")
    lines.append(_table(["gpu", "active W", "idle W", "source (read on)"], power_rows))
    return "\n".join(lines)
