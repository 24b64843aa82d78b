"""deploy/: every overlay renders (`kubectl kustomize`, the real kustomize), validates strictly
against Kubernetes' schemas, and keeps the policies the issue asks for: probes, limits,
non-root, read-only root, drained shutdowns, Services and budgets that select pods, settings the
code knows, default-deny in production."""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import kubernetes_validate
import pytest

from ponder_embedding.settings import EmbeddingSettings
from ponder_gateway.settings import GatewaySettings
from ponder_reflection.settings import ReflectionSettings
from ponder_research.settings import ResearchSettings
from ponder_runtime import ServiceSettings
from tests.deploy.kustomize import render
from tests.deploy.policies import (
    WORKLOADS,
    Resource,
    config_violations,
    container_violations,
    named,
    of_kind,
    pod,
    pod_labels,
    selector_violations,
)


DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
OVERLAYS = ["base", "overlays/dev", "overlays/dev-temporal", "overlays/prod"]
SETTINGS: dict[str, type[ServiceSettings]] = {
    "gateway": GatewaySettings,
    "research": ResearchSettings,
    "reflection": ReflectionSettings,
    "embedding": EmbeddingSettings,
}
GRPC_PORTS = {"gateway": 50051, "research": 50052, "reflection": 50053, "embedding": 50054}
# Kubernetes versions to validate against: a widely deployed one and the newest schemas.
VERSIONS = ["1.32.0", kubernetes_validate.latest_version()]


@functools.cache
def _rendered(overlay: str) -> tuple[Resource, ...]:
    return tuple(render(DEPLOY / overlay))


def rendered(overlay: str) -> list[Resource]:
    """The overlay's resources (rendered once per session; each caller gets its own copy)."""
    return copy.deepcopy(list(_rendered(overlay)))


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", VERSIONS)
def test_every_resource_validates_strictly(overlay: str, version: str):
    resources = rendered(overlay)
    assert resources
    for resource in resources:
        kubernetes_validate.validate(resource, version, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_policy_holds(overlay: str):
    resources = rendered(overlay)
    assert container_violations(resources) == []
    assert selector_violations(resources) == []
    assert config_violations(resources, SETTINGS) == []
    assert rendered(overlay) == resources  # the checks changed nothing


def _break(resources: list[Resource], how: str) -> None:
    gateway = pod(named(resources, "Deployment", "gateway"))
    container = gateway["containers"][0]
    config = named(resources, "ConfigMap", "ponder-config")["data"]
    if how == "no readiness probe":
        del container["readinessProbe"]
    elif how == "no memory limit":
        del container["resources"]["limits"]["memory"]
    elif how == "root":
        gateway["securityContext"]["runAsNonRoot"] = False
    elif how == "writable root":
        container["securityContext"]["readOnlyRootFilesystem"] = False
    elif how == "a Service selecting nothing":
        named(resources, "Service", "research")["spec"]["selector"] = {"app": "nothing"}
    elif how == "a missing address":
        del config["PONDER_EMBEDDING_ADDR"]
    elif how == "a misspelt setting":
        config["PONDER_GATEWAY_ALOW_ANONYMOUS"] = "false"


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("no readiness probe", "gateway/gateway: no readinessProbe"),
        ("no memory limit", "gateway/gateway: no memory limits"),
        ("root", "gateway: runAsNonRoot is not set"),
        ("writable root", "gateway/gateway: writable root filesystem"),
        ("a Service selecting nothing", "Service research selects no pods"),
        ("a missing address", "ponder-config: gateway needs PONDER_EMBEDDING_ADDR"),
        ("a misspelt setting", "ponder-config: no service reads PONDER_GATEWAY_ALOW_ANONYMOUS"),
    ],
)
def test_each_policy_catches_a_broken_copy(how: str, expected: str):
    resources = rendered("overlays/prod")
    _break(resources, how)
    found = [
        *container_violations(resources),
        *selector_violations(resources),
        *config_violations(resources, SETTINGS),
    ]
    assert expected in found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ponder_services_probe_grpc_health_and_drain_before_the_kill(overlay: str):
    resources = rendered(overlay)
    config = named(resources, "ConfigMap", "ponder-config")["data"]
    grace = float(config["PONDER_SHUTDOWN_GRACE_SECONDS"])
    for service, port in GRPC_PORTS.items():
        workload = named(resources, "Deployment", service)
        container = pod(workload)["containers"][0]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"]["port"] == port, (service, probe)
        pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert pod(workload)["terminationGracePeriodSeconds"] > grace + pause, service
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/var/lib/ponder", "/tmp"} <= mounts, "writable paths on a read-only root"
        assert container["image"].startswith(f"ponder-{service}:"), "a tagged image"
    embedding = pod(named(resources, "Deployment", "embedding"))["containers"][0]
    startup = embedding["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300  # the model's load


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscalers_keep_two_replicas_and_the_pods_listen_everywhere(overlay: str):
    resources = rendered(overlay)
    for scaler in of_kind(resources, "HorizontalPodAutoscaler"):
        assert scaler["spec"]["minReplicas"] >= 2
    assert named(resources, "ConfigMap", "ponder-config")["data"]["PONDER_HOST"] == "0.0.0.0"


def test_production_requires_keys_and_denies_by_default():
    resources = rendered("overlays/prod")
    base = rendered("base")
    for service in ("gateway", "embedding"):  # sized up, not just copied
        size = pod(named(resources, "Deployment", service))["containers"][0]["resources"]
        assert size != pod(named(base, "Deployment", service))["containers"][0]["resources"]
    config = named(resources, "ConfigMap", "ponder-config")["data"]
    assert config["PONDER_GATEWAY_ALLOW_ANONYMOUS"] == "false"
    policies = of_kind(resources, "NetworkPolicy")
    deny = named(resources, "NetworkPolicy", "default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for workload in of_kind(resources, *WORKLOADS):
        own = pod_labels(workload)
        ingress = [
            p
            for p in policies
            if "Ingress" in p["spec"]["policyTypes"]
            and p["spec"]["podSelector"]
            and p["spec"]["podSelector"]["matchLabels"].items() <= own.items()
        ]
        assert ingress, f"nothing may reach {workload['metadata']['name']}"
    to_internet = {
        p["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        for p in policies
        if any(
            "ipBlock" in peer for rule in p["spec"].get("egress", []) for peer in rule.get("to", [])
        )
    }
    assert to_internet == {"research", "reflection"}
    annotations = named(resources, "Ingress", "gateway")["metadata"]["annotations"]
    timeout = annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]
    assert int(timeout) >= 120  # longer than a workflow


def test_the_webhook_egress_component_opens_public_addresses_only():
    """deploy/components/webhook-egress: with the default-deny policies, the gateway may reach
    public addresses on 443 and 80 (webhooks), never the private, shared, link-local or
    loopback ranges; it validates against Kubernetes' schemas."""
    components = [DEPLOY / "components" / name for name in ("network-policies", "webhook-egress")]
    resources = render(DEPLOY / "base", components)
    policy = named(resources, "NetworkPolicy", "gateway-webhook-egress")
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "gateway"}
    (rule,) = policy["spec"]["egress"]
    (peer,) = rule["to"]
    assert peer["ipBlock"]["cidr"] == "0.0.0.0/0"
    closed = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "127.0.0.0/8"}
    assert closed <= set(peer["ipBlock"]["except"])
    assert sorted(p["port"] for p in rule["ports"]) == [80, 443]
    for version in VERSIONS:
        kubernetes_validate.validate(policy, version, strict=True)


def test_the_gpu_component_puts_embedding_on_a_gpu():
    component = DEPLOY / "components" / "gpu-embedding"
    assert (component / "kustomization.yaml").exists()
    with_gpu = render(DEPLOY / "base", [component])
    embedding = named(with_gpu, "Deployment", "embedding")
    container = pod(embedding)["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {"name": "PONDER_EMBEDDING_DEVICE", "value": "cuda"} in container["env"]
    assert "cuda" in EmbeddingSettings.model_fields["device"].annotation.__args__  # type: ignore[union-attr]
    for version in VERSIONS:
        kubernetes_validate.validate(embedding, version, strict=True)


def test_the_temporal_component_runs_workers_and_the_dev_server():
    """deploy/components/temporal: workers run `python -m ponder_gateway.worker` from the
    gateway image, an HPA and a PDB hold them, the config switches the engine and points at
    the dev server's Service (dev-temporal overlay), with settings the gateway knows."""
    resources = rendered("overlays/dev-temporal")
    worker = pod(named(resources, "Deployment", "worker"))["containers"][0]
    assert worker["command"] == ["python", "-m", "ponder_gateway.worker"]
    assert worker["image"].startswith("ponder-gateway")
    assert named(resources, "HorizontalPodAutoscaler", "worker")["spec"]["minReplicas"] >= 2
    assert named(resources, "PodDisruptionBudget", "worker")["spec"]["minAvailable"] >= 1
    config = named(resources, "ConfigMap", "ponder-config")["data"]
    assert config["PONDER_GATEWAY_ENGINE"] == "temporal"
    settings = GatewaySettings.model_validate(
        {k: v for k, v in config.items() if k.startswith("PONDER_TEMPORAL_")}
    )
    host, port = settings.temporal_address.split(":")
    frontend = named(resources, "Service", host)
    assert int(port) in [p["port"] for p in frontend["spec"]["ports"]]
    assert named(resources, "Deployment", "temporal")["spec"]["replicas"] == 1
    assert (
        "PONDER_GATEWAY_ENGINE"
        not in named(rendered("overlays/dev"), "ConfigMap", "ponder-config")["data"]
    )


INTERNAL_CALLERS = {
    "research": {"gateway"},
    "reflection": {"gateway"},
    "embedding": {"gateway", "research"},
}


def _reachers(resources: list[Resource], target: Resource) -> set[str] | None:
    """The workloads whose pods the ingress policies selecting `target` admit on its gRPC
    port; None when no policy selects it (everything may reach it)."""
    labels = pod_labels(target)
    policies = [
        p
        for p in of_kind(resources, "NetworkPolicy")
        if "Ingress" in p["spec"]["policyTypes"]
        and p["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()
        and p["spec"]["podSelector"]
    ]
    if not policies:
        return None
    found: set[str] = set()
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            assert "from" in rule, f"{policy['metadata']['name']} admits every pod"
            for peer in rule["from"]:
                assert set(peer) == {"podSelector"}, peer  # no namespaces, no address blocks
                wanted = peer["podSelector"]["matchLabels"].items()
                found |= {
                    w["metadata"]["name"]
                    for w in of_kind(resources, *WORKLOADS)
                    if wanted <= pod_labels(w).items()
                }
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_gateway_reaches_the_internal_services(overlay: str):
    """In every overlay, the base included: NetworkPolicies admit only the gateway (pods
    labelled ponder.dev/internal-client=true, the label a Temporal worker carries too) to
    research and reflection, and the gateway and research to embedding; every Ponder
    container reads PONDER_INTERNAL_TOKEN from a required key of the Secret ponder-internal,
    and the gateway (and a Temporal worker) reads its cache signing key from it too."""
    resources = rendered(overlay)
    gateway = named(resources, "Deployment", "gateway")
    assert pod_labels(gateway)["ponder.dev/internal-client"] == "true"
    # Temporal workers (dev-temporal) make the gateway's calls, so they are admitted with it.
    workers = {w["metadata"]["name"] for w in of_kind(resources, "Deployment")} & {"worker"}
    for service, callers in INTERNAL_CALLERS.items():
        admitted = callers | workers if "gateway" in callers else callers
        assert _reachers(resources, named(resources, "Deployment", service)) == admitted, service
    for service in [*GRPC_PORTS, *workers]:
        container = pod(named(resources, "Deployment", service))["containers"][0]
        secrets = {
            e["name"]: e["valueFrom"]["secretKeyRef"]
            for e in container.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        wanted = {"PONDER_INTERNAL_TOKEN": "internal-token"}
        if service in ("gateway", "worker"):
            wanted["PONDER_GATEWAY_CACHE_SIGNING_KEY"] = "cache-signing-key"
        for variable, key in wanted.items():
            ref = secrets[variable]
            assert (ref["name"], ref["key"]) == ("ponder-internal", key), service
            assert not ref.get("optional", False), service  # no token, no pod
