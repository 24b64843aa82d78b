"""An ONNX Runtime encoder exported offline from the sentence-transformers model.

The transformer is exported once with torch.onnx (cached on disk, keyed by the weights'
digest) in a child process (`ponder_embedding.onnx_export`), which also stores torch's vectors
of a fixed sample beside the export; tokenization uses the model's own fast tokenizer
(`tokenizers`) and pooling follows the model's pooling config (mean or CLS, then normalization
when the model normalizes). At every start the encoder must reproduce the stored torch vectors
(cosine >= 0.99) before it serves, so the serving process never imports torch or
sentence-transformers; on these CPUs it encodes one query about 3x faster than torch (see
BENCHMARKS.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt


if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

Matrix = npt.NDArray[np.float32]

# Texts the ONNX encoder must reproduce before it replaces torch.
VERIFICATION_SAMPLE = (
    "How do transformers use attention?",
    "Retrieval-augmented generation grounds answers in documents.",
    "a",
    "Dense passage retrieval encodes questions and passages separately, then compares them "
    "with a dot product; a long input like this one checks padding and truncation as well. " * 6,
    "Cómo funciona la autorreflexión en agentes de lenguaje?",
)
MIN_AGREEMENT = 0.99
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Exit status of `python -m ponder_embedding.onnx_export` when the model cannot be served.
UNSUPPORTED_EXIT = 3


class OnnxUnsupportedError(Exception):
    """The model cannot be served through ONNX (pooling, layout, or missing files)."""


def _weights_digest(model_dir: Path) -> str:
    digest = hashlib.sha256()
    for name in sorted(p.name for p in model_dir.glob("*.safetensors")):
        digest.update(name.encode())
        digest.update((model_dir / name).read_bytes())
    if digest.digest() == hashlib.sha256().digest():
        raise OnnxUnsupportedError(f"{model_dir}: no safetensors weights")
    return digest.hexdigest()[:16]


def _pooling(model_dir: Path) -> str:
    """'mean' or 'cls', from the model's pooling config; raise for anything else."""
    path = model_dir / "1_Pooling" / "config.json"
    if not path.exists() or not (model_dir / "tokenizer.json").exists():
        raise OnnxUnsupportedError(f"{model_dir}: no pooling config or tokenizer.json")
    pooling = json.loads(path.read_text())
    if pooling.get("pooling_mode_mean_tokens"):
        return "mean"
    if pooling.get("pooling_mode_cls_token"):
        return "cls"
    raise OnnxUnsupportedError(f"{model_dir}: pooling {pooling} is not mean or CLS")


def onnx_path(model_dir: Path, cache_dir: Path) -> Path:
    """Where the export of the model in `model_dir` is cached."""
    return cache_dir / f"{model_dir.name}-{_weights_digest(model_dir)}.onnx"


def reference_path(onnx_file: Path) -> Path:
    """The torch vectors of VERIFICATION_SAMPLE stored beside an export."""
    return onnx_file.with_suffix(".reference.json")


def _agreement(reference: Matrix, candidate: Matrix) -> float:
    """The smallest cosine between corresponding rows."""
    return float(
        np.min(
            (reference * candidate).sum(axis=1)
            / (np.linalg.norm(reference, axis=1) * np.linalg.norm(candidate, axis=1))
        )
    )


def export_onnx(model: SentenceTransformer, target: Path) -> None:
    """Export the model's transformer (token embeddings out) to `target`."""
    import torch

    transformer = model[0].auto_model.eval()  # type: ignore[union-attr]

    class _LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = transformer

        def forward(
            self, input_ids: object, attention_mask: object, token_type_ids: object
        ) -> object:
            out = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    sample = model.tokenizer(["export sample"], return_tensors="pt")
    axes = {name: {0: "batch", 1: "sequence"} for name in (*_INPUTS, "last_hidden_state")}
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    # The TorchScript exporter is deprecated in favour of the dynamo one, which needs the
    # onnxscript package; the legacy path exports this BERT exactly (checked below) offline.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _export(torch, _LastHiddenState(), sample, partial, axes)
    partial.replace(target)


def _export(torch: Any, module: Any, sample: Any, path: Path, axes: dict[str, Any]) -> None:
    torch.onnx.export(
        module,
        tuple(sample[name] for name in _INPUTS),
        str(path),
        input_names=list(_INPUTS),
        output_names=["last_hidden_state"],
        dynamic_axes=axes,
        opset_version=17,
        dynamo=False,
    )


class OnnxEncoder:
    """Callable: texts -> vectors, like SentenceTransformer.encode for this model."""

    def __init__(self, onnx_path: Path, model_dir: Path, *, threads: int) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self._pooling = _pooling(model_dir)
        self.dimensions = 0  # known once it has encoded (set by load_onnx_encoder)
        modules = json.loads((model_dir / "modules.json").read_text())
        self._normalize = any(m["type"].endswith(".Normalize") for m in modules)
        config = json.loads((model_dir / "sentence_bert_config.json").read_text())
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(int(config.get("max_seq_length", 256)))
        self._tokenizer.enable_padding()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads must not spin: the vector search and the event loop need the
        # same cores right after a batch.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )

    def __call__(self, texts: list[str]) -> Matrix:
        """One vector per text."""
        encoded = self._tokenizer.encode_batch(texts)
        ids = np.asarray([e.ids for e in encoded], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encoded], dtype=np.int64)
        types = np.asarray([e.type_ids for e in encoded], dtype=np.int64)
        hidden = self._session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        )[0]
        if self._pooling == "cls":
            vectors = hidden[:, 0]
        else:
            weights = mask[..., None].astype(np.float32)
            vectors = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        vectors = np.asarray(vectors, dtype=np.float32)
        if self._normalize:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors


def build_onnx_encoder(
    model: SentenceTransformer, model_dir: Path, cache_dir: Path, *, threads: int
) -> OnnxEncoder:
    """Export (or reuse) the ONNX model, then check it against torch; raise when they differ.
    Stores torch's vectors of the sample beside the export for `load_onnx_encoder`."""
    _pooling(model_dir)
    target = onnx_path(model_dir, cache_dir)
    if not target.exists():
        logger.info("exporting the model to ONNX", extra={"path": str(target)})
        export_onnx(model, target)
    encoder = OnnxEncoder(target, model_dir, threads=threads)
    reference = np.asarray(model.encode(list(VERIFICATION_SAMPLE)), dtype=np.float32)
    agreement = _agreement(reference, encoder(list(VERIFICATION_SAMPLE)))
    if agreement < MIN_AGREEMENT:
        raise OnnxUnsupportedError(f"ONNX vectors disagree with torch (cosine {agreement:.4f})")
    stored = reference_path(target)
    partial = stored.with_suffix(".partial")
    partial.write_text(json.dumps({"min_cosine": agreement, "vectors": reference.tolist()}))
    partial.replace(stored)
    logger.info("ONNX encoder verified", extra={"min_cosine": round(agreement, 6)})
    return encoder


def _export_in_child(model_dir: Path, cache_dir: Path) -> None:
    """Export and verify in a separate process, so torch never loads into this one."""
    done = subprocess.run(
        [sys.executable, "-m", "ponder_embedding.onnx_export", str(model_dir), str(cache_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode == 0:
        return
    reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
    if done.returncode == UNSUPPORTED_EXIT:
        raise OnnxUnsupportedError(reason)
    raise RuntimeError(f"ONNX export failed ({done.returncode}): {reason}")


def load_onnx_encoder(model_dir: Path, cache_dir: Path, *, threads: int) -> OnnxEncoder:
    """The ONNX encoder of the model in `model_dir`, without importing torch: exported and
    verified once by a child process, then checked against the stored torch vectors."""
    _pooling(model_dir)
    target = onnx_path(model_dir, cache_dir)
    stored = reference_path(target)
    if not (target.exists() and stored.exists()):
        logger.info("exporting the model to ONNX in a child process", extra={"path": str(target)})
        _export_in_child(model_dir, cache_dir)
    encoder = OnnxEncoder(target, model_dir, threads=threads)
    reference = np.asarray(json.loads(stored.read_text())["vectors"], dtype=np.float32)
    candidate = encoder(list(VERIFICATION_SAMPLE))
    if reference.shape != candidate.shape:
        raise OnnxUnsupportedError(f"ONNX vectors {candidate.shape} vs torch {reference.shape}")
    agreement = _agreement(reference, candidate)
    if agreement < MIN_AGREEMENT:
        raise OnnxUnsupportedError(f"ONNX vectors disagree with torch (cosine {agreement:.4f})")
    encoder.dimensions = int(candidate.shape[1])
    logger.info("ONNX encoder verified", extra={"min_cosine": round(agreement, 6)})
    return encoder
