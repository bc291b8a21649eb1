"""The deploy guard: the monthly cost of the instances that ``min_instances`` keeps running idle."""

from __future__ import annotations

from ..settings import Settings
from .prices import MONTH_SECONDS, load_prices

#: gpuserve backend name -> provider name in the price table; other backends cost nothing to idle.
BACKEND_PROVIDERS: dict[str, str] = {"modal": "modal", "sagemaker": "sagemaker", "cloudrun": "cloudrun"}


def idle_cost_message(backend: str, settings: Settings) -> str | None:
    """Return a sentence with the monthly cost of ``min_instances`` idle instances, or None when it is zero.

    Example: "min_instances=1 keeps 1 L4 instance running without traffic: about $575 per 30-day
    month on Modal (prices read on 2026-12-04). Set min_instances=0 to scale to zero."
    """
    count = settings.scaling.min_instances
    provider = BACKEND_PROVIDERS.get(backend)
    if count == 0 or provider is None or settings.gpu is None:
        return None
    table = load_prices()
    choice = table.choose(provider, settings.gpu)
    kept = f"min_instances={count} keeps {count} {choice.offer.offer if choice.offer else settings.gpu} instance"
    kept += "s" if count > 1 else ""
    if choice.offer is None:
        return (
            f"{kept} running without traffic; the price table has no {settings.gpu} price for "
            f"{choice.provider.label}, so its monthly cost is unknown."
        )
    cost = choice.price_per_second * MONTH_SECONDS * count
    return (
        f"{kept} running without traffic: about ${cost:,.0f} per 30-day month on {choice.provider.label} "
        f"(prices read on {table.read_on}). Set min_instances=0 to scale to zero."
    )
