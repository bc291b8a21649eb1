"""Generated arrivals and the timestamp file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gpuserve.errors import ConfigError
from gpuserve.planner.traffic import SHAPES, Traffic, arrivals, generate, read_timestamps


def test_generate_is_seeded() -> None:
    first = generate(5000, "business", 3, seed=7)
    again = generate(5000, "business", 3, seed=7)
    other = generate(5000, "business", 3, seed=8)

    assert np.array_equal(first.times, again.times)
    assert not np.array_equal(first.times, other.times)


def test_generate_count_and_order() -> None:
    result = generate(10_000, "flat", 30, seed=0)

    assert result.period_seconds == 30 * 86400
    assert abs(result.times.size - 300_000) < 3 * np.sqrt(300_000)
    assert np.all(np.diff(result.times) >= 0)
    assert result.times[0] >= 0
    assert result.times[-1] < result.period_seconds


@pytest.mark.parametrize("shape", list(SHAPES))
def test_shape_shares_sum_to_one(shape: str) -> None:
    assert sum(SHAPES[shape]) == pytest.approx(1.0)


def test_business_shape_peaks_in_office_hours() -> None:
    hours = (generate(20_000, "business", 10, seed=1).times % 86400) // 3600
    office = np.count_nonzero((hours >= 9) & (hours < 18)) / hours.size

    assert office == pytest.approx(0.8, abs=0.01)


def test_evening_shape_peaks_in_evening() -> None:
    hours = (generate(20_000, "evening", 10, seed=1).times % 86400) // 3600
    evening = np.count_nonzero((hours >= 18) & (hours < 23)) / hours.size

    assert evening == pytest.approx(0.6, abs=0.01)


def test_zero_traffic() -> None:
    assert generate(0, "flat", 30, seed=0).times.size == 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"requests_per_day": -1}, "Invalid requests_per_day -1"),
        ({"shape": "weekend"}, "Unknown traffic shape 'weekend'; valid choices are flat, business, evening."),
        ({"days": 0}, "Invalid days 0"),
    ],
)
def test_traffic_rejects_bad_values(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Traffic(**fields)  # type: ignore[arg-type]

    assert message in str(caught.value)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "requests.log"
    path.write_text(text, encoding="utf-8")
    return path


def test_read_mixed_formats(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "# requests of one day\n2026-12-04T09:00:00Z\n\n2026-12-04T09:00:30+00:00\n2026-12-04 10:00:00\n1796382000.5\n",
    )

    result = read_timestamps(path)

    assert result.times.tolist() == [9 * 3600.0, 9 * 3600.0 + 30, 10 * 3600.0, 11 * 3600.0 + 0.5]
    assert result.period_seconds == 86400


def test_read_sorts_and_spans_days(tmp_path: Path) -> None:
    path = write(tmp_path, "2026-12-06T01:00:00Z\n2026-12-04T23:00:00Z\n")

    result = read_timestamps(path)

    assert result.times.tolist() == [23 * 3600.0, 2 * 86400 + 3600.0]
    assert result.period_seconds == 3 * 86400


def test_read_keeps_time_zone(tmp_path: Path) -> None:
    path = write(tmp_path, "2026-12-04T10:00:00+01:00\n")

    assert read_timestamps(path).times.tolist() == [9 * 3600.0]


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-01T00:00:00", "-5", "nan", "12:00"])
def test_bad_line_names_line(tmp_path: Path, bad: str) -> None:
    path = write(tmp_path, f"2026-12-04T09:00:00Z\n# comment\n{bad}\n2026-12-04T10:00:00Z\n")

    with pytest.raises(ConfigError) as caught:
        read_timestamps(path)

    assert str(caught.value).startswith(f"{path} line 3: {bad!r} is ")
    assert "1796376600" in str(caught.value)


def test_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path, "# nothing yet\n\n")

    with pytest.raises(ConfigError) as caught:
        read_timestamps(path)

    assert "has no timestamps; write one per line" in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        read_timestamps(tmp_path / "absent.log")

    assert "Cannot read the timestamp file" in str(caught.value)
    assert "No such file or directory" in str(caught.value)


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "requests.bin"
    path.write_bytes(b"\xff\xfe\x00\x01")

    with pytest.raises(ConfigError) as caught:
        read_timestamps(path)

    assert "is not UTF-8 text" in str(caught.value)


def test_traffic_reads_file(tmp_path: Path) -> None:
    path = write(tmp_path, "0\n60\n")

    assert arrivals(Traffic(timestamps_file=str(path))).times.tolist() == [0.0, 60.0]
