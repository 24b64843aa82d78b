"""The deployment policies of issue 9 as checks that return what is wrong (an empty list when
nothing is), so tests can show both that deploy/ keeps them and that each check catches a
broken copy."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ponder_runtime.settings import ENV_PREFIX, ServiceSettings, env_name


Resource = dict[str, Any]
WORKLOADS = {"Deployment", "StatefulSet"}


def env_names(settings: type[ServiceSettings]) -> set[str]:
    """The environment variables a settings class reads."""
    return {env_name(settings, name) for name in settings.model_fields}


def of_kind(resources: Iterable[Resource], *kinds: str) -> list[Resource]:
    """The resources of these kinds."""
    return [r for r in resources if r["kind"] in kinds]


def named(resources: Iterable[Resource], kind: str, name: str) -> Resource:
    """The resource of that kind and name."""
    return next(r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name)


def pod(resource: Resource) -> dict[str, Any]:
    """A workload's pod spec."""
    spec: dict[str, Any] = resource["spec"]["template"]["spec"]
    return spec


def pod_labels(resource: Resource) -> dict[str, str]:
    """A workload's pod labels."""
    found: dict[str, str] = resource["spec"]["template"]["metadata"].get("labels", {})
    return found


def container_violations(resources: list[Resource]) -> list[str]:
    """Every container probed (readiness, liveness), with CPU and memory requests and limits,
    non-root, no privilege escalation, a read-only root, all capabilities dropped; no service
    account token mounted."""
    found = []
    for workload in of_kind(resources, *WORKLOADS):
        spec = pod(workload)
        name = workload["metadata"]["name"]
        if spec.get("securityContext", {}).get("runAsNonRoot") is not True:
            found.append(f"{name}: runAsNonRoot is not set")
        if spec.get("automountServiceAccountToken") is not False:
            found.append(f"{name}: mounts a service account token")
        for container in spec["containers"]:
            where = f"{name}/{container['name']}"
            found += [
                f"{where}: no {probe}"
                for probe in ("readinessProbe", "livenessProbe")
                if probe not in container
            ]
            resources_ = container.get("resources", {})
            found += [
                f"{where}: no {resource} {kind}"
                for kind in ("requests", "limits")
                for resource in ("cpu", "memory")
                if resource not in resources_.get(kind, {})
            ]
            security = container.get("securityContext", {})
            if security.get("allowPrivilegeEscalation") is not False:
                found.append(f"{where}: privilege escalation allowed")
            if security.get("readOnlyRootFilesystem") is not True:
                found.append(f"{where}: writable root filesystem")
            if security.get("capabilities", {}).get("drop") != ["ALL"]:
                found.append(f"{where}: capabilities not all dropped")
    return found


def selector_violations(resources: list[Resource]) -> list[str]:
    """Services and disruption budgets select some pod; autoscalers scale something."""
    pods = [pod_labels(w) for w in of_kind(resources, *WORKLOADS)]
    found = []
    for service in of_kind(resources, "Service"):
        selector = service["spec"].get("selector", {})
        if not any(selector.items() <= p.items() for p in pods):
            found.append(f"Service {service['metadata']['name']} selects no pods")
    for budget in of_kind(resources, "PodDisruptionBudget"):
        selector = budget["spec"]["selector"]["matchLabels"]
        if not any(selector.items() <= p.items() for p in pods):
            found.append(f"PodDisruptionBudget {budget['metadata']['name']} selects no pods")
    for scaler in of_kind(resources, "HorizontalPodAutoscaler"):
        target = scaler["spec"]["scaleTargetRef"]
        if not of_kind(
            (r for r in resources if r["metadata"]["name"] == target["name"]), target["kind"]
        ):
            found.append(f"HorizontalPodAutoscaler {scaler['metadata']['name']} scales nothing")
    return found


def config_violations(
    resources: list[Resource], services: dict[str, type[ServiceSettings]]
) -> list[str]:
    """The ConfigMap sets only variables some service reads (or OpenTelemetry's), and every
    service's downstream address and port (their defaults, 127.0.0.1, are wrong in a cluster)."""
    config: dict[str, str] = named(resources, "ConfigMap", "ponder-config")["data"]
    known = set().union(*(env_names(s) for s in services.values()))
    found = [
        f"ponder-config: no service reads {key}"
        for key in sorted(config)
        if key not in known and not key.startswith("OTEL_")
    ]
    for service, settings in services.items():
        needed = {n for n in env_names(settings) if n.endswith("_ADDR")}
        needed |= {f"{ENV_PREFIX}{service.upper()}_PORT", f"{ENV_PREFIX}HOST"}
        found += [f"ponder-config: {service} needs {n}" for n in sorted(needed - set(config))]
    return found
