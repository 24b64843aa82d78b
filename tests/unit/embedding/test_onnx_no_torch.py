"""The embedding service on the ONNX backend never loads torch or sentence-transformers."""

from __future__ import annotations

import textwrap
from pathlib import Path

import grpc
import pytest

from ponder.embedding.v1 import embedding_service_pb2 as embedding_pb2
from ponder.embedding.v1 import embedding_service_pb2_grpc as embedding_grpc
from ponder_devstack import Stack, StackPorts


HEAVY = ("torch", "sentence_transformers", "transformers")

# Imported by the service's interpreter at start (PYTHONPATH): at exit it writes which heavy
# modules that process had imported.
SITECUSTOMIZE = """
import atexit, sys

def _report():
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})
    with open({out!r}, "w") as report:
        report.write("imported:" + ",".join(heavy))

atexit.register(_report)
"""


def mapped_libraries(pid: int) -> set[str]:
    """File names of the shared libraries mapped into process `pid`."""
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    return {Path(line.split()[-1]).name for line in maps if ".so" in line}


async def test_running_onnx_service_has_not_imported_torch(tmp_path):
    """A real embedding service process on the ONNX backend serves embeddings and cache
    lookups with no torch library mapped, and at exit none of torch, sentence_transformers
    or transformers is in its sys.modules."""
    hooks, report = tmp_path / "hooks", tmp_path / "modules.txt"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(
        textwrap.dedent(SITECUSTOMIZE).format(heavy=set(HEAVY), out=str(report))
    )
    stack = Stack(
        ports=StackPorts.free(),
        log_dir=tmp_path / "logs",
        extra_env={
            "PYTHONPATH": str(hooks),
            "PONDER_EMBEDDING_BACKEND": "onnx",
            "PONDER_EMBEDDING_DEVICE": "cpu",
            "PONDER_CACHE_PATH": str(tmp_path / "cache.sqlite3"),
            "PONDER_LOG_LEVEL": "WARNING",
        },
    )
    stack.services = [s for s in stack.services if s.name == "embedding"]
    stack.start()
    try:
        await stack.wait_ready(timeout=300)
        service = stack.service("embedding")
        async with grpc.aio.insecure_channel(service.address) as channel:
            stub = embedding_grpc.EmbeddingServiceStub(channel)
            reply = await stub.EmbedTexts(
                embedding_pb2.EmbedTextsRequest(texts=["attention"]),
                metadata=stack.internal_metadata(),
            )
            await stub.StoreCache(
                embedding_pb2.StoreCacheRequest(
                    namespace="ns", text="what is attention", payload=b"answer"
                ),
                metadata=stack.internal_metadata(),
            )
            await stub.LookupCache(
                embedding_pb2.LookupCacheRequest(namespace="ns", text="what is attention?"),
                metadata=stack.internal_metadata(),
            )
        assert reply.dimensions == 384
        assert service.process is not None
        libraries = mapped_libraries(service.process.pid)
        assert any(name.startswith("libonnxruntime") for name in libraries), libraries
        torch_libraries = {n for n in libraries if n.startswith(("libtorch", "libc10"))}
        assert torch_libraries == set()
    finally:
        codes = stack.stop()
    assert codes == {"embedding": 0}
    assert report.read_text() == "imported:"


@pytest.mark.parametrize("module", HEAVY)
def test_heavy_modules_are_named_right(module):
    """The names checked above are the top-level modules those packages import as."""
    import importlib.util

    assert importlib.util.find_spec(module) is not None
