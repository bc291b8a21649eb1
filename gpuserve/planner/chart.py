"""A PNG chart of monthly cost against requests per day, one line per provider. Needs matplotlib."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..endpoint import Endpoint
from ..errors import BackendNotInstalledError
from .api import plan
from .traffic import Traffic

#: Requests per day at which the chart simulates each provider, 10 to 100,000.
DEFAULT_RATES = (10, 30, 100, 300, 1_000, 3_000, 10_000, 30_000, 100_000)


def cost_curve(
    endpoint: type[Endpoint], traffic: Traffic, rates: Sequence[float] = DEFAULT_RATES, **plan_options: Any
) -> dict[str, list[tuple[float, float]]]:
    """Return, per provider label, (requests per day, monthly cost) for each of ``rates``.

    The traffic keeps its shape, days and seed; only the rate changes. Providers that do not offer
    the GPU are left out. The last key, "always on (PROVIDER)", is one instance running all month
    on the provider where that is cheapest.
    """
    curves: dict[str, list[tuple[float, float]]] = {}
    always_on, always_on_label = float("inf"), ""
    for rate in rates:
        report = plan(endpoint, replace(traffic, requests_per_day=rate, timestamps_file=None), **plan_options)
        for result in report.results:
            if result.status == "ok":
                curves.setdefault(result.label, []).append((rate, result.monthly_cost))
                if result.always_on_cost < always_on:
                    always_on, always_on_label = result.always_on_cost, result.label
    if curves:
        curves[f"always on ({always_on_label})"] = [(rate, always_on) for rate in rates]
    return curves


def write_chart(curves: dict[str, list[tuple[float, float]]], path: str | Path, title: str) -> Path:
    """Draw ``curves`` on log-log axes and save them as a PNG at ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise BackendNotInstalledError(
            "The plan chart needs matplotlib; install it with pip install 'gpuserve[plan]'."
        ) from exc

    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=110)
    for label, points in curves.items():
        rates = [rate for rate, _ in points]
        costs = [max(cost, 0.01) for _, cost in points]
        reference = label.startswith("always on")
        axes.plot(rates, costs, "--" if reference else "-", marker="" if reference else "o", markersize=3, label=label)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("requests per day")
    axes.set_ylabel("USD per 30-day month")
    axes.set_title(title, fontsize=10)
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    target = Path(path)
    figure.savefig(target)
    plt.close(figure)
    return target
