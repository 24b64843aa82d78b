"""The service images (`make images`: built offline on a stand-in base) run as the manifests in
deploy/base run them: read-only root filesystem, uid 10001, every capability dropped, no
privilege escalation, tmpfs /tmp, a volume for /var/lib/ponder; on the host network, bound to
127.0.0.1 on free ports. Docker is arranged by `make images` (installed and started as root when
missing); when it cannot run, these tests fail, they are never skipped."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import yaml

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as pb_grpc
from ponder_devstack import StackPorts
from ponder_devstack.fake_apis import FakeApi
from ponder_runtime.health import check_health


ROOT = Path(__file__).resolve().parents[2]
DOCKER = "/usr/bin/docker"  # docker.io's client (BuildKit built in), as the Makefile uses
TAG = "dev"
SERVICES = ("embedding", "research", "reflection", "gateway")  # start order; stop reversed
# Upper bounds of the image sizes reported in BENCHMARKS.md ("Container images"), in MB.
SIZE_BOUNDS_MB = {"gateway": 400, "research": 400, "reflection": 400, "embedding": 2000}
START_TIMEOUT_S = 300.0  # the embedding service imports torch and exports ONNX on 2 cores
# `make images` on a clean machine (mmdebstrap, the wheelhouse, four builds) and the starts.
pytestmark = pytest.mark.timeout(1800)


def docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    """Run the docker client; return its stdout (fail with its stderr when check)."""
    done = subprocess.run(
        [DOCKER, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check:
        assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr}"
    return done.stdout


def hardening(service: str) -> list[str]:
    """`docker run` options for what deploy/base/<service>.yaml asks of the pod: its user,
    read-only root, dropped capabilities, no privilege escalation; emptyDirs become a tmpfs
    for /tmp and a volume elsewhere (added by the caller)."""
    documents = yaml.safe_load_all((ROOT / "deploy" / "base" / f"{service}.yaml").read_text())
    deployment = next(d for d in documents if d and d["kind"] == "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    container = spec["containers"][0]
    pod_security, security = spec["securityContext"], container["securityContext"]
    options = ["--user", f"{pod_security['runAsUser']}:{pod_security['runAsGroup']}"]
    assert security["readOnlyRootFilesystem"] is True
    options.append("--read-only")
    options += [f"--cap-drop={cap}" for cap in security["capabilities"]["drop"]]
    assert security["allowPrivilegeEscalation"] is False
    options += ["--security-opt", "no-new-privileges"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"/tmp", "/var/lib/ponder"}, mounts
    options += ["--tmpfs", "/tmp:rw,nosuid,nodev,size=256m"]
    return options


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """`make images` once per session: Docker arranged, the stand-in base, the wheelhouse and
    the four builds with `--network none` (cached: a second run rebuilds nothing)."""
    done = subprocess.run(
        ["make", "--no-print-directory", "images", f"IMAGE_TAG={TAG}"],
        capture_output=True, text=True, timeout=1800, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {service: f"ponder-{service}:{TAG}" for service in SERVICES}


@dataclass
class Containers:
    """Containers started by a test module, and their volumes; removed at the end."""

    prefix: str = field(default_factory=lambda: f"ponder-test-{uuid.uuid4().hex[:8]}")
    names: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    def run(self, service: str, image: str, env: dict[str, str], network: str = "host") -> str:
        """Start one hardened container of `image` with its own volume; return its name."""
        name, volume = f"{self.prefix}-{service}", f"{self.prefix}-{service}-data"
        docker("volume", "create", volume)
        self.volumes.append(volume)
        environment = [item for key, value in env.items() for item in ("--env", f"{key}={value}")]
        docker(
            "run", "--detach", "--name", name, f"--network={network}", *hardening(service),
            "--mount", f"type=volume,source={volume},target=/var/lib/ponder",
            *environment, image,
        )  # fmt: skip
        self.names.append(name)
        return name

    def running(self, name: str) -> bool:
        """Whether the container still runs."""
        return docker("inspect", "--format", "{{.State.Running}}", name).strip() == "true"

    def logs(self, name: str) -> str:
        """Its stdout and stderr so far."""
        done = subprocess.run(
            [DOCKER, "logs", name], capture_output=True, text=True, timeout=60, check=False
        )
        return done.stdout + done.stderr

    def stop(self, name: str, timeout: float = 120) -> int:
        """SIGTERM (as the kubelet sends), then wait for the exit; return the exit status."""
        docker("kill", "--signal", "TERM", name)
        return int(docker("wait", name, timeout=timeout).strip())

    def remove(self) -> None:
        """Remove every container and volume (whatever state they are in)."""
        for name in self.names:
            docker("rm", "--force", "--volumes", name, check=False)
        for volume in self.volumes:
            docker("volume", "rm", "--force", volume, check=False)


async def wait_serving(containers: Containers, name: str, address: str) -> None:
    """Wait until the gRPC health service at `address` says SERVING; fail with the container's
    log when it exits or takes too long."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        async with grpc.aio.insecure_channel(address) as channel:
            if await check_health(channel, timeout=1.0) == "SERVING":
                return
        assert containers.running(name), f"{name} exited:\n{containers.logs(name)[-3000:]}"
        assert time.monotonic() < deadline, f"{name} not SERVING:\n{containers.logs(name)[-3000:]}"
        await asyncio.sleep(0.5)


def test_image_sizes_stay_within_their_bounds(images: dict[str, str]):
    """Gateway, research and reflection stay small (no torch); the embedding image carries
    torch, onnxruntime and the model (BENCHMARKS.md says what dominates)."""
    sizes = {
        service: int(docker("image", "inspect", "--format", "{{.Size}}", image)) / 1e6
        for service, image in images.items()
    }
    for service, size in sizes.items():
        assert size <= SIZE_BOUNDS_MB[service], (service, round(size))
    light = max(sizes[s] for s in ("gateway", "research", "reflection"))
    assert sizes["embedding"] > 3 * light, sizes


def test_the_embedding_image_starts_offline_with_its_model_inside(images: dict[str, str]):
    """With no network at all (--network none) and the manifests' hardening, the embedding
    service loads the all-MiniLM-L6-v2 packaged in the image and reports SERVING; SIGTERM ends
    it with status 0."""
    containers = Containers()
    try:
        name = containers.run(
            "embedding", images["embedding"], {"PONDER_EMBEDDING_PORT": "50054"}, network="none"
        )
        probe = (
            "import asyncio, grpc\n"
            "from ponder_runtime.health import check_health\n"
            "async def main():\n"
            "    async with grpc.aio.insecure_channel('127.0.0.1:50054') as channel:\n"
            "        print(await check_health(channel, timeout=2.0))\n"
            "asyncio.run(main())\n"
        )
        deadline, status = time.monotonic() + START_TIMEOUT_S, ""
        while status != "SERVING":
            assert containers.running(name), containers.logs(name)[-3000:]
            assert time.monotonic() < deadline, containers.logs(name)[-3000:]
            time.sleep(1.0)
            status = docker("exec", name, "python", "-c", probe, check=False).strip()
        interfaces = docker("exec", name, "cat", "/proc/net/dev")
        assert {line.split(":")[0].strip() for line in interfaces.splitlines()[2:]} == {"lo"}
        logs = [json.loads(line) for line in containers.logs(name).splitlines() if "{" in line]
        loaded = [entry for entry in logs if entry.get("message") == "model loaded"]
        assert len(loaded) == 1, logs[-5:]
        assert loaded[0]["model"] == "all-MiniLM-L6-v2"
        assert loaded[0]["dimensions"] == 384
        assert containers.stop(name) == 0, containers.logs(name)[-3000:]
    finally:
        containers.remove()


@dataclass
class ContainerStack:
    """The four services as containers on the host network."""

    ports: StackPorts
    containers: Containers
    names: dict[str, str]

    @property
    def gateway(self) -> str:
        """The gateway's gRPC address."""
        return f"127.0.0.1:{self.ports.gateway}"

    @property
    def http_url(self) -> str:
        """The gateway's REST base URL."""
        return f"http://127.0.0.1:{self.ports.gateway_http}"


@pytest.fixture(scope="module")
def container_stack(
    images: dict[str, str], fake_arxiv: FakeApi, fake_tavily: FakeApi
) -> Iterator[ContainerStack]:
    """embedding, research, reflection and gateway containers, each SERVING; the research
    service talks to the fake arXiv and Tavily servers on 127.0.0.1."""
    ports = StackPorts.free()
    env = {
        "PONDER_HOST": "127.0.0.1",
        "PONDER_LOG_FORMAT": "json",
        "PONDER_SHUTDOWN_GRACE_SECONDS": "30",
        "PONDER_GATEWAY_HTTP_PORT": str(ports.gateway_http),
        "PONDER_RESEARCH_ARXIV_API_URL": f"{fake_arxiv.base_url}/api/query",
        "PONDER_RESEARCH_ARXIV_MIN_INTERVAL_SECONDS": "0",
        "PONDER_RESEARCH_TAVILY_API_URL": fake_tavily.base_url,
        "TAVILY_API_KEY": "tvly-test-key",
    }
    for service in SERVICES:
        env[f"PONDER_{service.upper()}_PORT"] = str(getattr(ports, service))
        env[f"PONDER_{service.upper()}_ADDR"] = f"127.0.0.1:{getattr(ports, service)}"
    containers = Containers()
    try:
        names = {service: containers.run(service, images[service], env) for service in SERVICES}
        for service in SERVICES:
            address = f"127.0.0.1:{getattr(ports, service)}"
            asyncio.run(wait_serving(containers, names[service], address))
        yield ContainerStack(ports, containers, names)
    finally:
        containers.remove()


def test_a_workflow_over_rest_returns_a_cited_result(container_stack: ContainerStack):
    """POST /v1/workflows/reflection on the gateway container: SUCCEEDED with citations, each
    pointing at a source the research container found."""
    topic = f"self-refine iterative refinement with feedback ({uuid.uuid4().hex[:8]})"
    reply = httpx.post(
        f"{container_stack.http_url}/v1/workflows/reflection", json={"topic": topic}, timeout=180
    )
    assert reply.status_code == 200, reply.text
    workflow: dict[str, Any] = reply.json()["workflow"]
    assert workflow["state"] == "WORKFLOW_STATE_SUCCEEDED", workflow
    citations = workflow["result"]["citations"]
    assert citations
    assert all(c["url"].startswith("http") for c in citations)
    sources = {document["url"] for document in workflow["result"]["sources"]}
    assert {c["url"] for c in citations} <= sources


def test_a_workflow_over_grpc_returns_a_cited_result(container_stack: ContainerStack):
    """RunWorkflow (research then reflection) over gRPC: SUCCEEDED, cited, every step done."""
    topic = f"retrieval-augmented generation for knowledge-intensive tasks ({uuid.uuid4().hex[:8]})"
    with grpc.insecure_channel(container_stack.gateway) as channel:
        reply = pb_grpc.WorkflowServiceStub(channel).RunWorkflow(
            pb.RunWorkflowRequest(
                workflow=pb.Workflow(kind=pb.WORKFLOW_KIND_RESEARCH_REFLECTION, topic=topic)
            ),
            timeout=180,
        )
    workflow = reply.workflow
    assert workflow.state == pb.WORKFLOW_STATE_SUCCEEDED, workflow
    assert workflow.result.citations
    assert all(c.url.startswith("http") for c in workflow.result.citations)
    assert workflow.steps
    assert all(s.state == pb.STEP_STATE_SUCCEEDED for s in workflow.steps)


def test_sigterm_drains_each_container_and_it_exits_0(container_stack: ContainerStack):
    """SIGTERM, gateway first as in a rollout: each container logs that it drains and exits 0
    (last in this module: it ends the stack)."""
    for service in reversed(SERVICES):
        name = container_stack.names[service]
        status = container_stack.containers.stop(name)
        logs = container_stack.containers.logs(name)
        assert status == 0, (service, logs[-3000:])
        assert '"draining"' in logs, (service, logs[-3000:])
