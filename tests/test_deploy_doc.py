"""docs/deploy.md's overlay example stays true to the base: it names the base's image, Deployment,
autoscaler, ConfigMap and exactly the Secrets the base references; where kubectl is installed,
it renders on top of the base and every object passes the strict Kubernetes schema.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from tests.deploy_render import KUBERNETES_VERSIONS, Object, render_builtin, render_kubectl

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "deploy.md"
BASE = ROOT / "deploy" / "kubernetes"
MARKER = "# my-overlay/kustomization.yaml\n"


def _overlay_text() -> str:
    (text,) = [b for b in re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S) if MARKER in b]
    return text


def _names(objects: list[Object], kind: str) -> set[str]:
    return {o["metadata"]["name"] for o in objects if o["kind"] == kind}


def _secret_refs(objects: list[Object]) -> dict[str, set[str]]:
    """Secret name -> the keys the base's pods read from it (env and volumes)."""
    refs: dict[str, set[str]] = {}
    for o in objects:
        if o["kind"] != "Deployment":
            continue
        pod = o["spec"]["template"]["spec"]
        for container in pod["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs.setdefault(ref["name"], set()).add(ref["key"])
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                refs.setdefault(volume["secret"]["secretName"], set())
    return refs


def _generated_keys(entry: dict[str, Any], files: dict[str, str]) -> set[str]:
    keys = {f.rpartition("=")[0] or Path(f).name for f in entry.get("files", [])}
    for env in entry.get("envs", []):
        keys |= {line.split("=", 1)[0] for line in files[env].splitlines() if "=" in line}
    return keys


def _example_files(overlay: dict[str, Any]) -> dict[str, str]:
    """The files the overlay's generators read, as the doc's shell block makes them."""
    files = {"router.yaml": (BASE / "router.yaml").read_text(), "keys.yaml": "keys: []\n"}
    # the keys the overlay's comment lists for secrets.env; the shell block writes the token
    (comment,) = [line for line in _overlay_text().splitlines() if "- secrets.env" in line]
    files["secrets.env"] = "".join(f"{k}=x\n" for k in re.findall(r"([\w-]+)=\.\.\.", comment))
    (shell,) = [
        b for b in re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.S) if "cd my-overlay" in b
    ]
    assert "printf 'admin-token=" in shell
    for entry in overlay["configMapGenerator"] + overlay["secretGenerator"]:
        for name in entry.get("files", []) + entry.get("envs", []):
            assert name.rpartition("=")[2] in files, name
    return files


def test_the_overlay_example_names_what_the_base_has() -> None:
    """Every name the overlay example uses exists in the base, and its Secrets are exactly the
    ones the base's pods read, with every key they read."""
    overlay = yaml.safe_load(_overlay_text())
    assert overlay["resources"] == ["../tokenrouter/deploy/kubernetes"]
    base = render_builtin(BASE)
    images = {
        c["image"].split(":")[0]
        for o in base
        if o["kind"] == "Deployment"
        for c in o["spec"]["template"]["spec"]["containers"]
    }
    assert {i["name"] for i in overlay["images"]} <= images
    assert {r["name"] for r in overlay["replicas"]} <= _names(base, "Deployment")
    for patch in overlay["patches"]:
        assert patch["target"]["name"] in _names(base, patch["target"]["kind"])
    for entry in overlay["configMapGenerator"]:
        assert entry["name"] in _names(base, "ConfigMap") and entry["behavior"] == "replace"
    files = _example_files(overlay)
    refs = _secret_refs(base)
    generated = {e["name"]: _generated_keys(e, files) for e in overlay["secretGenerator"]}
    assert set(generated) == set(refs)
    for name, keys in refs.items():
        assert keys <= generated[name], name


if shutil.which("kubectl"):

    def test_the_overlay_example_renders_and_validates(tmp_path: Path) -> None:
        """The overlay renders over the base with kubectl, every object passes the strict schema,
        and the image, the replica count and the Secrets are the overlay's."""
        shutil.copytree(BASE, tmp_path / "tokenrouter" / "deploy" / "kubernetes")
        overlay_dir = tmp_path / "my-overlay"
        overlay_dir.mkdir()
        text = _overlay_text()
        (overlay_dir / "kustomization.yaml").write_text(text)
        for name, content in _example_files(yaml.safe_load(text)).items():
            (overlay_dir / name).write_text(content)
        objects = render_kubectl(overlay_dir)
        for obj in objects:
            for version in KUBERNETES_VERSIONS:
                kubernetes_validate.validate(obj, version, strict=True)
        assert {o["metadata"]["namespace"] for o in objects} == {"tokenrouter"}
        (router,) = [
            o
            for o in objects
            if o["kind"] == "Deployment" and o["metadata"]["name"] == "tokenrouter"
        ]
        assert router["spec"]["replicas"] == 3
        (container,) = router["spec"]["template"]["spec"]["containers"]
        assert container["image"] == "registry.example.com/tokenrouter:0.1.0"
        secrets = {o["metadata"]["name"] for o in objects if o["kind"] == "Secret"}
        assert set(_secret_refs(objects)) == secrets  # generated names, hash suffix included


def test_the_links_of_the_page_resolve() -> None:
    """Every relative link in docs/deploy.md names an existing file, and an anchor a heading."""
    links = re.findall(r"\]\(([^)\s]+)\)", DOC.read_text())
    relative = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert relative
    for link in relative:
        path, _, anchor = link.partition("#")
        target = (DOC.parent / path).resolve()
        assert target.exists(), link
        if anchor:
            headings = re.findall(r"^#+ (.+)$", target.read_text(), re.M)
            slugs = {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}
            assert anchor in slugs, link
