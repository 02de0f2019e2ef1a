"""The policy registry: built-ins, duplicates, kebab-case names, and entry-point plugins."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

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
