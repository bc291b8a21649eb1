"""GPU names, aliases and counts accepted by ``gpuserve.gpus``."""

from __future__ import annotations

import pytest

from gpuserve.errors import ConfigError
from gpuserve.gpus import GPU, GPU_MEMORY_GIB, MAX_GPU_COUNT, canonical_gpu_name, parse_gpu


@pytest.mark.parametrize("name", sorted(GPU_MEMORY_GIB))
def test_canonical_name_kept(name: str) -> None:
    assert canonical_gpu_name(name) == name


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("a100", "A100-40GB"),
        ("A100-80G", "A100-80GB"),
        ("nvidia_l4", "L4"),
        (" h100 ", "H100"),
        ("rtx pro 6000", "RTX-PRO-6000"),
        ("RTX-PRO-6000-Blackwell", "RTX-PRO-6000"),
    ],
)
def test_alias_resolved(spelling: str, expected: str) -> None:
    assert canonical_gpu_name(spelling) == expected


def test_unknown_gpu_lists_choices() -> None:
    with pytest.raises(ConfigError) as caught:
        canonical_gpu_name("A1000")

    message = str(caught.value)
    assert "'A1000'" in message
    assert "L4" in message
    assert "H100" in message


def test_non_string_name_rejected() -> None:
    with pytest.raises(ConfigError, match="Invalid GPU 100"):
        canonical_gpu_name(100)  # type: ignore[arg-type]


def test_gpu_canonicalises_name() -> None:
    gpu = GPU("a100", count=2)

    assert gpu.name == "A100-40GB"
    assert gpu.count == 2


@pytest.mark.parametrize("count", [0, -1, MAX_GPU_COUNT + 1])
def test_gpu_count_out_of_range(count: int) -> None:
    with pytest.raises(ConfigError) as caught:
        GPU("H100", count=count)

    assert f"Invalid GPU count {count}" in str(caught.value)
    assert f"1 to {MAX_GPU_COUNT}" in str(caught.value)


@pytest.mark.parametrize("count", [True, 1.0, "2"])
def test_gpu_count_not_int(count: object) -> None:
    with pytest.raises(ConfigError, match="use a whole number"):
        GPU("H100", count=count)  # type: ignore[arg-type]


def test_gpu_str_omits_single_count() -> None:
    assert str(GPU("L4")) == "L4"
    assert str(GPU("H100", 2)) == "H100:2"


def test_parse_none() -> None:
    assert parse_gpu(None) is None


def test_parse_name() -> None:
    assert parse_gpu("a100") == GPU("A100-40GB", 1)


def test_parse_name_and_count() -> None:
    assert parse_gpu("H100:2") == GPU("H100", 2)


def test_parse_gpu_instance_unchanged() -> None:
    gpu = GPU("L4")

    assert parse_gpu(gpu) is gpu


@pytest.mark.parametrize("value", ["H100:", "H100:x", "H100:-1", "H100:1.5"])
def test_parse_bad_count_text(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_gpu(value)

    assert repr(value) in str(caught.value)
    assert "'H100:2'" in str(caught.value)


@pytest.mark.parametrize("value", ["H100:0", "H100:9"])
def test_parse_count_out_of_range(value: str) -> None:
    with pytest.raises(ConfigError, match=f"1 to {MAX_GPU_COUNT}"):
        parse_gpu(value)


def test_parse_superscript_count() -> None:
    with pytest.raises(ConfigError, match="'H100:²'"):
        parse_gpu("H100:²")


def test_parse_unknown_name_with_count() -> None:
    with pytest.raises(ConfigError, match="Unknown GPU 'A1000'"):
        parse_gpu("A1000:2")


@pytest.mark.parametrize("value", [2, ["H100"], {"name": "H100"}])
def test_parse_wrong_type(value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_gpu(value)

    assert repr(value) in str(caught.value)
    assert "'H100:2'" in str(caught.value)
