"""ponder_devstack.kustomize: the kustomize subset deploy/ uses, and errors for the rest."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from ponder_devstack.kustomize import KustomizeError, render


def write(directory: Path, name: str, *docs: Mapping[str, Any]) -> None:
    """YAML documents into directory/name."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(yaml.safe_dump_all(docs))


DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "replicas": 1,
        "template": {
            "spec": {
                "containers": [
                    {"name": "web", "image": "web", "env": [{"name": "A", "value": "1"}]},
                    {"name": "side", "image": "side:1.0"},
                ]
            }
        },
    },
}


def test_resources_components_patches_replicas_images_and_labels(tmp_path: Path):
    base = tmp_path / "base"
    write(base, "web.yaml", DEPLOYMENT)
    write(
        base,
        "kustomization.yaml",
        {"resources": ["web.yaml"], "images": [{"name": "web", "newTag": "2.0"}]},
    )
    component = tmp_path / "component"
    write(
        component, "cm.yaml", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    )
    write(component, "kustomization.yaml", {"kind": "Component", "resources": ["cm.yaml"]})
    overlay = tmp_path / "overlay"
    patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "env": [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}],
                        }
                    ]
                }
            }
        },
    }
    write(overlay, "patch.yaml", patch)
    write(
        overlay,
        "kustomization.yaml",
        {
            "resources": ["../base"],
            "components": ["../component"],
            "patches": [{"path": "patch.yaml"}],
            "replicas": [{"name": "web", "count": 3}],
            "images": [{"name": "side", "newName": "registry/side"}],
            "labels": [{"pairs": {"team": "ponder"}}],
        },
    )
    web, config = render(overlay)
    assert web["spec"]["replicas"] == 3
    containers = web["spec"]["template"]["spec"]["containers"]
    assert [c["image"] for c in containers] == ["web:2.0", "registry/side:1.0"]
    assert containers[0]["env"] == [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}]
    assert web["metadata"]["labels"] == {"team": "ponder"}
    assert config["metadata"] == {"name": "c", "labels": {"team": "ponder"}}


@pytest.mark.parametrize(
    "spec",
    [
        {"resources": [], "namePrefix": "x-"},  # not supported: an error, never ignored
        {"resources": [], "patches": [{"patch": "inline"}]},
        {"kind": "Component", "resources": []},  # a component where a kustomization belongs
    ],
)
def test_what_it_does_not_support_is_an_error(tmp_path: Path, spec: dict[str, object]):
    write(tmp_path, "kustomization.yaml", spec)
    with pytest.raises(KustomizeError):
        render(tmp_path)
