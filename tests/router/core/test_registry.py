"""The plugin registry: built-in policies and backends, duplicates, kebab-case names, the
handle, and entry-point plugins of both kinds."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from router.core.handle import PluginHandle
from router.core.registry import BUILTIN, Registry, default_registry


def test_default_registry_has_every_builtin():
    """default_registry() knows each built-in policy type."""
    assert set(BUILTIN) <= set(default_registry().types())


def test_duplicates_and_bad_names_are_refused():
    """Registering a type twice, or a non-kebab-case name, raises ValueError."""
    registry = Registry()
    registry.register("my-policy", lambda name, params: None)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("my-policy", lambda name, params: None)
    with pytest.raises(ValueError, match="kebab-case"):
        registry.register("MyPolicy", lambda name, params: None)


def test_unknown_type_lists_the_known_ones():
    """Creating an unknown type raises KeyError listing what is registered."""
    with pytest.raises(KeyError, match=r"known: .*capability"):
        default_registry().create("nope", "x", {})


def test_objects_without_a_contract_are_refused():
    """A factory returning something that is no filter/scorer/... is refused."""
    registry = Registry()
    registry.register("empty", lambda name, params: object())
    with pytest.raises(ValueError, match="implements no policy contract"):
        registry.create("empty", "x", {})


class _Scorer:
    def __init__(self, name, handle=None):
        self.name, self.handle = name, handle

    def score(self, ctx, backend):
        return 1.0


def test_a_factory_taking_a_handle_gets_the_one_it_is_given():
    """A three-parameter factory receives the caller's PluginHandle itself, every time."""
    registry = Registry()
    registry.register("with-handle", lambda name, parameters, handle: _Scorer(name, handle))
    handle = PluginHandle()
    assert registry.create("with-handle", "a", {}, handle).handle is handle
    assert registry.create("with-handle", "b", {}, handle).handle is handle
    assert isinstance(registry.create("with-handle", "c", {}).handle, PluginHandle)


def test_a_two_parameter_factory_still_works():
    """A third-party factory that takes only (name, parameters) is called without a handle."""
    registry = Registry()
    registry.register("plain", lambda name, parameters: _Scorer(name))
    assert registry.create("plain", "p", {}, PluginHandle()).handle is None


def test_old_keyword_services_and_bad_signatures_are_refused_at_registration():
    """A factory asking for the old `store`/`window`/`clock` keywords, or taking fewer than two
    parameters, is refused when registered, not silently given fresh state."""
    registry = Registry()

    def legacy(name, parameters, store=None):
        return _Scorer(name)

    with pytest.raises(ValueError, match="'store' is a keyword service"):
        registry.register("legacy", legacy)
    with pytest.raises(ValueError, match=r"must take \(name, parameters\)"):
        registry.register("one-arg", lambda name: _Scorer(name))
    assert "legacy" not in registry.types()


def test_the_engine_hands_every_policy_one_handle(tmp_path):
    """The live router builds its policies with its own handle: budget and capacity share the
    router's budget store and token window, which outlive reloads."""
    import asyncio

    from router.config import parse_config
    from router.runtime.engine import Router

    text = """
backends:
  s: {type: scripted, model: m}
policies:
  budget: {type: budget, parameters: {budgets: [{tenant: "*", limit_usd: 1, window: 1h}]}}
  capacity: {type: capacity, parameters: {tokens_per_minute: {s: 1000}}}
"""

    async def main():
        router = await Router.create(parse_config(text, "<t>"))
        try:
            budget = router.pipeline.policies["budget"]
            capacity = router.pipeline.policies["capacity"]
            assert budget.store is router.handle.budget_store
            assert capacity._window is router.handle.token_window
        finally:
            await router.aclose()

    asyncio.run(main())


PLUGIN = """
class PreferEu:
    def __init__(self, name, parameters):
        self.name = name
        self.bonus = parameters.get("bonus", 1.0)

    def score(self, ctx, backend):
        return self.bonus if backend.config.region == "eu" else 0.0


def create(name, parameters):
    return PreferEu(name, parameters)
"""

PYPROJECT = """
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "tokenrouter-test-plugin"
version = "0.0.1"

[project.entry-points."tokenrouter.policies"]
prefer-eu = "tr_test_plugin:create"
"""


def _install(tmp_path, monkeypatch, package: str, code: str, pyproject: str) -> None:
    """pip-installs a one-module package into a private site dir put first on sys.path."""
    src = tmp_path / "src"
    (src / package).mkdir(parents=True)
    (src / package / "__init__.py").write_text(textwrap.dedent(code))
    (src / "pyproject.toml").write_text(pyproject)
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(site),
            str(src),
        ],
        check=True,
    )
    monkeypatch.syspath_prepend(str(site))


def test_entry_point_policy_from_an_installed_package_loads(tmp_path, monkeypatch):
    """A package installed with a tokenrouter.policies entry point registers with no change here."""
    _install(tmp_path, monkeypatch, "tr_test_plugin", PLUGIN, PYPROJECT)
    registry = default_registry()
    assert "prefer-eu" in registry.types()
    policy = registry.create("prefer-eu", "eu", {"bonus": 0.5})
    from tests.conftest import backend_view, context

    assert policy.score(context(), backend_view(region="eu")) == 0.5


BACKEND_PLUGIN = """
from pydantic import Field

from router.core.backend import Backend, Finish, TextDelta
from router.core.backend_config import BackendCommon
from router.core.types import Tier


class EchoConfig(BackendCommon):
    tier: Tier = Tier.CLOUD_GPU
    prefix: str = Field("echo:", min_length=1)


class EchoBackend(Backend):
    config_model = EchoConfig

    async def generate(self, request):
        words = request.messages[-1].content.split()[: request.max_tokens]
        yield TextDelta(self.config.prefix)
        for word in words:
            yield TextDelta(" " + word)
        yield Finish(len(words), len(words) + 1, "stop")
"""

BACKEND_PYPROJECT = """
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "tokenrouter-test-backend"
version = "0.0.1"

[project.entry-points."tokenrouter.backends"]
echo = "tr_test_backend:EchoBackend"
"""


async def test_entry_point_backend_from_an_installed_package_serves_requests(
    tmp_path, monkeypatch, start_server
):
    """A backend package with a tokenrouter.backends entry point is configured by its type,
    validated by its own config model and serves a Generate call, with no change here."""
    import yaml

    from router.api import router_pb2 as pb
    from router.config import parse_config
    from router.config.validate import validate_text
    from router.core.errors import ConfigError
    from tests.conftest import request
    from tests.router.api.test_server import collect

    _install(tmp_path, monkeypatch, "tr_test_backend", BACKEND_PLUGIN, BACKEND_PYPROJECT)
    assert "echo" in default_registry().backend_types()
    config = {"backends": {"e": {"type": "echo", "model": "m", "prefix": "said:"}}}
    assert not validate_text(yaml.safe_dump(config), "<t>").problems
    with pytest.raises(ConfigError) as err:
        bad = {"backends": {"e": {"type": "echo", "model": "m", "prefix": ""}}}
        parse_config(yaml.safe_dump(bad), "<t>")
    assert err.value.path == "backends.e.prefix"
    srv = await start_server(config)
    decision, deltas, usage = await collect(srv.stub.Generate(request("hello there")))
    assert decision.backend == "e" and decision.tier == pb.CLOUD_GPU
    assert "".join(deltas) == "said: hello there"
    assert usage.completion_tokens == 3 and usage.finish_reason == "stop"


def test_backend_types_are_checked_and_unique():
    """A backend type is a Backend subclass with a BackendCommon config model, registered once;
    the built-in types load on first use and build their backends."""
    from backends.scripted import ScriptedBackend, ScriptedConfig
    from router.core.backend import Backend
    from router.core.registry import BUILTIN_BACKENDS

    registry = default_registry()
    assert set(BUILTIN_BACKENDS) <= set(registry.backend_types())
    assert registry.backend_config("scripted") is ScriptedConfig
    backend = registry.create_backend("s", ScriptedConfig(type="scripted", model="m"))
    assert isinstance(backend, ScriptedBackend)
    with pytest.raises(ValueError, match="already registered"):
        registry.register_backend("scripted", ScriptedBackend)
    with pytest.raises(ValueError, match=r"not a router\.core\.backend\.Backend"):
        Registry().register_backend("thing", object)  # type: ignore[arg-type]

    class NoModel(Backend):
        config_model = dict  # type: ignore[assignment]

        async def generate(self, request):
            yield None

    lazy = Registry()
    lazy.register_backend("no-model", lambda: NoModel)
    with pytest.raises(ValueError, match="config_model is not a BackendCommon"):
        lazy.backend_class("no-model")
    with pytest.raises(KeyError, match="unknown backend type 'scriptd'; did you mean 'scripted'"):
        registry.backend_class("scriptd")


def test_no_module_of_the_project_imports_a_specific_plugin():
    """Only the registry's built-in tables name specific policies and backends: no module of
    router/, backends/ or policies/ imports one (shared helpers such as policies.params,
    policies.detectors, backends.http_common or backends.thread_relay are not plugins)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    plugin = re.compile(
        r"^\s*(?:from|import)\s+(policies\.(?!params\b|detectors\b|linear_regex\b)\w+"
        r"|backends\.(?!http_common\b|http_backend\b|http_stream\b|wire\b|wire_conn\b|sse\b|gguf\b"
        r"|thread_relay\b|delta_batch\b|openai_messages\b|anthropic_messages\b"
        r"|anthropic_stream\b|llamacpp_grammar\b|llamacpp_prompt\b|llamacpp_run\b|llamacpp_stream\b)\w+)",
        re.MULTILINE,
    )
    found = []
    for package in ("router", "backends", "policies"):
        for path in (root / package).rglob("*.py"):
            text = path.read_text()
            found += [
                f"{path.relative_to(root)}: {m[1]}"
                for m in plugin.finditer(text)
                if not path.stem.startswith(m[1].split(".")[-1] + "_")  # the plugin's own helpers
            ]
    assert found == []
