"""The README's Python client example runs as written against a real server."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


async def test_readme_client_example_runs(start_server, capsys):
    """The python block in the README streams text and prints the backend, against a server."""
    srv = await start_server()
    (code,) = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    code = code.replace("localhost:50051", srv.target).replace("asyncio.run(main())", "")
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    await asyncio.wait_for(namespace["main"](), 120)
    out = capsys.readouterr().out
    assert "edge-smollm2" in out
