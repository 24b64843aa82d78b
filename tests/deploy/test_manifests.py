"""deploy/: every overlay renders (ponder_devstack.kustomize; `kubectl kustomize` renders the
same), validates strictly against Kubernetes' schemas, and keeps the policies the issue asks
for: probes, limits, non-root, read-only root, drained shutdowns, Services and budgets that
select pods, settings the code knows, default-deny in production."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic_settings import BaseSettings

from ponder_devstack.kustomize import render
from ponder_embedding.settings import EmbeddingSettings
from ponder_gateway.settings import GatewaySettings
from ponder_reflection.settings import ReflectionSettings
from ponder_research.settings import ResearchSettings
from ponder_runtime.settings import ENV_PREFIX


DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
OVERLAYS = ["base", "overlays/dev", "overlays/prod"]
SETTINGS: dict[str, type[BaseSettings]] = {
    "gateway": GatewaySettings,
    "research": ResearchSettings,
    "reflection": ReflectionSettings,
    "embedding": EmbeddingSettings,
}
GRPC_PORTS = {"gateway": 50051, "research": 50052, "reflection": 50053, "embedding": 50054}
# Kubernetes versions to validate against: a widely deployed one and the newest schemas.
VERSIONS = ["1.32.0", kubernetes_validate.latest_version()]
WORKLOADS = {"Deployment", "StatefulSet"}

Resource = dict[str, Any]


def env_names(settings: type[BaseSettings]) -> set[str]:
    """The environment variables a settings class reads."""
    names = set()
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        names.add(alias if isinstance(alias, str) else f"{ENV_PREFIX}{name.upper()}")
    return names


def rendered(overlay: str) -> list[Resource]:
    """The overlay's resources."""
    return render(DEPLOY / overlay)


def of_kind(resources: list[Resource], *kinds: str) -> list[Resource]:
    """The resources of these kinds."""
    return [r for r in resources if r["kind"] in kinds]


def named(resources: list[Resource], kind: str, name: str) -> Resource:
    """The resource of that kind and name."""
    return next(r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name)


def pod(resource: Resource) -> dict[str, Any]:
    """A workload's pod spec."""
    spec: dict[str, Any] = resource["spec"]["template"]["spec"]
    return spec


def labels(resource: Resource) -> dict[str, str]:
    """A workload's pod labels."""
    found: dict[str, str] = resource["spec"]["template"]["metadata"]["labels"]
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", VERSIONS)
def test_every_resource_validates_strictly(overlay: str, version: str):
    resources = rendered(overlay)
    assert resources
    for resource in resources:
        kubernetes_validate.validate(resource, version, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_probed_limited_and_locked_down(overlay: str):
    for workload in of_kind(rendered(overlay), *WORKLOADS):
        spec = pod(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True, workload["metadata"]["name"]
        assert spec["automountServiceAccountToken"] is False
        for container in spec["containers"]:
            where = f"{workload['metadata']['name']}/{container['name']}"
            assert "readinessProbe" in container, where
            assert "livenessProbe" in container, where
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][kind]), where
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["capabilities"]["drop"] == ["ALL"], where


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
def test_services_budgets_and_autoscalers_find_their_pods(overlay: str):
    resources = rendered(overlay)
    pods = [labels(w) for w in of_kind(resources, *WORKLOADS)]
    for service in of_kind(resources, "Service"):
        selector = service["spec"]["selector"]
        assert any(selector.items() <= p.items() for p in pods), service["metadata"]["name"]
    for budget in of_kind(resources, "PodDisruptionBudget"):
        selector = budget["spec"]["selector"]["matchLabels"]
        assert any(selector.items() <= p.items() for p in pods), budget["metadata"]["name"]
    for scaler in of_kind(resources, "HorizontalPodAutoscaler"):
        target = scaler["spec"]["scaleTargetRef"]
        named(resources, target["kind"], target["name"])  # raises StopIteration if missing
        assert scaler["spec"]["minReplicas"] >= 2


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_config_map_holds_only_known_settings_and_every_address(overlay: str):
    config = named(rendered(overlay), "ConfigMap", "ponder-config")["data"]
    known = set().union(*(env_names(s) for s in SETTINGS.values()))
    unknown = {k for k in config if k not in known and not k.startswith("OTEL_")}
    assert not unknown, f"no service reads {sorted(unknown)}"
    for service, settings in SETTINGS.items():
        for name in env_names(settings):
            if name.endswith("_ADDR"):  # defaults are 127.0.0.1: wrong in a cluster
                assert name in config, f"{service} needs {name}"
        assert f"{ENV_PREFIX}{service.upper()}_PORT" in config
    assert config["PONDER_HOST"] == "0.0.0.0"


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
        pod_labels = labels(workload)
        ingress = [
            p
            for p in policies
            if "Ingress" in p["spec"]["policyTypes"]
            and p["spec"]["podSelector"]
            and p["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
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


def test_the_gpu_component_puts_embedding_on_a_gpu():
    resources = render(DEPLOY / "base")
    component = DEPLOY / "components" / "gpu-embedding"
    assert (component / "kustomization.yaml").exists()
    from ponder_devstack.kustomize import _build  # a component applies to a base

    with_gpu = _build(component, component=True, base=resources)
    embedding = named(with_gpu, "Deployment", "embedding")
    container = pod(embedding)["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {"name": "PONDER_EMBEDDING_DEVICE", "value": "cuda"} in container["env"]
    assert "cuda" in EmbeddingSettings.model_fields["device"].annotation.__args__  # type: ignore[union-attr]
    for version in VERSIONS:
        kubernetes_validate.validate(embedding, version, strict=True)


@pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl is not installed on this machine"
)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_renderer_agrees_with_kubectl_kustomize(overlay: str):
    done = subprocess.run(
        ["kubectl", "kustomize", str(DEPLOY / overlay)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    theirs = [doc for doc in yaml.safe_load_all(done.stdout) if doc]

    def key(resource: Resource) -> tuple[str, str]:
        return resource["kind"], resource["metadata"]["name"]

    assert sorted(rendered(overlay), key=key) == sorted(theirs, key=key)
