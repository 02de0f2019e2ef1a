"""The Dockerfile's structure, since the image cannot be built here (no registry to pull from):
a pinned base, the build done by the Make target CI runs, a numeric non-root user that matches
the Kubernetes pods, `tokenrouter serve` as the entry point, and a build context (.dockerignore)
that carries what the build needs and no secrets.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from router.config import parse_config
from router.tools import cli
from tests.deploy_render import render_builtin

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
_PINNED = re.compile(r"^[\w./-]+:\d+\.\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?$")


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending += line.removesuffix("\\").strip() + " "
        if not line.endswith("\\"):
            word, _, rest = pending.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            pending = ""
    return out


def _all(name: str) -> list[str]:
    return [rest for word, rest in _instructions() if word == name]


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore's patterns leave `path` out of the context (the last matching
    pattern wins, `!` re-includes; a pattern matching a parent folder covers what is in it)."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = _glob(pattern.removeprefix("!").strip("/"))
        if any(regex.fullmatch(c) for c in candidates):
            ignored = not negated
    return ignored


def _glob(pattern: str) -> re.Pattern[str]:
    out = ""
    for token in re.split(r"(\*\*/|\*\*|\*|\?)", pattern):
        out += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(
            token, re.escape(token)
        )
    return re.compile(out)


def _patterns() -> list[str]:
    lines = (line.strip() for line in DOCKERIGNORE.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def test_the_base_image_is_pinned() -> None:
    """Every stage starts from the PYTHON_IMAGE argument, whose default is an exact version."""
    args = dict(rest.split("=", 1) for rest in _all("ARG") if "=" in rest)
    assert _PINNED.match(args["PYTHON_IMAGE"]), args["PYTHON_IMAGE"]
    stages = _all("FROM")
    assert len(stages) == 2
    assert all(stage.split()[0] == "${PYTHON_IMAGE}" for stage in stages)
    assert "latest" not in DOCKERFILE.read_text()


def test_the_build_is_make_install() -> None:
    """The image is built by `make install` (CI's target, with the Makefile's llama.cpp flags),
    not by install steps of its own."""
    runs = _all("RUN")
    assert any(re.search(r"\bmake install\b", run) for run in runs)
    text = DOCKERFILE.read_text()
    assert "pip install" not in text and "CMAKE_ARGS" not in text and "GGML_" not in text
    assert "LLAMA_CMAKE" in (ROOT / "Makefile").read_text()


def test_it_runs_as_the_numeric_non_root_user_of_the_pods() -> None:
    """The final USER is numeric and not root, created with that uid, and the Deployment's
    runAsUser is the same."""
    user = _all("USER")[-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and (not gid or gid.isdigit())
    assert any(f"--uid {uid}" in run for run in _all("RUN"))
    (deployment,) = [
        o
        for o in render_builtin(ROOT / "deploy" / "kubernetes")
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "tokenrouter"
    ]
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(uid)


def test_the_entry_point_is_tokenrouter_serve_on_the_exposed_ports() -> None:
    """ENTRYPOINT tokenrouter with CMD serve parses as a serve command line, and the exposed
    ports are the gRPC and HTTP ports of the Kubernetes config."""
    (entrypoint,) = _all("ENTRYPOINT")
    (cmd,) = _all("CMD")
    argv = json.loads(entrypoint) + json.loads(cmd)
    assert argv[0] == "tokenrouter"
    args = cli._parser().parse_args(argv[1:])
    assert (args.command, args.host) == ("serve", "0.0.0.0")
    text = (ROOT / "deploy" / "kubernetes" / "router.yaml").read_text()
    server = parse_config(text, "router.yaml").config.server
    exposed = {int(p) for rest in _all("EXPOSE") for p in rest.split()}
    assert exposed == {server.port, server.http_port}


def test_no_secret_is_baked_in() -> None:
    """No ENV or ARG names a credential, and the build context leaves out local environments,
    git, key files, certificates and tenant keys."""
    for rest in _all("ENV") + _all("ARG"):
        assert not re.search(r"KEY|TOKEN|SECRET|PASSWORD", rest.upper()), rest
    patterns = _patterns()
    for path in (
        ".env",
        "router/.env.local",
        ".git/config",
        ".venv/bin/python",
        "keys.yaml",
        "deploy/kubernetes/keys.yaml",
        "router/api/server.key",
        "tls/cert.pem",
        "router/api/cert.pem",
        "policies/keys.yaml",
        "tests/test_deploy.py",
    ):
        assert _ignored(path, patterns), path


def test_the_context_carries_what_the_build_copies() -> None:
    """Every file the build stage COPYs exists and is in the build context."""
    patterns = _patterns()
    sources = [
        word for rest in _all("COPY") if not rest.startswith("--from") for word in rest.split()[:-1]
    ]
    assert {"pyproject.toml", "Makefile", "README.md", "router"} <= set(sources)
    for source in sources:
        root = ROOT / source
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        files = [p for p in files if "__pycache__" not in p.parts]
        assert files, source
        for path in files:
            assert not _ignored(str(path.relative_to(ROOT)), patterns), path
