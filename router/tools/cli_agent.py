"""The agent options of `tokenrouter generate` and `route`: tools, JSON output, stop, seed.

`--tool FILE.json` (repeatable) reads one tool or a list of tools, each in the OpenAI shape
(`{"type": "function", "function": {name, description, parameters}}`) or flat
(`{name, description, parameters}`); `--json-schema FILE.json` asks for output that fits the
JSON Schema in the file (strict, named after the file); `--json` for any JSON object.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

MAX_FILE_BYTES = 1 << 20  # a tool or schema file; the server has its own, larger limits


class FileError(ValueError):
    """A --tool or --json-schema file that cannot be read or is not JSON."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tool", action="append", default=[], metavar="FILE.json", help="offer the tool(s) in FILE"
    )
    parser.add_argument(
        "--tool-choice", help="auto (default), none, required, or the name of the tool to call"
    )
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--json-schema", metavar="FILE.json", help="answer as JSON fitting FILE")
    fmt.add_argument("--json", action="store_true", help="answer as a JSON object")
    parser.add_argument("--stop", action="append", default=None, help="a stop sequence")
    parser.add_argument("--seed", type=int, help="sampling seed (where the backend supports it)")
    parser.add_argument("--top-p", type=float, dest="top_p", help="nucleus sampling, (0, 1]")


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The client keywords these arguments ask for; raises FileError naming a bad file."""
    out: dict[str, Any] = {"stop": args.stop, "seed": args.seed, "top_p": args.top_p}
    tools: list[Any] = []
    for path in args.tool:
        doc = _read(path, "--tool")
        tools.extend(doc if isinstance(doc, list) else [doc])
    if tools:
        out["tools"] = tools
    if args.tool_choice:
        out["tool_choice"] = args.tool_choice
    if args.json_schema:
        schema = _read(args.json_schema, "--json-schema")
        name = "".join(c if c.isalnum() or c in "_-" else "_" for c in Path(args.json_schema).stem)
        out["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": name[:64] or "output", "schema": schema, "strict": True},
        }
    elif args.json:
        out["response_format"] = {"type": "json_object"}
    return out


def _read(path: str, option: str) -> Any:
    try:
        data = Path(path).read_bytes()[: MAX_FILE_BYTES + 1]
    except OSError as exc:
        raise FileError(f"{option} {path}: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise FileError(f"{option} {path}: larger than {MAX_FILE_BYTES} bytes")
    try:
        return json.loads(data)
    except ValueError as exc:
        raise FileError(f"{option} {path}: not JSON ({exc})") from None
