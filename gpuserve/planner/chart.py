"""A chart of monthly cost against requests per day, one line per provider, as PNG, SVG or PDF. Needs matplotlib."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

from ..endpoint import Endpoint
from ..errors import BackendNotInstalledError, ConfigError, GpuserveError
from .api import plan
from .traffic import Traffic

#: Requests per day at which the chart simulates each provider, 10 to 100,000.
DEFAULT_RATES = (10, 30, 100, 300, 1_000, 3_000, 10_000, 30_000, 100_000)

#: File extensions the chart can be saved as; matplotlib picks the format from the extension.
CHART_FORMATS = ("png", "svg", "pdf")


def check_chart_path(path: str | Path) -> Path:
    """Return ``path`` as a ``Path`` after checking that a chart can be written there, before any simulation.

    Raises ``ConfigError`` for an extension other than ``CHART_FORMATS`` or a missing or read-only
    folder, and ``BackendNotInstalledError`` without matplotlib.
    """
    target = Path(path)
    extension = target.suffix.lower().lstrip(".")
    if extension not in CHART_FORMATS:
        raise ConfigError(
            f"Invalid chart file {str(path)!r}: the name must end in .png, .svg or .pdf, for example plan.png."
        )
    folder = target.parent
    if not folder.is_dir():
        raise ConfigError(f"Folder {str(folder)!r} for the chart {str(path)!r} does not exist; create it first.")
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"Folder {str(folder)!r} for the chart {str(path)!r} is not writable; choose another.")
    _import_pyplot()
    return target


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
    """Draw ``curves`` on log-log axes and save them at ``path``, in the format its extension names."""
    target = check_chart_path(path)
    plt = _import_pyplot()
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=110)
    for label, points in curves.items():
        rates = [rate for rate, _ in points]
        costs = [max(cost, 0.01) for _, cost in points]
        reference = label.startswith("always on")
        # Costs near each other on a log axis are hard to tell apart, so the legend gives the last one.
        label = f"{label}: ${costs[-1]:,.0f}" if reference else f"{label}: ${costs[-1]:,.0f} at {rates[-1]:,.0f}/day"
        axes.plot(rates, costs, "--" if reference else "-", marker="" if reference else "o", markersize=3, label=label)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("requests per day")
    axes.set_ylabel("USD per 30-day month")
    axes.set_title(title, fontsize=10)
    # Label the 2, 3, 5 and 7 multiples too: with powers of ten alone, a decade such as $100 to
    # $1,000 has no label inside it, and costs there cannot be read off.
    dollars = FuncFormatter(lambda value, _: f"${value:,.0f}" if value >= 1 else f"${value:.2g}")
    axes.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0, 7.0)))
    axes.yaxis.set_minor_locator(LogLocator(base=10, subs=(4.0, 6.0, 8.0, 9.0)))
    axes.yaxis.set_major_formatter(dollars)
    axes.yaxis.set_minor_formatter(NullFormatter())
    axes.grid(True, which="major", alpha=0.3)
    axes.grid(True, which="minor", axis="y", alpha=0.1)
    axes.legend(fontsize=8)
    figure.tight_layout()
    try:
        figure.savefig(target)
    except OSError as exc:
        raise GpuserveError(f"Could not write the chart to {str(target)!r}: {exc.strerror or exc}.") from exc
    finally:
        plt.close(figure)
    return target


def _import_pyplot() -> ModuleType:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise BackendNotInstalledError(
            "The plan chart needs matplotlib; install it with pip install 'gpuserve[plan]'."
        ) from exc
    return plt
