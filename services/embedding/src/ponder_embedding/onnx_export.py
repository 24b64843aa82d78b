"""`python -m ponder_embedding.onnx_export MODEL_DIR CACHE_DIR`: export the model to ONNX and
verify it against torch, in a process of its own (the service never imports torch)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ponder_embedding.onnx_backend import UNSUPPORTED_EXIT, OnnxUnsupportedError


def main(argv: list[str] | None = None) -> int:
    """Export and verify; exit 3 when the model cannot be served through ONNX."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("cache_dir", type=Path)
    args = parser.parse_args(argv)
    from ponder_embedding.model import load_sentence_transformer
    from ponder_embedding.onnx_backend import build_onnx_encoder

    model, _, _ = load_sentence_transformer(str(args.model_dir), "cpu")
    try:
        build_onnx_encoder(model, args.model_dir, args.cache_dir, threads=0)
    except OnnxUnsupportedError as exc:
        print(exc, file=sys.stderr)
        return UNSUPPORTED_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main())
