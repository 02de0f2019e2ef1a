"""Python client for agent frameworks: `generate()` streams text then a result; `route()` decides.

    async with AsyncRouterClient("localhost:50051") as client:
        async for item in client.generate("Write a haiku", max_tokens=64):
            if isinstance(item, str):
                print(item, end="")
            elif isinstance(item, GenerateResult):   # the last item
                print(item.usage.completion_tokens, item.decision.backend)
            # else: a pb.ToolCallDelta, a fragment of a tool call (see below)

`chat()` returns the whole answer at once. Agents pass conversations in the OpenAI Chat
Completions shape (see router.client_messages), tools, tool_choice and response_format:

    answer = client.chat(messages, tools=[weather_tool], tool_choice="required")
    for call in answer.tool_calls:               # complete calls: id, name, JSON arguments
        messages += [answer.as_message(), {"role": "tool", "tool_call_id": call.id,
                                           "content": run(call.name, call.args())}]

`RouterClient` is the same API, blocking. Errors surface as grpc.RpcError with the server's
status code and message.

Security options (both clients): `api_key` (a tenant key, sent as `authorization: Bearer`),
`tls=True` for a TLS channel verified against the system's CAs, `ca_file` (PEM) to verify the
server against your own CA instead, and `cert_file` + `key_file` for a client certificate (mTLS).
Any of the file options implies TLS.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from router.api import router_pb2 as pb
from router.api import router_pb2_grpc as pb_grpc
from router.client_messages import ToolCall, ToolCallAssembler, agent_fields, messages

Messages = str | Sequence[Mapping[str, Any] | pb.Message]
Item = str | pb.ToolCallDelta


@dataclass(frozen=True)
class GenerateResult:
    """The last item `generate()` yields, and what `chat()` returns: the decision, the usage,
    and the complete assistant message (its text and tool calls)."""

    decision: pb.RouteDecision
    usage: pb.Usage
    text: str
    tool_calls: tuple[ToolCall, ...] = ()

    @property
    def finish_reason(self) -> str:
        return self.usage.finish_reason

    def as_message(self) -> dict[str, Any]:
        """The answer as an assistant message to append to the conversation."""
        msg: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            msg["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": args}}
                for c in self.tool_calls
                for args in (c.arguments,)
            ]
        return msg


def build_request(
    prompt: Messages,
    *,
    system: str | None = None,
    privacy: str | int = 0,
    metadata: Mapping[str, str] | None = None,
    **fields: Any,
) -> pb.GenerateRequest:
    """Builds a GenerateRequest from a prompt string or a list of messages (dicts in the
    Chat Completions shape, or pb.Message).

    `privacy` takes a name ("confidential") or the enum value; other keywords are request fields
    (request_id, tenant, max_tokens, temperature, model, latency_slo_ms, max_cost_usd, profile,
    features, tools, tool_choice, parallel_tool_calls, response_format, stop, top_p, seed).
    """
    if isinstance(privacy, str):
        privacy = pb.Privacy.Value(privacy.upper())
    fields = agent_fields({k: v for k, v in fields.items() if v is not None})
    return pb.GenerateRequest(
        messages=messages(prompt, system),
        privacy=privacy,
        metadata=dict(metadata or {}),
        **fields,
    )


def channel_credentials(
    *,
    tls: bool = False,
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
) -> grpc.ChannelCredentials | None:
    """TLS credentials from PEM files, or None for a plaintext channel (no option given)."""
    if bool(cert_file) != bool(key_file):
        raise ValueError("cert_file and key_file go together (a client certificate and its key)")
    if not (tls or ca_file or cert_file):
        return None

    def read(path: str | None) -> bytes | None:
        return Path(path).read_bytes() if path else None

    return grpc.ssl_channel_credentials(
        root_certificates=read(ca_file),
        private_key=read(key_file),
        certificate_chain=read(cert_file),
    )


def _open(module: Any, target: str, creds: grpc.ChannelCredentials | None) -> Any:
    """A channel from `module` (grpc or grpc.aio): plaintext without credentials, else TLS."""
    if creds is None:
        return module.insecure_channel(target)
    return module.secure_channel(target, creds)


def _metadata(api_key: str | None) -> tuple[tuple[str, str], ...] | None:
    return (("authorization", f"Bearer {api_key}"),) if api_key else None


class _Collector:
    """Turns the GenerateResponse stream into text chunks, tool-call fragments and a final
    GenerateResult."""

    def __init__(self) -> None:
        self.decision = pb.RouteDecision()
        self.parts: list[str] = []
        self.calls = ToolCallAssembler()

    def feed(self, response: pb.GenerateResponse) -> list[Item | GenerateResult]:
        kind = response.WhichOneof("event")
        if kind == "delta":
            delta = response.delta
            items: list[Item | GenerateResult] = []
            if delta.text:
                self.parts.append(delta.text)
                items.append(delta.text)
            for fragment in delta.tool_calls:
                self.calls.feed(fragment)
                items.append(fragment)
            return items
        if kind == "decision":
            self.decision = response.decision
            return []
        text = "".join(self.parts)
        return [GenerateResult(self.decision, response.usage, text, self.calls.calls())]


def _last(item: object) -> GenerateResult:
    if not isinstance(item, GenerateResult):  # the server always ends a stream with its usage
        raise RuntimeError("the Generate stream ended without its usage")
    return item


class AsyncRouterClient:
    """asyncio client over a grpc.aio channel."""

    def __init__(
        self,
        target: str = "localhost:50051",
        *,
        timeout: float | None = None,
        api_key: str | None = None,
        tls: bool = False,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
    ) -> None:
        creds = channel_credentials(
            tls=tls, ca_file=ca_file, cert_file=cert_file, key_file=key_file
        )
        self._channel = _open(grpc.aio, target, creds)
        self._stub = pb_grpc.TokenRouterStub(self._channel)
        self._timeout = timeout
        self._metadata = _metadata(api_key)

    async def __aenter__(self) -> AsyncRouterClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def generate(
        self, prompt: Messages, **options: Any
    ) -> AsyncIterator[Item | GenerateResult]:
        """Yields text chunks and tool-call fragments as they arrive, then one GenerateResult."""
        collector = _Collector()
        call = self._stub.Generate(
            build_request(prompt, **options), timeout=self._timeout, metadata=self._metadata
        )
        try:
            async for response in call:
                for item in collector.feed(response):
                    yield item
        finally:
            call.cancel()  # no-op when finished; stops generation when the caller stops early

    async def chat(self, prompt: Messages, **options: Any) -> GenerateResult:
        """The complete assistant message (text and tool calls), its decision and usage."""
        result = None
        async for item in self.generate(prompt, **options):
            result = item
        return _last(result)

    async def route(self, prompt: Messages, **options: Any) -> pb.RouteDecision:
        return await self._stub.Route(
            build_request(prompt, **options), timeout=self._timeout, metadata=self._metadata
        )

    async def backends(self) -> list[pb.BackendInfo]:
        reply = await self._stub.ListBackends(
            pb.ListBackendsRequest(), timeout=self._timeout, metadata=self._metadata
        )
        return list(reply.backends)


class RouterClient:
    """Blocking client over a plain grpc channel."""

    def __init__(
        self,
        target: str = "localhost:50051",
        *,
        timeout: float | None = None,
        api_key: str | None = None,
        tls: bool = False,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
    ) -> None:
        creds = channel_credentials(
            tls=tls, ca_file=ca_file, cert_file=cert_file, key_file=key_file
        )
        self._channel = _open(grpc, target, creds)
        self._stub = pb_grpc.TokenRouterStub(self._channel)
        self._timeout = timeout
        self._metadata = _metadata(api_key)

    def __enter__(self) -> RouterClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def generate(self, prompt: Messages, **options: Any) -> Iterator[Item | GenerateResult]:
        """Yields text chunks and tool-call fragments as they arrive, then one GenerateResult."""
        collector = _Collector()
        call = self._stub.Generate(
            build_request(prompt, **options), timeout=self._timeout, metadata=self._metadata
        )
        try:
            for response in call:
                yield from collector.feed(response)
        finally:
            call.cancel()

    def chat(self, prompt: Messages, **options: Any) -> GenerateResult:
        """The complete assistant message (text and tool calls), its decision and usage."""
        *_, result = self.generate(prompt, **options)
        return _last(result)

    def route(self, prompt: Messages, **options: Any) -> pb.RouteDecision:
        return self._stub.Route(
            build_request(prompt, **options), timeout=self._timeout, metadata=self._metadata
        )

    def backends(self) -> list[pb.BackendInfo]:
        return list(
            self._stub.ListBackends(
                pb.ListBackendsRequest(), timeout=self._timeout, metadata=self._metadata
            ).backends
        )
