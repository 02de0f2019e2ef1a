"""docs/agents.md stays true: its client example runs as written against a real server."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

AGENTS = Path(__file__).resolve().parents[1] / "docs" / "agents.md"
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


async def test_agents_doc_example_runs_a_tool_loop(start_server):
    """The python block of docs/agents.md gets a call, sends its result and returns the answer."""
    srv = await start_server(SCRIPTED)
    (code,) = re.findall(r"```python\n(.*?)```", AGENTS.read_text(), re.S)
    namespace: dict = {}
    exec(compile(code, str(AGENTS), "exec"), namespace)
    answer = await asyncio.to_thread(namespace["agent_turn"], srv.target)
    assert answer == "It is sunny in Paris."
