"""``gpuserve.plan`` end to end, and the deploy guard."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gpuserve
from gpuserve.backends.base import DeploySpec, ProgressCallback
from gpuserve.errors import ConfigError
from gpuserve.planner import Traffic
from gpuserve.planner.api import ProviderResult, _wait_statistics, recommend
from gpuserve.planner.guard import idle_cost_message
from gpuserve.planner.prices import MONTH_SECONDS, load_prices
from gpuserve.state import DeploymentRecord


class Embed(gpuserve.Endpoint):
    gpu = "L4"
    scaling = gpuserve.Scaling(idle_timeout=60)

    def predict(self, text: str) -> list[float]:
        return [float(len(text))]


def test_plan_is_lazy_export() -> None:
    from gpuserve.planner.api import plan

    assert gpuserve.plan is plan


def test_plan_hourly_on_modal() -> None:
    with_hourly = Path(__file__).parent / "hourly.log"
    report = gpuserve.plan(
        Embed, Traffic(timestamps_file=str(with_hourly)), work_seconds=2.0, setup_seconds=8.0, providers=["modal"]
    )
    result = report.results[0]
    modal = load_prices().choose("modal", gpuserve.GPU("L4"))

    # 24 requests on one day: each bills Modal's 2 s start, 8 s setup, 2 s work and the 60 s window.
    per_request = 2.0 + 8.0 + 2.0 + 60.0
    assert report.simulated_requests == 24
    assert result.cold_starts == pytest.approx(24 * 30)
    assert result.billed_gpu_hours == pytest.approx(24 * 30 * per_request / 3600)
    assert result.monthly_cost == pytest.approx(24 * 30 * per_request * modal.price_per_second)
    assert result.active_cost == pytest.approx(24 * 30 * 2.0 * modal.price_per_second)
    assert result.idle_cost == pytest.approx(result.monthly_cost - result.active_cost)
    assert result.waited_share == 1.0
    assert result.wait_p50 == pytest.approx(10.0)
    assert result.wait_p95 == pytest.approx(10.0)
    assert result.active_kwh == pytest.approx(72 * 24 * 30 * 2.0 / 3.6e6)
    assert result.idle_kwh == pytest.approx(30 * 24 * 30 * (per_request - 2.0) / 3.6e6)
    assert result.emissions_kg == pytest.approx(result.energy_kwh * 0.4)


def test_always_on_matches_min_instance() -> None:
    report = gpuserve.plan(Embed, 500, work_seconds=0.1, min_instances=1)

    for result in report.results:
        assert result.status == "ok"
        assert result.monthly_cost == pytest.approx(result.always_on_cost)
        assert result.billed_gpu_hours == pytest.approx(720)
        assert result.cold_starts == 0


def test_not_offered_is_reported() -> None:
    report = gpuserve.plan(Embed, 100, work_seconds=0.1, gpu="H100")

    statuses = {result.provider: result.status for result in report.results}
    assert statuses == {"modal": "ok", "cloudrun": "not offered", "sagemaker": "offered, no price in table"}


def test_report_is_json() -> None:
    report = gpuserve.plan(Embed, Traffic(requests_per_day=2000, shape="evening"), work_seconds=0.3)

    data = json.loads(json.dumps(report.to_dict()))
    assert data["gpu"] == "L4"
    assert [result["provider"] for result in data["results"]] == ["modal", "cloudrun", "sagemaker"]
    assert not data["recommendation"].startswith("Recommendation")


def test_more_requests_cost_more() -> None:
    costs = [
        gpuserve.plan(Embed, rate, work_seconds=0.5, providers=["modal"]).results[0].monthly_cost
        for rate in (10, 100, 1000, 10_000)
    ]

    assert costs == sorted(costs)


def test_plan_without_gpu() -> None:
    with pytest.raises(ConfigError) as caught:
        gpuserve.plan(Embed, 100, work_seconds=0.1, gpu=None)

    assert "Embed has no gpu setting" in str(caught.value)


@pytest.mark.parametrize("work", [None, 0, -1.0, float("nan")])
def test_plan_rejects_bad_work(work: Any) -> None:
    with pytest.raises(ConfigError):
        gpuserve.plan(Embed, 100, work_seconds=work)


def test_plan_rejects_unknown_provider() -> None:
    with pytest.raises(ConfigError) as caught:
        gpuserve.plan(Embed, 100, work_seconds=0.1, providers=["azure"])

    assert "Unknown provider 'azure'; valid choices are modal, cloudrun, sagemaker." in str(caught.value)


def result(label: str, cost: float, always_on: float, p95: float = 0.0) -> ProviderResult:
    return ProviderResult(
        label.lower(), label, "ok", offer="L4", monthly_cost=cost, always_on_cost=always_on, wait_p95=p95
    )


def test_recommend_cheapest() -> None:
    text = recommend([result("Modal", 50, 575), result("SageMaker", 40, 725, p95=400)])

    assert text.startswith("SageMaker (L4), about $40/month")


def test_recommend_respects_wait_limit() -> None:
    text = recommend([result("Modal", 50, 575), result("SageMaker", 40, 725, p95=400)], max_p95_wait=30)

    assert text.startswith("Modal (L4), about $50/month")


def test_recommend_always_on() -> None:
    text = recommend([result("Modal", 900, 575)])

    assert "Keep one instance always on (min_instances=1) on Modal, about $575/month" in text


def test_recommend_nothing_offered() -> None:
    assert "No provider in the price table offers this GPU" in recommend([ProviderResult("x", "X", "not offered")])


def test_guard_message_modal() -> None:
    settings = Embed.deployment_settings(min_instances=2, max_instances=2)
    price = load_prices().choose("modal", gpuserve.GPU("L4")).price_per_second

    message = idle_cost_message("modal", settings)

    assert message is not None
    assert message.startswith("min_instances=2 keeps 2 L4 instances running without traffic: about $")
    assert f"${price * MONTH_SECONDS * 2:,.0f} per 30-day month on Modal" in message


@pytest.mark.parametrize(
    ("backend", "overrides"),
    [("modal", {}), ("local", {"min_instances": 1}), ("docker", {"min_instances": 1}), ("modal", {"gpu": None})],
)
def test_guard_silent(backend: str, overrides: dict[str, Any]) -> None:
    assert idle_cost_message(backend, Embed.deployment_settings(**overrides)) is None


def test_guard_without_price() -> None:
    message = idle_cost_message("sagemaker", Embed.deployment_settings(gpu="H100", min_instances=1))

    assert message is not None
    assert "the price table has no H100 price for SageMaker" in message


class _RecordingBackend:
    def deploy(self, spec: DeploySpec, progress: ProgressCallback) -> DeploymentRecord:
        return DeploymentRecord(spec.name, "modal", spec.reference, "https://example.invalid", "{}", 0.0)


def test_deploy_shows_idle_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gpuserve.deployment.get_backend", lambda name: _RecordingBackend())
    messages: list[str] = []

    gpuserve.deploy(Embed, backend="modal", progress=messages.append, min_instances=1)

    assert len(messages) == 1
    assert "min_instances=1 keeps 1 L4 instance running without traffic" in messages[0]


def test_deploy_logs_idle_cost(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr("gpuserve.deployment.get_backend", lambda name: _RecordingBackend())

    with caplog.at_level(logging.WARNING, logger="gpuserve.deployment"):
        gpuserve.deploy(Embed, backend="modal", min_instances=1)

    assert any("per 30-day month on Modal" in record.getMessage() for record in caplog.records)


def test_deploy_scaling_to_zero_is_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gpuserve.deployment.get_backend", lambda name: _RecordingBackend())
    messages: list[str] = []

    gpuserve.deploy(Embed, backend="modal", progress=messages.append)

    assert messages == []


@pytest.mark.parametrize("zeros", [0, 1, 50, 94, 95, 96, 100])
def test_wait_statistics_match_numpy(zeros: int) -> None:
    waits = np.concatenate((np.zeros(zeros), np.linspace(0.5, 30.0, 100 - zeros)))
    np.random.default_rng(0).shuffle(waits)

    share, p50, p95 = _wait_statistics(waits)

    assert share == pytest.approx((100 - zeros) / 100)
    assert p50 == pytest.approx(np.percentile(waits, 50))
    assert p95 == pytest.approx(np.percentile(waits, 95))


def test_plan_without_numpy() -> None:
    code = (
        "import sys\n"
        "sys.modules['numpy'] = None\n"
        "import gpuserve\n"
        "try:\n"
        "    gpuserve.plan\n"
        "except gpuserve.BackendNotInstalledError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "The planner needs numpy; install it with pip install 'gpuserve[plan]'."


def test_billing_increment_rounds_each_instance(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"providers": {"sagemaker": {"billing_increment_seconds": 3600}}}), encoding="utf-8")
    hourly = Path(__file__).parent / "hourly.log"

    report = gpuserve.plan(
        Embed, Traffic(timestamps_file=str(hourly)), work_seconds=2.0, providers=["sagemaker"], prices=str(path)
    )
    result = report.results[0]

    # Requests an hour apart never find the instance up (a 960 s window), and each instance
    # life of 360 + 2 + 960 s is billed as one whole hour.
    assert result.cold_starts == pytest.approx(24 * 30)
    assert result.billed_gpu_hours == pytest.approx(24 * 30)
    assert result.monthly_cost == pytest.approx(24 * 30 * 1.0064)


class SyncFour(gpuserve.Endpoint):
    gpu = "L4"
    scaling = gpuserve.Scaling(max_concurrency=4)

    def predict(self, text: str) -> str:
        return text


def test_plan_reports_saturation() -> None:
    from gpuserve.planner.report import format_plan

    report = gpuserve.plan(SyncFour, Traffic(requests_per_day=200_000, days=2), work_seconds=1.0)
    text = format_plan(report)

    assert report.saturated
    assert report.load == pytest.approx(200_000 / 86400, rel=0.02)
    assert report.recommendation.startswith("No provider can serve this traffic")
    assert "raise max_instances to at least 3" in report.recommendation
    assert "SATURATED: the instances cannot keep up" in text
    assert all(result.wait_p95 > 3600 for result in report.results if result.status == "ok")


def test_plan_below_saturation() -> None:
    report = gpuserve.plan(SyncFour, Traffic(requests_per_day=20_000, days=2), work_seconds=1.0)

    assert not report.saturated
    assert 0.2 < report.load < 0.25
    assert report.peak_hour_load >= report.load


def test_cold_starts_are_whole_numbers() -> None:
    data = gpuserve.plan(Embed, 100, work_seconds=0.1).to_dict()

    assert all(isinstance(result["cold_starts"], int) for result in data["results"])


def test_traffic_rejects_file_and_rate() -> None:
    with pytest.raises(ConfigError, match="timestamps_file or requests_per_day and days, not both"):
        Traffic(timestamps_file="requests.log", requests_per_day=5000)


def test_price_missing_is_explained() -> None:
    from gpuserve.planner.report import format_plan

    report = gpuserve.plan(Embed, 100, work_seconds=0.1, gpu="H100")
    text = format_plan(report)

    assert "SageMaker offers H100, but the price table has no price for it" in text
