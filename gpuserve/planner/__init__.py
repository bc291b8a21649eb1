"""The cost and energy planner: what one endpoint and one traffic pattern would cost on each provider.

Example::

    import gpuserve
    from gpuserve.planner import Traffic

    report = gpuserve.plan(Embed, Traffic(requests_per_day=5000, shape="business"), work_seconds=0.2)
    print(report.recommendation)

Modules: ``traffic`` (arrivals), ``prices`` (the shipped price and power table), ``simulate``,
``events`` and ``fifo`` (the autoscaler simulation), ``api`` (``plan``), ``report`` (tables),
``chart`` (PNG, needs matplotlib), ``measure`` (timing an endpoint in-process), ``command``
(``gpuserve plan``) and ``guard`` (the idle-cost message of ``deploy``). ``prices``, ``guard``
and ``command`` load without numpy, so this package imports the others on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import PlanReport, ProviderResult, plan
    from .measure import Timing, measure_endpoint
    from .prices import PriceTable, load_prices
    from .traffic import Traffic

_LAZY = {
    "plan": "gpuserve.planner.api",
    "PlanReport": "gpuserve.planner.api",
    "ProviderResult": "gpuserve.planner.api",
    "Traffic": "gpuserve.planner.traffic",
    "measure_endpoint": "gpuserve.planner.measure",
    "Timing": "gpuserve.planner.measure",
    "PriceTable": "gpuserve.planner.prices",
    "load_prices": "gpuserve.planner.prices",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        try:
            module = importlib.import_module(_LAZY[name])
        except ModuleNotFoundError as exc:
            if exc.name != "numpy":
                raise
            from ..errors import BackendNotInstalledError

            raise BackendNotInstalledError(
                "The planner needs numpy; install it with pip install 'gpuserve[plan]'."
            ) from exc
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gpuserve.planner' has no attribute {name!r}")


__all__ = [
    "PlanReport",
    "PriceTable",
    "ProviderResult",
    "Timing",
    "Traffic",
    "load_prices",
    "measure_endpoint",
    "plan",
]
