"""docs/langchain.md stays true: its example runs as written against a real server."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "langchain.md"
SCRIPTED = {
    "backends": {
        "gpu": {
            "type": "scripted",
            "model": "m",
            "text": "It is sunny in Paris.",
            "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}],
        }
    }
}


async def test_langchain_doc_example_runs_a_tool_loop(start_server):
    """The python block of docs/langchain.md calls the tool, sends its result, gets the answer."""
    srv = await start_server(SCRIPTED)
    (code,) = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    answer, backend = await asyncio.to_thread(namespace["agent_turn"], srv.target)
    assert (answer, backend) == ("It is sunny in Paris.", "gpu")
