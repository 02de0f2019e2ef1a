"""The Kubernetes base in deploy/kubernetes renders, passes the Kubernetes schemas, and keeps the
invariants docs/deploy.md promises: gRPC probes, non-root pods, the config mounted as a directory
(so updates hot-reload), Secret references, both ports on the Service, and a router.yaml that is
a valid tokenrouter config the server would start with.

Every test runs on each renderer available (tests/deploy_render.py): the built-in one always,
`kubectl kustomize` when kubectl is on PATH.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from router.api.server import UnsafeExposure, check_exposure
from router.config import parse_config
from router.config.validate import validate_text
from router.tools import cli
from tests.deploy_render import KUBERNETES_VERSIONS, Object, render_builtin, renderers

BASE = Path(__file__).resolve().parents[1] / "deploy" / "kubernetes"
RENDERERS = renderers()


@pytest.fixture(scope="module", params=sorted(RENDERERS))
def objects(request: pytest.FixtureRequest) -> list[Object]:
    return RENDERERS[request.param](BASE)


def _one(objects: list[Object], kind: str, name: str) -> Object:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def _router(objects: list[Object]) -> tuple[Object, dict[str, Any]]:
    deployment = _one(objects, "Deployment", "tokenrouter")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return deployment, container


def _identity(obj: Object) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def _config_text(objects: list[Object]) -> str:
    return _one(objects, "ConfigMap", "tokenrouter-config")["data"]["router.yaml"]


def _serve_args(container: dict[str, Any]) -> Any:
    """The container's command line, parsed by the real CLI."""
    assert container["command"][0] == "tokenrouter"
    return cli._parser().parse_args(container["command"][1:] + container["args"])


def test_renderers_agree_on_every_object() -> None:
    """kubectl kustomize (when present) and the built-in renderer give the same objects."""
    builtin = sorted(render_builtin(BASE), key=_identity)
    assert {o["kind"] for o in builtin} >= {
        "Deployment", "Service", "ConfigMap", "PodDisruptionBudget",
        "HorizontalPodAutoscaler", "NetworkPolicy",
    }  # fmt: skip
    for render in RENDERERS.values():
        assert sorted(render(BASE), key=_identity) == builtin


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_passes_the_strict_schema(objects: list[Object], version: str) -> None:
    """Each rendered object validates against the pinned Kubernetes schemas (strict: no unknown
    fields)."""
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


def test_the_command_line_is_serve_on_all_interfaces(objects: list[Object]) -> None:
    """The container runs `tokenrouter serve --config <the mounted file> --host 0.0.0.0`."""
    _, container = _router(objects)
    args = _serve_args(container)
    assert (args.command, args.host, args.config) == (
        "serve",
        "0.0.0.0",
        "/etc/tokenrouter/router.yaml",
    )


def test_probes_use_grpc_health_on_the_grpc_port(objects: list[Object]) -> None:
    """Startup, liveness and readiness probes ask grpc.health.v1 on the config's gRPC port."""
    _, container = _router(objects)
    config = parse_config(_config_text(objects), "router.yaml").config
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["grpc"]["port"] == ports["grpc"] == config.server.port
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300  # a GGUF loads first


def test_pods_run_as_non_root_without_privileges(objects: list[Object]) -> None:
    """Every Deployment's pods run as a numeric non-root user, read-only, with no capabilities."""
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    assert len(deployments) == 2
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert isinstance(pod["securityContext"]["runAsUser"], int)
        assert pod["securityContext"]["runAsUser"] > 0
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]
            assert container["resources"]["requests"]["cpu"]
            assert container["resources"]["limits"]["memory"]


def test_the_writable_paths_are_empty_dirs(objects: list[Object]) -> None:
    """With a read-only root, HOME points into the /tmp emptyDir, the one writable mount."""
    deployment, container = _router(objects)
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    (tmp,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert "emptyDir" in volumes[tmp["name"]]
    assert env["HOME"] == "/tmp"


def test_config_and_keys_are_mounted_as_directories(objects: list[Object]) -> None:
    """The ConfigMap and the keys Secret are directory mounts (no subPath), so updates reach the
    files the server watches: --config and server.tenant_keys_file."""
    deployment, container = _router(objects)
    config = parse_config(_config_text(objects), "router.yaml").config
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    for m in container["volumeMounts"]:
        assert "subPath" not in m and "subPathExpr" not in m
    config_mount = mounts[str(Path(_serve_args(container).config).parent)]
    assert volumes[config_mount["name"]]["configMap"]["name"] == "tokenrouter-config"
    keys_path = Path(config.server.tenant_keys_file)
    keys_volume = volumes[mounts[str(keys_path.parent)]["name"]]
    assert keys_volume["secret"]["secretName"] == "tokenrouter-tenant-keys"
    assert keys_path.name == "keys.yaml"


def test_secrets_are_referenced_never_written(objects: list[Object]) -> None:
    """The admin token comes from a required Secret key, the API keys from optional ones, and the
    base holds no Secret and no literal credential."""
    _, container = _router(objects)
    config = parse_config(_config_text(objects), "router.yaml").config
    env = {e["name"]: e for e in container["env"]}
    admin = env[config.server.admin_token_env]["valueFrom"]["secretKeyRef"]
    assert admin["name"] == "tokenrouter-secrets" and not admin.get("optional", False)
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        assert env[name]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert not [o for o in objects if o["kind"] == "Secret"]
    for e in container["env"]:
        assert not (re.search("KEY|TOKEN|SECRET|PASSWORD", e["name"]) and "value" in e)


def test_grace_period_covers_the_drain(objects: list[Object]) -> None:
    """The pod's grace period outlasts the preStop sleep plus server.grace_period_s."""
    deployment, container = _router(objects)
    config = parse_config(_config_text(objects), "router.yaml").config
    sleep = container["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > int(sleep[1]) + config.server.grace_period_s


def test_the_service_exposes_grpc_and_http(objects: list[Object]) -> None:
    """The Service carries the grpc and http ports of the config, with their app protocols, to
    the router's pods."""
    deployment, container = _router(objects)
    config = parse_config(_config_text(objects), "router.yaml").config
    service = _one(objects, "Service", "tokenrouter")
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert (ports["grpc"]["port"], ports["grpc"]["appProtocol"]) == (config.server.port, "grpc")
    assert (ports["http"]["port"], ports["http"]["appProtocol"]) == (
        config.server.http_port,
        "http",
    )
    names = {p["name"] for p in container["ports"]}
    assert {ports["grpc"]["targetPort"], ports["http"]["targetPort"]} <= names
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()


def test_the_config_is_valid_and_starts_off_loopback(
    objects: list[Object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """router.yaml passes full validation, and the exposure check lets it serve on 0.0.0.0 with
    the admin token and --insecure, as the Deployment runs it (and not without --insecure)."""
    text = _config_text(objects)
    result = validate_text(text, "router.yaml")
    assert result.problems == []
    server = result.loaded.config.server
    _, container = _router(objects)
    args = _serve_args(container)
    monkeypatch.setenv(server.admin_token_env, "test-token")
    assert check_exposure(args.host, server, args.insecure) == ["TLS (server.tls)"]
    with pytest.raises(UnsafeExposure):
        check_exposure(args.host, server, insecure=False)


def test_the_commented_gpu_backend_is_valid_when_uncommented(objects: list[Object]) -> None:
    """Uncommenting the cloud-GPU example in router.yaml gives a valid config with that backend."""
    lines = _config_text(objects).splitlines()
    start = lines.index("  # gpu-vllm:")
    end = start + 1
    while lines[end].startswith("  #   "):
        end += 1
    lines[start:end] = ["  " + line.removeprefix("  # ") for line in lines[start:end]]
    result = validate_text("\n".join(lines), "router.yaml")
    assert result.problems == []
    assert set(result.loaded.config.backends) == {"edge-smollm2", "gpu-vllm"}


def test_edge_threads_match_the_cpu_limit(objects: list[Object]) -> None:
    """The in-process model's threads equal the container's CPU limit (not the node's cores)."""
    _, container = _router(objects)
    config = parse_config(_config_text(objects), "router.yaml").config
    assert config.backends["edge-smollm2"].threads == int(container["resources"]["limits"]["cpu"])


def test_pdb_and_hpa_target_the_router(objects: list[Object]) -> None:
    """The disruption budget selects the router's pods; the autoscaler (v2, CPU) scales its
    Deployment from at least two replicas."""
    deployment, _ = _router(objects)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    pdb = _one(objects, "PodDisruptionBudget", "tokenrouter")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = _one(objects, "HorizontalPodAutoscaler", "tokenrouter")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "tokenrouter",
    }
    assert hpa["spec"]["minReplicas"] >= 2 == deployment["spec"]["replicas"]
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]


def test_redis_keeps_nothing_on_disk_and_only_routers_reach_it(objects: list[Object]) -> None:
    """Redis runs without persistence or eviction behind its Service, and its NetworkPolicy
    admits only the router's pods."""
    redis = _one(objects, "Deployment", "tokenrouter-redis")
    (container,) = redis["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    pairs = dict(zip(args[::2], args[1::2], strict=True))
    assert pairs["--save"] == "" and pairs["--appendonly"] == "no"
    assert pairs["--maxmemory-policy"] == "noeviction"
    service = _one(objects, "Service", "tokenrouter-redis")
    assert service["spec"]["ports"][0]["port"] == 6379
    pod_labels = redis["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    policy = _one(objects, "NetworkPolicy", "tokenrouter-redis")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    (rule,) = policy["spec"]["ingress"]
    router_labels = _router(objects)[0]["spec"]["template"]["metadata"]["labels"]
    (source,) = rule["from"]
    assert source["podSelector"]["matchLabels"].items() <= router_labels.items()
