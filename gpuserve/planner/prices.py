"""The price and power table: what each provider charges for a GPU, how it scales down, what the GPU draws.

The table ships as ``prices.json`` next to this module. Every offer and power figure carries its
source and the date it was read; nothing is fetched at run time. A user file in the same format
overrides offers (matched by provider and GPU), power figures (by GPU) and provider fields.
This module imports only the standard library, so the deploy guard can use it cheaply.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..gpus import GPU

#: Seconds in the month that every monthly figure refers to: 30 days.
MONTH_SECONDS = 30 * 86400.0

#: ``Choice.reason`` for a GPU the provider sells but the table has no price for.
PRICE_MISSING = "offered, no price in table"


@dataclass(frozen=True)
class Provider:
    """One provider's billing and scale-down rules."""

    name: str
    label: str
    #: The billing rule in words, for the report.
    billing: str
    #: Each instance's life is rounded up to a multiple of this many seconds.
    billing_increment_seconds: float
    #: gpuserve GPU names the provider offers at all, priced in the table or not.
    gpus: tuple[str, ...]
    #: Most GPUs per instance, where the provider has a limit.
    max_gpus: int | None
    uses_idle_timeout: bool
    idle_window_min: float
    idle_window_max: float | None
    idle_window_extra: float
    idle_window_fixed: float
    #: Seconds from the request that finds no instance until an instance can run ``setup``.
    cold_start_seconds: float
    cold_start_source: str
    note: str

    def idle_window(self, idle_timeout: float) -> float:
        """Return the seconds an idle instance stays up, for an endpoint's ``idle_timeout``."""
        if not self.uses_idle_timeout:
            return self.idle_window_fixed
        window = max(idle_timeout, self.idle_window_min)
        if self.idle_window_max is not None:
            window = min(window, self.idle_window_max)
        return window + self.idle_window_extra


@dataclass(frozen=True)
class Offer:
    """One priced product: a GPU on a provider, with its source."""

    provider: str
    gpu: str
    #: The provider's name for the product, such as "ml.g6.xlarge".
    offer: str
    #: "gpu" when the price is per GPU and scales with the count, "instance" when it is per instance.
    unit: str
    #: GPUs in one instance for unit "instance"; None for unit "gpu".
    gpus_per_instance: int | None
    #: USD per second for one GPU (unit "gpu") or one instance (unit "instance").
    price_per_second: float
    region: str | None
    source: str
    read_on: str
    note: str = ""
    #: Seconds this product takes to start, where it differs from the provider's ``cold_start_seconds``.
    cold_start_seconds: float | None = None


@dataclass(frozen=True)
class Power:
    """Power draw of one GPU, in watts, while it serves requests and while it idles with a model loaded."""

    gpu: str
    active_watts: float
    idle_watts: float
    source: str
    read_on: str


@dataclass(frozen=True)
class Choice:
    """The offer that serves one endpoint's GPU request on one provider, or why there is none."""

    provider: Provider
    offer: Offer | None
    #: GPUs in each instance, which may exceed the request (SageMaker's 8-GPU A100 instances).
    gpus: int
    #: USD per second for one instance.
    price_per_second: float
    #: Empty when ``offer`` is set; otherwise "not offered" or "offered, no price in table".
    reason: str = ""

    @property
    def cold_start_seconds(self) -> float:
        """Seconds from the request that finds no instance until ``setup`` can run on a new one."""
        if self.offer is not None and self.offer.cold_start_seconds is not None:
            return self.offer.cold_start_seconds
        return self.provider.cold_start_seconds


@dataclass(frozen=True)
class PriceTable:
    """The whole table: providers, offers and GPU power, with the date it was read."""

    read_on: str
    currency: str
    providers: dict[str, Provider]
    offers: tuple[Offer, ...]
    power: dict[str, Power]

    def choose(self, provider: str, gpu: GPU) -> Choice:
        """Return the cheapest offer on ``provider`` that gives an instance ``gpu.count`` of ``gpu.name``."""
        chosen = self.providers[provider]
        if gpu.name not in chosen.gpus or (chosen.max_gpus is not None and gpu.count > chosen.max_gpus):
            return Choice(chosen, None, gpu.count, 0.0, "not offered")
        candidates = []
        for offer in self.offers:
            if offer.provider != provider or offer.gpu != gpu.name:
                continue
            if offer.unit == "gpu":
                candidates.append((offer.price_per_second * gpu.count, gpu.count, offer))
            elif offer.gpus_per_instance is not None and offer.gpus_per_instance >= gpu.count:
                candidates.append((offer.price_per_second, offer.gpus_per_instance, offer))
        if not candidates:
            return Choice(chosen, None, gpu.count, 0.0, PRICE_MISSING)
        price, gpus, offer = min(candidates, key=lambda candidate: candidate[0])
        return Choice(chosen, offer, gpus, price)


def load_prices(override: str | Path | None = None) -> PriceTable:
    """Load the shipped table, with the entries of the JSON file ``override`` replacing or adding to it.

    Example: ``load_prices("my-prices.json")`` where the file contains
    ``{"offers": [{"provider": "modal", "gpu": "L4", "offer": "L4", "unit": "gpu",
    "price_per_second": 0.0002, "source": "contract", "read_on": "2026-12-01"}]}``.
    """
    data = json.loads(resources.files(__package__).joinpath("prices.json").read_text(encoding="utf-8"))
    table = _parse_table(data, "the shipped price table")
    if override is None:
        return table
    path = Path(override)
    try:
        extra = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"Cannot read the price file {str(path)!r}: {exc.strerror}.") from None
    except ValueError as exc:
        raise ConfigError(f"The price file {str(path)!r} is not valid JSON: {exc}.") from None
    if not isinstance(extra, dict):
        raise ConfigError(f"The price file {str(path)!r} must hold a JSON object with 'offers' and/or 'power'.")
    return _merge(table, extra, str(path))


def _merge(table: PriceTable, extra: dict[str, Any], origin: str) -> PriceTable:
    providers = dict(table.providers)
    for name, fields in _mapping(extra.get("providers", {}), "providers", origin).items():
        if name not in providers:
            raise ConfigError(
                f"{origin}: unknown provider {name!r}; the planner models {', '.join(sorted(providers))}."
            )
        merged = {**_provider_fields(providers[name]), **_mapping(fields, f"providers.{name}", origin)}
        providers[name] = _parse_provider(name, merged, origin)
    offers = {(offer.provider, offer.gpu, offer.offer): offer for offer in table.offers}
    for index, raw in enumerate(_list(extra.get("offers", []), "offers", origin)):
        offer = _parse_offer(raw, f"{origin}: offers[{index}]", providers)
        # A user's offer for a provider and GPU replaces every shipped offer for that pair.
        offers = {key: value for key, value in offers.items() if key[:2] != (offer.provider, offer.gpu)} | {
            (offer.provider, offer.gpu, offer.offer): offer
        }
    power = dict(table.power)
    for index, raw in enumerate(_list(extra.get("power", []), "power", origin)):
        entry = _parse_power(raw, f"{origin}: power[{index}]")
        power[entry.gpu] = entry
    read_on = str(extra.get("read_on", table.read_on))
    return PriceTable(read_on, table.currency, providers, tuple(offers.values()), power)


def _parse_table(data: Any, origin: str) -> PriceTable:
    data = _mapping(data, "the table", origin)
    providers = {
        name: _parse_provider(name, _mapping(fields, f"providers.{name}", origin), origin)
        for name, fields in _mapping(data["providers"], "providers", origin).items()
    }
    offers = tuple(
        _parse_offer(raw, f"{origin}: offers[{index}]", providers)
        for index, raw in enumerate(_list(data["offers"], "offers", origin))
    )
    power = {}
    for index, raw in enumerate(_list(data["power"], "power", origin)):
        entry = _parse_power(raw, f"{origin}: power[{index}]")
        power[entry.gpu] = entry
    return PriceTable(str(data["read_on"]), str(data["currency"]), providers, offers, power)


def _parse_provider(name: str, fields: Mapping[str, Any], origin: str) -> Provider:
    where = f"{origin}: providers.{name}"
    window = _mapping(fields.get("idle_window", {}), f"providers.{name}.idle_window", origin)
    maximum = window.get("max_seconds")
    max_gpus = fields.get("max_gpus")
    return Provider(
        name=name,
        label=str(fields.get("label", name)),
        billing=str(fields.get("billing", "")),
        billing_increment_seconds=_number(
            fields.get("billing_increment_seconds", 1), "billing_increment_seconds", where
        ),
        gpus=tuple(_gpu_name(gpu, where) for gpu in _list(fields.get("gpus", []), "gpus", where)),
        max_gpus=None if max_gpus is None else int(_number(max_gpus, "max_gpus", where)),
        uses_idle_timeout=bool(window.get("uses_idle_timeout", True)),
        idle_window_min=_number(window.get("min_seconds", 0), "idle_window.min_seconds", where, allow_zero=True),
        idle_window_max=None if maximum is None else _number(maximum, "idle_window.max_seconds", where),
        idle_window_extra=_number(window.get("extra_seconds", 0), "idle_window.extra_seconds", where, allow_zero=True),
        idle_window_fixed=_number(window.get("fixed_seconds", 0), "idle_window.fixed_seconds", where, allow_zero=True),
        cold_start_seconds=_number(fields.get("cold_start_seconds", 0), "cold_start_seconds", where, allow_zero=True),
        cold_start_source=str(fields.get("cold_start_source", "")),
        note=str(fields.get("note", "")),
    )


def _provider_fields(provider: Provider) -> dict[str, Any]:
    """Return ``provider`` in the JSON form, so that a user file can change single fields."""
    return {
        "label": provider.label,
        "billing": provider.billing,
        "billing_increment_seconds": provider.billing_increment_seconds,
        "gpus": list(provider.gpus),
        "max_gpus": provider.max_gpus,
        "idle_window": {
            "uses_idle_timeout": provider.uses_idle_timeout,
            "min_seconds": provider.idle_window_min,
            "max_seconds": provider.idle_window_max,
            "extra_seconds": provider.idle_window_extra,
            "fixed_seconds": provider.idle_window_fixed,
        },
        "cold_start_seconds": provider.cold_start_seconds,
        "cold_start_source": provider.cold_start_source,
        "note": provider.note,
    }


def _parse_offer(raw: Any, where: str, providers: Mapping[str, Provider]) -> Offer:
    fields = _mapping(raw, "an offer", where)
    for key in ("provider", "gpu", "offer", "unit", "source", "read_on"):
        if key not in fields:
            raise ConfigError(
                f"{where} has no {key!r}; every offer needs provider, gpu, offer, unit, a price, source and read_on."
            )
    provider = str(fields["provider"])
    if provider not in providers:
        raise ConfigError(f"{where}: unknown provider {provider!r}; use one of {', '.join(sorted(providers))}.")
    unit = fields["unit"]
    if unit not in ("gpu", "instance"):
        raise ConfigError(f"{where}: invalid unit {unit!r}; use 'gpu' (price per GPU) or 'instance'.")
    if ("price_per_second" in fields) == ("price_per_hour" in fields):
        raise ConfigError(f"{where} needs exactly one of price_per_second and price_per_hour.")
    if "price_per_second" in fields:
        price = _number(fields["price_per_second"], "price_per_second", where, allow_zero=True)
    else:
        price = _number(fields["price_per_hour"], "price_per_hour", where, allow_zero=True) / 3600
    gpus = fields.get("gpus_per_instance")
    cold_start = fields.get("cold_start_seconds")
    if unit == "instance" and gpus is None:
        raise ConfigError(f"{where}: an offer with unit 'instance' needs gpus_per_instance, for example 1.")
    return Offer(
        provider=provider,
        gpu=_gpu_name(fields["gpu"], where),
        offer=str(fields["offer"]),
        unit=unit,
        gpus_per_instance=None if gpus is None else int(_number(gpus, "gpus_per_instance", where)),
        price_per_second=price,
        region=None if fields.get("region") is None else str(fields["region"]),
        source=str(fields["source"]),
        read_on=str(fields["read_on"]),
        note=str(fields.get("note", "")),
        cold_start_seconds=None if cold_start is None else _number(cold_start, "cold_start_seconds", where, True),
    )


def _parse_power(raw: Any, where: str) -> Power:
    fields = _mapping(raw, "a power entry", where)
    for key in ("gpu", "active_watts", "idle_watts", "source", "read_on"):
        if key not in fields:
            raise ConfigError(
                f"{where} has no {key!r}; a power entry needs gpu, active_watts, idle_watts, source and read_on."
            )
    return Power(
        gpu=_gpu_name(fields["gpu"], where),
        active_watts=_number(fields["active_watts"], "active_watts", where, allow_zero=True),
        idle_watts=_number(fields["idle_watts"], "idle_watts", where, allow_zero=True),
        source=str(fields["source"]),
        read_on=str(fields["read_on"]),
    )


def _gpu_name(value: Any, where: str) -> str:
    try:
        return GPU(value).name
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _number(value: Any, name: str, where: str, allow_zero: bool = False) -> float:
    valid = isinstance(value, (int, float)) and not isinstance(value, bool) and value < float("inf")
    if not valid or value < 0 or (value == 0 and not allow_zero):
        lowest = "zero or more" if allow_zero else "more than zero"
        raise ConfigError(f"{where}: invalid {name} {value!r}; use a number {lowest}.")
    return float(value)


def _mapping(value: Any, name: str, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {name} must be a JSON object, got {type(value).__name__}.")
    return value


def _list(value: Any, name: str, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: {name} must be a JSON list, got {type(value).__name__}.")
    return value
