"""The policy registry: built-ins, duplicates, kebab-case names, and entry-point plugins."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from router.handle import PluginHandle
from router.registry import BUILTIN, Registry, default_registry


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
    from router.engine import Router

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
            budget = router.scheduler.policies["budget"]
            capacity = router.scheduler.policies["capacity"]
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


def test_entry_point_policy_from_an_installed_package_loads(tmp_path, monkeypatch):
    """A package installed with a tokenrouter.policies entry point registers with no change here."""
    src = tmp_path / "src"
    (src / "tr_test_plugin").mkdir(parents=True)
    (src / "tr_test_plugin" / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    (src / "pyproject.toml").write_text(PYPROJECT)
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
    registry = default_registry()
    assert "prefer-eu" in registry.types()
    policy = registry.create("prefer-eu", "eu", {"bonus": 0.5})
    from tests.conftest import backend_view, context

    assert policy.score(context(), backend_view(region="eu")) == 0.5
