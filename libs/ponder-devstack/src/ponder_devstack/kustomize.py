"""Render a kustomization without kubectl: the subset of kustomize that `deploy/` uses.

`kubectl kustomize` is not on every machine, so the deployment tests render with this and,
where kubectl exists, check that both give the same resources (tests/deploy). Supported:
`resources` (files and directories), `components` (kind: Component), `labels` (`pairs`, added
to metadata only), `images` (`newName`, `newTag`, `digest`), `replicas`, and `patches` given by
`path` (strategic merge: maps merge, lists of named maps merge by `name`, other lists are
replaced) whose target is the patch's own kind and name. Anything else is an error, so a
manifest never silently renders differently from kustomize.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml


Resource = dict[str, Any]
_KNOWN = {
    "apiVersion",
    "kind",
    "resources",
    "components",
    "labels",
    "images",
    "replicas",
    "patches",
}


class KustomizeError(Exception):
    """The kustomization uses something this renderer does not support, or is wrong."""


def render(directory: Path) -> list[Resource]:
    """The resources `directory`'s kustomization.yaml builds, in order."""
    return _build(directory.resolve(), component=False)


def apply_component(directory: Path, resources: list[Resource]) -> list[Resource]:
    """`resources` with the Component in `directory` applied (as an overlay listing it would)."""
    return _build(directory.resolve(), component=True, base=copy.deepcopy(resources))


def _load(path: Path) -> list[Resource]:
    with path.open() as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc]


def _build(
    directory: Path, *, component: bool, base: list[Resource] | None = None
) -> list[Resource]:
    spec = _load(directory / "kustomization.yaml")[0]
    unknown = set(spec) - _KNOWN
    if unknown:
        raise KustomizeError(f"{directory}: unsupported fields {sorted(unknown)}")
    expected = "Component" if component else "Kustomization"
    if spec.get("kind", "Kustomization") != expected:
        raise KustomizeError(f"{directory}: expected kind {expected}")
    resources: list[Resource] = base if base is not None else []
    for entry in spec.get("resources", []):
        path = directory / entry
        resources.extend(_build(path, component=False) if path.is_dir() else _load(path))
    for entry in spec.get("components", []):
        resources = _build(directory / entry, component=True, base=resources)
    for entry in spec.get("patches", []):
        _patch(resources, directory, entry)
    for entry in spec.get("replicas", []):
        _replicas(resources, entry)
    for entry in spec.get("images", []):
        _set_image(resources, entry)
    for entry in spec.get("labels", []):
        if set(entry) - {"pairs"}:
            raise KustomizeError(f"{directory}: labels support `pairs` only")
        for resource in resources:
            resource.setdefault("metadata", {}).setdefault("labels", {}).update(entry["pairs"])
    return resources


def _patch(resources: list[Resource], directory: Path, entry: dict[str, Any]) -> None:
    if set(entry) != {"path"}:
        raise KustomizeError(f"{directory}: only `path` patches are supported: {entry}")
    for patch in _load(directory / entry["path"]):
        target = _target(resources, patch["kind"], patch["metadata"]["name"])
        merged = _merge(target, patch)
        target.clear()
        target.update(merged)


def _replicas(resources: list[Resource], entry: dict[str, Any]) -> None:
    found = [
        r
        for r in resources
        if r["metadata"]["name"] == entry["name"] and "replicas" in r.get("spec", {})
    ]
    if not found:
        raise KustomizeError(f"replicas for unknown {entry['name']}")
    for resource in found:
        resource["spec"]["replicas"] = entry["count"]


def _target(resources: list[Resource], kind: str, name: str) -> Resource:
    for resource in resources:
        if resource["kind"] == kind and resource["metadata"]["name"] == name:
            return resource
    raise KustomizeError(f"patch target {kind}/{name} not found")


def _merge(into: Any, patch: Any) -> Any:
    """Strategic merge, as far as `deploy/` needs it."""
    if isinstance(into, dict) and isinstance(patch, dict):
        merged = dict(into)
        for key, value in patch.items():
            merged[key] = _merge(into[key], value) if key in into else copy.deepcopy(value)
        return merged
    if (
        isinstance(into, list)
        and isinstance(patch, list)
        and all(isinstance(i, dict) and "name" in i for i in [*into, *patch])
    ):
        merged_list = [copy.deepcopy(i) for i in into]
        for item in patch:
            names = [i["name"] for i in merged_list]
            if item["name"] in names:
                index = names.index(item["name"])
                merged_list[index] = _merge(merged_list[index], item)
            else:
                merged_list.append(copy.deepcopy(item))
        return merged_list
    return copy.deepcopy(patch)


def _containers(resource: Resource) -> list[dict[str, Any]]:
    pod = resource.get("spec", {}).get("template", {}).get("spec", {})
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def _set_image(resources: list[Resource], entry: dict[str, str]) -> None:
    for resource in resources:
        for container in _containers(resource):
            image: str = container["image"]
            name, _, tag = image.partition(":") if "@" not in image else (image, "", "")
            if name != entry["name"]:
                continue
            name = entry.get("newName", name)
            if "digest" in entry:
                container["image"] = f"{name}@{entry['digest']}"
            else:
                container["image"] = (
                    f"{name}:{entry.get('newTag', tag)}" if entry.get("newTag", tag) else name
                )
