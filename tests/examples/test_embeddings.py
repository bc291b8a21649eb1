"""The embedding example on the real all-MiniLM-L6-v2 weights."""

from __future__ import annotations

import math
import sys
from typing import Any

import pytest

import gpuserve
from gpuserve.testing import EndpointTestClient

from ..conftest import REPO

pytest.importorskip("torch", reason="the embedding example needs the examples extra (torch, transformers)")
pytest.importorskip("transformers", reason="the embedding example needs the examples extra (torch, transformers)")
sys.path.insert(0, str(REPO / "examples"))
from embeddings import Embed, _model_dir  # noqa: E402

SENTENCES = [
    "A man is playing a guitar.",
    "Someone is strumming a guitar on stage.",
    "The stock market fell sharply today.",
]


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def client() -> Any:
    with EndpointTestClient(Embed) as test_client:
        yield test_client


def test_vectors_are_384_dims_and_normalized(client: EndpointTestClient) -> None:
    vectors = client.predict(texts=SENTENCES)
    assert len(vectors) == 3
    assert all(len(vector) == 384 for vector in vectors)
    for vector in vectors:
        assert math.isclose(math.sqrt(_dot(vector, vector)), 1.0, rel_tol=1e-4)


def test_similar_sentences_score_higher(client: EndpointTestClient) -> None:
    vectors = client.predict(texts=SENTENCES)
    assert _dot(vectors[0], vectors[1]) > 0.5
    assert _dot(vectors[0], vectors[2]) < 0.2


def test_matches_sentence_transformers(client: EndpointTestClient) -> None:
    sentence_transformers = pytest.importorskip(
        "sentence_transformers", reason="reference implementation not installed"
    )
    reference = sentence_transformers.SentenceTransformer(_model_dir(), device="cpu").encode(
        SENTENCES, normalize_embeddings=True
    )
    vectors = client.predict(texts=SENTENCES)
    for ours, theirs in zip(vectors, reference.tolist(), strict=True):
        assert max(abs(a - b) for a, b in zip(ours, theirs, strict=True)) < 1e-4


def test_empty_list_rejected(client: EndpointTestClient) -> None:
    with pytest.raises(gpuserve.InvalidInputError) as info:
        client.predict(texts=[])
    assert info.value.errors[0]["loc"] == ["texts"]


def test_deployed_on_local_backend() -> None:
    deployment = gpuserve.deploy(Embed, name="embed-test")
    try:
        vectors = deployment.predict(texts=SENTENCES[:2])
        assert len(vectors[0]) == 384
        assert _dot(vectors[0], vectors[1]) > 0.5
        assert deployment.status()["last_cold_start_seconds"] > 0
    finally:
        deployment.delete()
