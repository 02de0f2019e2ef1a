"""docs/http.md's Python examples run as written against a real router on the SmolLM2 edge."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "http.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


@pytest.mark.parametrize("code", BLOCKS, ids=[f"example{i}" for i in range(len(BLOCKS))])
async def test_http_doc_example_runs(edge_http, code: str, capsys) -> None:
    """The example runs against the real server (in a thread: the SDKs block) and prints."""
    code = code.replace("http://localhost:8080", edge_http.base_url)
    await asyncio.wait_for(asyncio.to_thread(exec, compile(code, "docs/http.md", "exec"), {}), 180)
    assert capsys.readouterr().out.strip()


def test_http_doc_has_the_examples() -> None:
    """The doc shows the OpenAI SDK (text and tools), the Anthropic SDK and LangChain."""
    joined = "\n".join(BLOCKS)
    assert len(BLOCKS) == 4
    for needle in ("from openai import", "tool_choice", "import anthropic", "ChatOpenAI"):
        assert needle in joined
