"""The operator docs stay true: their configs validate, their policies build, their commands exist.

Convention checked here: every ```yaml block in docs/policies.md and docs/operators.md is either
a complete config (it has a top-level `backends:`), a policy snippet (a top-level `policies:`
mapping, optionally with `profiles:` that use those policies), or a fragment of other config
sections, which is validated merged into a one-backend config. A bare `name: {type: ...}` policy
mapping is not allowed: policy snippets always sit under `policies:`.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from router.config.validate import validate_text
from router.core.framework import Scorer
from router.core.registry import BUILTIN, ENTRY_POINT_GROUP, Registry, default_registry
from router.tools import cli, replay

DOCS = Path(__file__).resolve().parents[1] / "docs"
POLICIES = DOCS / "policies.md"
OPERATORS = DOCS / "operators.md"
BASE_CONFIG: dict[str, Any] = {"backends": {"docs-backend": {"type": "scripted", "model": "m"}}}
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)


def _blocks(path: Path, lang: str) -> list[tuple[int, str]]:
    """(line number, text) of every fenced block of `lang` in `path`."""
    text = path.read_text()
    return [
        (text.count("\n", 0, m.start()) + 1, m.group(2))
        for m in _FENCE.finditer(text)
        if m.group(1) == lang
    ]


def _yaml_blocks() -> list[Any]:
    return [
        pytest.param(path, line, text, id=f"{path.name}:{line}")
        for path in (POLICIES, OPERATORS)
        for line, text in _blocks(path, "yaml")
    ]


def _documented_factories() -> dict[str, Callable[..., Any]]:
    """Type name -> factory for each policy package shown in policies.md: the entry points of
    its pyproject.toml block, loaded from the python block that starts with the module's path."""
    modules = {}
    for _, code in _blocks(POLICIES, "python"):
        first = code.splitlines()[0]
        if first.startswith("# ") and first.endswith(".py"):
            modules[first[2:-3].replace("/", ".")] = code
    factories = {}
    for _, text in _blocks(POLICIES, "toml"):
        entry_points = tomllib.loads(text).get("project", {}).get("entry-points", {})
        for type_name, target in entry_points.get(ENTRY_POINT_GROUP, {}).items():
            module, _, attr = target.partition(":")
            namespace: dict[str, Any] = {"__name__": module}
            exec(compile(modules[module], f"{POLICIES.name}:{module}", "exec"), namespace)
            factories[type_name] = namespace[attr]
    return factories


def _registry() -> Registry:
    registry = default_registry()
    for type_name, factory in _documented_factories().items():
        registry.register(type_name, factory)
    return registry


def _problems(text: str, source: str) -> list[str]:
    return [str(p) for p in validate_text(text, source).problems]


def test_every_builtin_policy_type_has_a_section() -> None:
    """Every built-in policy type has a section headed by its name in docs/policies.md."""
    headings = set(re.findall(r"^#{2,4} +(.+?) *$", POLICIES.read_text(), re.M))
    missing = [t for t in BUILTIN if t not in headings]
    assert not missing, f"docs/policies.md has no section for {missing}"


@pytest.mark.parametrize(("path", "line", "text"), _yaml_blocks())
def test_yaml_example_is_valid(path: Path, line: int, text: str) -> None:
    """A YAML example validates as a config, builds as policies, or validates as a fragment."""
    source = f"{path.name}:{line}"
    data = yaml.safe_load(text)
    assert isinstance(data, dict), f"{source}: not a YAML mapping"
    if "backends" in data:
        problems = _problems(text, source)
        assert not problems, "\n".join(problems)
    elif "policies" in data:
        assert set(data) <= {"policies", "profiles"}, f"{source}: a snippet has only those keys"
        registry = _registry()
        for name, spec in data["policies"].items():
            assert set(spec) <= {"type", "parameters"}, f"{source}: policy {name}"
            registry.create(spec["type"], name, spec.get("parameters") or {})
        for profile in (data.get("profiles") or {}).values():
            for entry in profile["policies"]:
                assert entry["policy"] in data["policies"], f"{source}: {entry}"
    else:
        bare = all(isinstance(v, dict) and "type" in v for v in data.values())
        assert not bare, f"{source}: put policy snippets under `policies:`"
        problems = _problems(yaml.safe_dump({**BASE_CONFIG, **data}), source)
        assert not problems, "\n".join(problems)


def test_documented_policy_package_builds_a_scorer() -> None:
    """The package in "Writing your own policy" registers a factory that validates parameters."""
    factories = _documented_factories()
    assert "prefer-region" in factories
    policy = Registry()
    policy.register("prefer-region", factories["prefer-region"])
    built = policy.create("prefer-region", "near", {"regions": ["eu-west-1"]})
    assert isinstance(built, Scorer)
    with pytest.raises(ValueError, match="regiosn: unknown parameter"):
        policy.create("prefer-region", "near", {"regions": ["eu-west-1"], "regiosn": ["x"]})


def test_documented_handle_policy_keeps_its_state_in_the_handle() -> None:
    """`request-quota` from the guide counts in the handle's window: two policies built with
    one handle (as across a reload) share the count, one built with another handle does not."""
    from router.core.handle import PluginHandle
    from tests.conftest import backend_view, context

    registry = Registry()
    registry.register("request-quota", _documented_factories()["request-quota"])
    handle = PluginHandle()
    first = registry.create("request-quota", "q", {"limit": 1}, handle)
    backend, ctx = backend_view("b"), context()
    assert first.filter(ctx, backend) is None
    first.reserve(ctx, backend)
    again = registry.create("request-quota", "q", {"limit": 1}, handle)
    assert again.filter(ctx, backend) == "request quota used up"
    other = registry.create("request-quota", "q", {"limit": 1}, PluginHandle())
    assert other.filter(ctx, backend) is None


def test_documented_backend_package_validates_and_builds() -> None:
    """The package in "Writing your own backend" registers a backend type whose config model
    and problems() hook are used by the validator, and whose backend streams."""
    import asyncio

    from router.core.types import ChatMessage, Request

    code = next(c for _, c in _blocks(POLICIES, "python") if c.startswith("# my_backends/echo.py"))
    module = types.ModuleType("my_backends.echo")  # pydantic resolves annotations in it
    sys.modules[module.__name__] = module
    try:
        exec(compile(code, f"{POLICIES.name}:my_backends.echo", "exec"), module.__dict__)
    finally:
        del sys.modules[module.__name__]
    registry = default_registry()
    registry.register_backend("echo", module.EchoBackend)
    ok = "backends:\n  e: {type: echo, model: m, prefix: 'said:'}\n"
    assert not validate_text(ok, "<t>", registry).problems
    bad = validate_text(ok.replace("said:", "said"), "<t>", registry).problems
    assert [(p.path, p.reason) for p in bad] == [("backends.e.prefix", "must end with ':'")]
    loaded = validate_text(ok, "<t>", registry).loaded
    assert loaded is not None
    backend = registry.create_backend("e", loaded.config.backends["e"])
    request = Request("r", "t", (ChatMessage("user", "hello there"),), 8, 0.0)

    async def stream() -> list[Any]:
        return [event async for event in backend.generate(request)]

    events = asyncio.run(stream())
    assert "".join(e.text for e in events[:-1]) == "said: hello there"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {o for action in parser._actions for o in action.option_strings}


def _commands(path: Path) -> Iterator[tuple[str, list[str]]]:
    """Each `tokenrouter ...` in the code of `path`: its words up to a shell separator."""
    text = path.read_text()
    code = [m.group(2) for m in _FENCE.finditer(text)]
    code += re.findall(r"(?<!`)`([^`\n]+)`(?!`)", _FENCE.sub("", text))
    for snippet in code:
        joined = snippet.replace("\\\n", " ")  # shell line continuations
        for found in re.finditer(r"(?<![\w.-])tokenrouter[ \t]+([^\n]*)", joined):
            line = re.split(r"[|;#`]|&&", found.group(1))[0]
            yield found.group(0), line.split()


@pytest.mark.parametrize("path", [OPERATORS, POLICIES], ids=lambda p: p.name)
def test_documented_commands_exist(path: Path) -> None:
    """Every `tokenrouter <command>` in the docs is a real subcommand, with real options."""
    commands = _subparsers(cli._parser())
    seen = 0
    for mention, words in _commands(path):
        seen += 1
        assert words and words[0] in commands, f"{path.name}: {mention!r}: no such command"
        parser = replay._parser() if words[0] == "replay" else commands[words[0]]
        if nested := _subparsers(parser):
            assert len(words) > 1 and words[1] in nested, f"{path.name}: {mention!r}"
            parser = nested[words[1]]
        for option in (w.split("=")[0] for w in words if w.startswith("--")):
            assert option in _options(parser), f"{path.name}: {mention!r}: no option {option}"
    assert seen, f"{path.name} mentions no tokenrouter command"
