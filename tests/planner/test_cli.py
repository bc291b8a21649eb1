"""``gpuserve plan`` through ``gpuserve.cli.main``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from gpuserve.cli import main

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY = str(REPO_ROOT / "examples" / "tiny.py") + ":Echo"
HOURLY = str(Path(__file__).parent / "hourly.log")


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["plan", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_prices_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--prices"], capsys)

    assert code == 0
    assert out.startswith("Price table read on 2026-12-04, in USD. Nothing is fetched at run time.")
    assert "ml.g5.xlarge" in out
    assert "https://modal.com/pricing" in out
    assert "active W" in out


def test_prices_with_override(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "prices.json"
    offer = {
        "provider": "modal",
        "gpu": "L4",
        "offer": "L4-contract",
        "unit": "gpu",
        "price_per_hour": 0.5,
        "source": "our contract",
        "read_on": "2026-11-30",
    }
    path.write_text(json.dumps({"read_on": "2026-11-30", "offers": [offer]}), encoding="utf-8")

    code, out, _ = run(["--prices", "--price-file", str(path)], capsys)

    assert code == 0
    assert "Price table read on 2026-11-30" in out
    assert "L4-contract" in out
    assert "our contract (2026-11-30)" in out


def test_plan_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        [TINY, "--set", "gpu=L4", "--work-seconds", "0.5", "--requests-per-day", "2000", "--shape", "business"], capsys
    )

    assert code == 0
    assert out.startswith(
        "Plan for Echo on L4: min_instances=0, max_instances=1, "
        "max_concurrency=1 (1 at a time: sync predict, not thread_safe), idle_timeout=30 s."
    )
    for label in ("Modal", "Cloud Run", "SageMaker"):
        assert f"\n{label} " in out
    assert "Always on, one instance: $" in out
    assert out.rstrip().splitlines()[-1].startswith("Recommendation: ")


def test_plan_json_replay(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([TINY, "--set", "gpu=L4", "--work-seconds", "2", "--timestamps", HOURLY, "--json"], capsys)

    data = json.loads(out)
    assert code == 0
    assert data["simulated_requests"] == 24
    assert data["simulated_days"] == 1
    assert data["traffic"] == f"replayed from {HOURLY}"
    assert data["results"][0]["cold_starts"] == pytest.approx(720)


def test_plan_bad_timestamp(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "requests.log"
    path.write_text("1733306400\n1733306460\nsoon\n", encoding="utf-8")

    code, _, err = run([TINY, "--set", "gpu=L4", "--work-seconds", "1", "--timestamps", str(path)], capsys)

    assert code == 1
    assert err.startswith(f"error: {path} line 3: 'soon' is neither an ISO-8601 time nor epoch seconds")


def test_plan_needs_work(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run([TINY, "--set", "gpu=L4"], capsys)

    assert code == 1
    assert "Give --work-seconds (GPU seconds per request) or --measure with sample inputs." in err


def test_plan_needs_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["--work-seconds", "1"], capsys)

    assert code == 1
    assert "gpuserve plan needs an endpoint" in err


def test_plan_needs_gpu(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run([TINY, "--work-seconds", "1"], capsys)

    assert code == 1
    assert "Echo has no gpu setting" in err


def test_plan_measure(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([TINY, "text=hi", "--measure", "times:=2", "--set", "gpu=L4", "--json"], capsys)

    data = json.loads(out)
    assert code == 0
    assert data["timing_source"].startswith("measured on this machine's ")
    assert 0 < data["work_seconds"] < 1
    assert data["setup_seconds"] >= 0


def test_plan_inputs_without_measure(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run([TINY, "text=hi", "--set", "gpu=L4", "--work-seconds", "1"], capsys)

    assert code == 1
    assert "Sample inputs are only used with --measure" in err


def test_plan_chart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    chart = tmp_path / "cost.png"

    code, out, _ = run([TINY, "--set", "gpu=L4", "--work-seconds", "0.5", "--chart", str(chart)], capsys)

    assert code == 0
    assert f"Chart written to {chart}" in out
    assert chart.read_bytes().startswith(b"\x89PNG")


def test_plan_chart_without_matplotlib(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)

    code, _, err = run([TINY, "--set", "gpu=L4", "--work-seconds", "0.5", "--chart", str(tmp_path / "c.png")], capsys)

    assert code == 1
    assert "error: The plan chart needs matplotlib; install it with pip install 'gpuserve[plan]'." in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--timestamps", HOURLY, "--requests-per-day", "10"],
            "--timestamps cannot be combined with --requests-per-day",
        ),
        (["--timestamps", HOURLY, "--days", "3"], "--timestamps cannot be combined with --days"),
        (["--timestamps", HOURLY, "--shape", "business"], "--timestamps cannot be combined with --shape"),
    ],
)
def test_plan_rejects_timestamps_with_rate(extra: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run([TINY, "--set", "gpu=L4", "--work-seconds", "1", *extra], capsys)

    assert code == 1
    assert message in err
    assert "or remove --timestamps to generate traffic" in err


def test_plan_rejects_measure_with_work(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run([TINY, "text=hi", "--measure", "--work-seconds", "1", "--set", "gpu=L4"], capsys)

    assert code == 1
    assert "--measure cannot be combined with --work-seconds" in err
    assert "or remove --measure to use the given times" in err


def test_plan_text_counts(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([TINY, "--set", "gpu=L4", "--work-seconds", "1", "--timestamps", HOURLY], capsys)

    assert code == 0
    assert "24 requests in 1 day." in out


def test_plan_measure_source_reads_plainly(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([TINY, "text=hi", "--measure", "--set", "gpu=L4"], capsys)

    assert code == 0
    assert "(measured on this machine's " in out
    assert "((" not in out
    assert "))" not in out


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing/cost.png", "for the chart"),
        ("cost.txt", "must end in .png, .svg or .pdf"),
        ("cost", "must end in .png, .svg or .pdf"),
    ],
)
def test_plan_rejects_bad_chart_path(
    name: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chart = tmp_path / name

    code, out, err = run([TINY, "--set", "gpu=L4", "--work-seconds", "0.5", "--chart", str(chart)], capsys)

    assert code == 1
    assert out == ""
    assert message in err
    assert str(chart) in err
    assert "Traceback" not in err


def test_plan_chart_svg(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    chart = tmp_path / "cost.svg"

    code, _, _ = run([TINY, "--set", "gpu=L4", "--work-seconds", "0.5", "--chart", str(chart)], capsys)

    assert code == 0
    assert b"<svg" in chart.read_bytes()[:500]
