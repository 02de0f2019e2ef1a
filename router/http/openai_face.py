"""The OpenAI face: `POST /v1/chat/completions` and `GET /v1/models`.

Parsing is router/http/openai_request.py, answers and errors router/http/openai_response.py; the
driver (router/http/driver.py) does the rest. `models_body` lists what a client may name as
`model`: `auto` (the router decides), then every configured backend's model and aliases.
"""

from __future__ import annotations

from typing import Any

import orjson

from router.config import Config
from router.http.face import Parsed
from router.http.openai_request import OpenAIOptions, openai_field, parse_request
from router.http.openai_response import ChunkEncoder, CompletionCollector, error_object
from router.runtime.engine import Router


class OpenAIFace:
    """OpenAI Chat Completions (see router/http/face.py for the contract)."""

    name = "openai"

    def parse(self, body: Any) -> Parsed:
        request, stream, model, options = parse_request(body)
        return Parsed(request, stream, model, options)

    def encoder(self, parsed: Parsed, request_id: str) -> ChunkEncoder:
        options = parsed.options if isinstance(parsed.options, OpenAIOptions) else OpenAIOptions()
        return ChunkEncoder(request_id, options.include_usage)

    def collector(self, parsed: Parsed, request_id: str) -> CompletionCollector:
        return CompletionCollector(request_id)

    def error_body(self, status: int, message: str, param: str | None) -> bytes:
        return orjson.dumps(error_object(status, message, param))

    def field(self, name: str) -> str:
        """A field named by router/api/convert.py's checks, in Chat Completions terms."""
        return openai_field(name)


def model_names(config: Config) -> list[str]:
    """`auto`, then each backend's model and aliases in config order, each once."""
    names = {"auto": None}
    for backend in config.backends.values():
        names[backend.model] = None
        names.update(dict.fromkeys(backend.aliases))
    return list(names)


def models_list(config: Config, created: int) -> dict[str, Any]:
    """The `GET /v1/models` answer for a config (`created`: when it was loaded, Unix time)."""
    data = [
        {"id": name, "object": "model", "created": created, "owned_by": "tokenrouter"}
        for name in model_names(config)
    ]
    return {"object": "list", "data": data}


def models_body(router: Router) -> bytes:
    """The `GET /v1/models` body for the router's current config."""
    runtime = router.runtime
    return orjson.dumps(models_list(runtime.config, int(runtime.loaded_at)))
