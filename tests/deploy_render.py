"""Renders the kustomize base in deploy/kubernetes into its Kubernetes objects.

With kubectl on PATH, `kubectl kustomize` renders it (what an operator runs). Without it, the
built-in renderer assembles the same objects from the kustomization itself: the files under
`resources` and the ConfigMaps of `configMapGenerator`. It knows only the features the base uses
and refuses any other, so a base that outgrows it fails loudly instead of rendering wrong.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

Object = dict[str, Any]
# The oldest Kubernetes the base supports and the newest schema kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.30", "1.37")
_KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources", "configMapGenerator"}
_GENERATOR_KEYS = {"name", "files", "options"}
_OPTION_KEYS = {"disableNameSuffixHash", "labels"}


def render_kubectl(base: Path) -> list[Object]:
    """The objects `kubectl kustomize base` prints."""
    out = subprocess.run(
        ["kubectl", "kustomize", str(base)], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def render_builtin(base: Path) -> list[Object]:
    """The objects of the kustomization in `base`, assembled without kustomize."""
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    _known(kustomization, _KUSTOMIZATION_KEYS, "kustomization")
    objects: list[Object] = []
    for resource in kustomization.get("resources", []):
        docs = yaml.safe_load_all((base / resource).read_text())
        objects += [doc for doc in docs if doc]
    for generator in kustomization.get("configMapGenerator", []):
        objects.append(_config_map(base, generator))
    return objects


def _config_map(base: Path, generator: dict[str, Any]) -> Object:
    _known(generator, _GENERATOR_KEYS, f"configMapGenerator {generator.get('name')}")
    options = generator.get("options", {})
    _known(options, _OPTION_KEYS, "configMapGenerator options")
    if not options.get("disableNameSuffixHash"):
        raise NotImplementedError("name suffix hashes: render with kubectl kustomize")
    data = {}
    for entry in generator.get("files", []):
        key, _, path = entry.rpartition("=")
        data[key or Path(path).name] = (base / path).read_text()
    metadata: dict[str, Any] = {"name": generator["name"]}
    if options.get("labels"):
        metadata["labels"] = dict(options["labels"])
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def _known(section: dict[str, Any], keys: set[str], where: str) -> None:
    unknown = set(section) - keys
    if unknown:
        raise NotImplementedError(f"{where}: {sorted(unknown)} needs kubectl kustomize")


def renderers() -> dict[str, Callable[[Path], list[Object]]]:
    """The renderers available here: always the built-in one, kubectl when it is on PATH."""
    found: dict[str, Callable[[Path], list[Object]]] = {"builtin": render_builtin}
    if shutil.which("kubectl"):
        found["kubectl"] = render_kubectl
    return found
