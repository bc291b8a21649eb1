"""The shipped price table, user overrides, and the choice of an offer for a GPU request."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gpuserve.errors import ConfigError
from gpuserve.gpus import GPU, GPU_MEMORY_GIB
from gpuserve.planner.prices import load_prices

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def test_every_entry_has_source_and_date() -> None:
    table = load_prices()

    assert DATE.match(table.read_on)
    for offer in table.offers:
        assert offer.source.strip(), offer
        assert DATE.match(offer.read_on), offer
        assert offer.price_per_second > 0, offer
    for power in table.power.values():
        assert power.source.strip(), power
        assert DATE.match(power.read_on), power
        assert power.active_watts > power.idle_watts > 0, power


def test_every_gpu_has_power() -> None:
    assert set(load_prices().power) == set(GPU_MEMORY_GIB)


def test_offers_are_for_offered_gpus() -> None:
    table = load_prices()

    for offer in table.offers:
        assert offer.gpu in table.providers[offer.provider].gpus, offer


def test_choose_per_gpu_price_scales() -> None:
    table = load_prices()

    one = table.choose("modal", GPU("L4"))
    two = table.choose("modal", GPU("L4", 2))

    assert one.offer is not None
    assert two.price_per_second == pytest.approx(2 * one.price_per_second)
    assert two.gpus == 2


def test_choose_whole_instance() -> None:
    choice = load_prices().choose("sagemaker", GPU("A100-40GB"))

    assert choice.offer is not None
    assert choice.offer.offer == "ml.p4d.24xlarge"
    assert choice.gpus == 8


def test_choose_not_offered() -> None:
    table = load_prices()

    assert table.choose("cloudrun", GPU("H100")).reason == "not offered"
    assert table.choose("cloudrun", GPU("L4", 2)).reason == "not offered"
    assert table.choose("sagemaker", GPU("B200")).reason == "not offered"


def test_choose_without_price() -> None:
    assert load_prices().choose("sagemaker", GPU("H100")).reason == "offered, no price in table"


def test_idle_windows() -> None:
    providers = load_prices().providers

    assert providers["modal"].idle_window(1) == 2
    assert providers["modal"].idle_window(120) == 120
    assert providers["modal"].idle_window(99_999) == 3600
    assert providers["cloudrun"].idle_window(120) == 900
    assert providers["sagemaker"].idle_window(10) == 60 + 900


def test_override_replaces_offer(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    offer = {
        "provider": "modal",
        "gpu": "l4",
        "offer": "L4 (negotiated)",
        "unit": "gpu",
        "price_per_hour": 0.36,
        "source": "our contract",
        "read_on": "2026-12-01",
    }
    path.write_text(json.dumps({"read_on": "2026-12-01", "offers": [offer]}), encoding="utf-8")

    table = load_prices(path)
    choice = table.choose("modal", GPU("L4"))

    assert choice.offer is not None
    assert choice.offer.offer == "L4 (negotiated)"
    assert choice.price_per_second == pytest.approx(0.0001)
    assert [item for item in table.offers if item.provider == "modal" and item.gpu == "L4"] == [choice.offer]
    assert table.read_on == "2026-12-01"


def test_override_adds_offer_and_power(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    data = {
        "offers": [
            {
                "provider": "sagemaker",
                "gpu": "H100",
                "offer": "ml.p5.48xlarge",
                "unit": "instance",
                "gpus_per_instance": 8,
                "price_per_hour": 100.0,
                "source": "console",
                "read_on": "2026-12-02",
            }
        ],
        "power": [
            {"gpu": "H100", "active_watts": 500, "idle_watts": 90, "source": "measured", "read_on": "2026-12-02"}
        ],
        "providers": {"sagemaker": {"cold_start_seconds": 600}},
    }
    path.write_text(json.dumps(data), encoding="utf-8")

    table = load_prices(path)

    assert table.choose("sagemaker", GPU("H100")).price_per_second == pytest.approx(100 / 3600)
    assert table.power["H100"].active_watts == 500
    assert table.providers["sagemaker"].cold_start_seconds == 600
    assert table.providers["sagemaker"].idle_window(60) == 960


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("[1, 2]", "must hold a JSON object"),
        ("{", "is not valid JSON"),
        ('{"offers": {}}', "offers must be a JSON list, got dict"),
        ('{"offers": [{"provider": "modal"}]}', "offers[0] has no 'gpu'"),
        (
            '{"offers": [{"provider": "azure", "gpu": "L4", "offer": "x", "unit": "gpu", "price_per_hour": 1,'
            ' "source": "s", "read_on": "d"}]}',
            "unknown provider 'azure'",
        ),
        (
            '{"offers": [{"provider": "modal", "gpu": "L4", "offer": "x", "unit": "gpu", "price_per_hour": -1,'
            ' "source": "s", "read_on": "d"}]}',
            "invalid price_per_hour -1",
        ),
        (
            '{"offers": [{"provider": "modal", "gpu": "L4", "offer": "x", "unit": "gpu", "price_per_hour": 1,'
            ' "price_per_second": 1, "source": "s", "read_on": "d"}]}',
            "exactly one of price_per_second and price_per_hour",
        ),
        (
            '{"offers": [{"provider": "modal", "gpu": "K80", "offer": "x", "unit": "gpu", "price_per_hour": 1,'
            ' "source": "s", "read_on": "d"}]}',
            "Unknown GPU 'K80'",
        ),
        ('{"power": [{"gpu": "L4"}]}', "power[0] has no 'active_watts'"),
        ('{"providers": {"azure": {}}}', "unknown provider 'azure'"),
    ],
)
def test_override_errors(tmp_path: Path, data: str, message: str) -> None:
    path = tmp_path / "prices.json"
    path.write_text(data, encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_prices(path)

    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_override_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_prices(tmp_path / "absent.json")

    assert "Cannot read the price file" in str(caught.value)


def test_prices_module_is_light() -> None:
    code = "import sys, gpuserve.planner.prices, gpuserve.planner.guard; print('numpy' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "False"


def test_offer_cold_start_overrides_provider(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    offer = {
        "provider": "modal",
        "gpu": "H100",
        "offer": "H100",
        "unit": "gpu",
        "price_per_second": 0.001,
        "cold_start_seconds": 12,
        "source": "our measurements",
        "read_on": "2026-12-01",
    }
    path.write_text(json.dumps({"offers": [offer]}), encoding="utf-8")
    table = load_prices(path)

    assert table.choose("modal", GPU("H100")).cold_start_seconds == 12
    assert table.choose("modal", GPU("L4")).cold_start_seconds == table.providers["modal"].cold_start_seconds
