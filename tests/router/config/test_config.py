"""Config loading: the embedded default, and errors naming file, line, YAML path and reason."""

from __future__ import annotations

import pytest

from router.config import load_config, parse_config
from router.core.errors import ConfigError

VALID = """\
backends:
  edge:
    type: llamacpp
    model: m
    gguf: /models/m.gguf
policies:
  cap:
    type: capability
profiles:
  default:
    policies:
      - policy: cap
"""


def test_embedded_default_has_the_smollm2_edge_backend():
    """With no file, the embedded default config holds the edge-smollm2 backend on SmolLM2."""
    loaded = load_config(None)
    backend = loaded.config.backends["edge-smollm2"]
    assert backend.type == "llamacpp" and "SmolLM2-135M" in backend.gguf
    assert backend.replicas == 1 and loaded.config.server.port == 50051
    assert len(loaded.version) == 12


def test_valid_config_fills_defaults():
    """Omitted sections and fields take their documented defaults."""
    cfg = parse_config(VALID, "x.yaml").config
    assert cfg.backends["edge"].context_window == 2048
    assert cfg.backends["edge"].effective_trust == "edge"
    assert cfg.defaults.max_tokens == 256 and cfg.server.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("text", "path", "line", "reason"),
    [
        (
            VALID.replace("model: m", "model: m\n    replicas: 0"),
            "backends.edge.replicas",
            5,
            "greater than or equal to 1",
        ),
        (
            VALID.replace("model: m", "model: m\n    colour: red"),
            "backends.edge.colour",
            5,
            "unknown field",
        ),
        (
            VALID.replace("type: llamacpp", "type: martian"),
            "backends.edge.type",
            3,
            "unknown backend type 'martian' (known: anthropic, llamacpp, openai, scripted)",
        ),
        (
            VALID.replace("type: llamacpp", "type: llamacp"),
            "backends.edge.type",
            3,
            "unknown backend type 'llamacp'; did you mean 'llamacpp'?",
        ),
        (VALID.replace("type: llamacpp", "type: [x]"), "backends.edge.type", 3, "valid string"),
        (VALID.replace("    type: llamacpp\n", ""), "backends.edge.type", 3, "Field required"),
        (
            VALID.replace("- policy: cap", "- policy: nope"),
            "profiles.default.policies.0.policy",
            12,
            "unknown policy 'nope'",
        ),
        (
            VALID.replace("- policy: cap", "- policy: cap\n        weight: 1.0e9"),
            "profiles.default.policies.0.weight",
            13,
            "less than or equal to 1000",
        ),
        (
            VALID.replace("- policy: cap", "- policy: cap\n        weight: .nan"),
            "profiles.default.policies.0.weight",
            13,
            "finite number",
        ),
        ("backends: {}\n", "backends", 1, "at least 1"),
        ("backends: [\n", "", 2, "invalid YAML"),
        ("- 1\n", "", 0, "mapping"),
    ],
)
def test_invalid_config_names_file_path_line_and_reason(text, path, line, reason):
    """Each invalid config raises ConfigError carrying the file, YAML path, line and reason."""
    with pytest.raises(ConfigError) as err:
        parse_config(text, "bad.yaml")
    e = err.value
    assert e.file == "bad.yaml" and e.path == path and e.line == line
    assert reason in e.reason
    assert str(e).startswith("bad.yaml:")


def test_unreadable_file_is_a_config_error(tmp_path):
    """A missing file gives a ConfigError naming it."""
    with pytest.raises(ConfigError, match="cannot read file"):
        load_config(tmp_path / "missing.yaml")


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path):
    """A Latin-1 file gives a ConfigError naming it and the byte, at start and in validate."""
    from router.config.validate import validate_file

    path = tmp_path / "latin1.yaml"
    path.write_bytes("# caf\xe9\nbackends: {}\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1.yaml: <root>: not UTF-8 text: byte 0xe9"):
        load_config(path)
    problems = validate_file(path).problems
    assert [p.reason for p in problems] == ["not UTF-8 text: byte 0xe9 at offset 5"]


@pytest.mark.parametrize(
    ("section", "path"),
    [
        ({"price": {"input_per_mtok": float("inf")}}, "backends.b.price.input_per_mtok"),
        ({"performance": {"rtt_ms": float("nan")}}, "backends.b.performance.rtt_ms"),
    ],
)
def test_infinite_or_nan_numbers_are_refused(section, path):
    """A config number that is inf or NaN is refused, naming its path."""
    import yaml

    backend = {"type": "scripted", "model": "m", **section}
    with pytest.raises(ConfigError, match=rf"{path}: Input should be a finite number"):
        parse_config(yaml.safe_dump({"backends": {"b": backend}}), "<t>")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://[::1", "not a valid URL"),
        ("https://api.anthropic.com:99999", "not a valid URL: Port out of range"),
        ("ftp://host/v1", "is not an http:// or https:// URL with a host"),
        ("http://", "is not an http:// or https:// URL with a host"),
        ("http://user:secret@host", "must not hold credentials"),
    ],
)
def test_a_bad_base_url_is_refused(url, reason):
    """base_url must be an http(s) URL with a host, a valid port and no credentials."""
    import yaml

    backend = {"type": "openai", "model": "m", "base_url": url}
    with pytest.raises(ConfigError, match=rf"backends.b.base_url: .*{reason}"):
        parse_config(yaml.safe_dump({"backends": {"b": backend}}), "<t>")


def test_a_yaml_alias_bomb_is_refused_at_once():
    """Anchors nested nine deep stand for a billion values: refused before validation would
    walk them, naming the count; ordinary anchors still work."""
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]")
    text = "\n".join([*lines, "backends: {b: {type: scripted, model: m}}"])
    with pytest.raises(ConfigError, match=r"values once aliases are expanded \(at most 100000\)"):
        parse_config(text, "<bomb>")
    anchors = "backends:\n  a: &base {type: scripted, model: m}\n  b: *base\n"
    assert set(parse_config(anchors, "<t>").config.backends) == {"a", "b"}
