"""What a protocol face supplies to the HTTP driver: parse a body, encode the answer.

A face (router/http/openai_face.py, router/http/anthropic_face.py) is pure translation: it turns a
request body into a `pb.GenerateRequest` (validated further by router/api/convert.py, so both the
gRPC and the HTTP faces share one set of limits and checks) and the router's events into the
protocol's bytes. The driver (router/http/driver.py) does everything else: auth, routing headers,
placement, fallback, client disconnects, statuses and decision headers. A face may also have
`field(name) -> str`: the driver then renames the fields in router/api/convert.py's errors (the
gRPC message's names, e.g. `tools[0].name`) to the protocol's (`tools[0].function.name`).

Streaming: the driver sends the response head only once the first token (or the end) is there,
so a request that fails before any token gets a plain error response with its HTTP status; a
failure after it goes out as the face's in-stream error event (`StreamEncoder.error`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from router.api import router_pb2 as pb
from router.core.backend import TextDelta
from router.core.types import Decision, Usage


@dataclass
class Parsed:
    """A parsed request: the gRPC message to validate and run, and how to answer it."""

    request: pb.GenerateRequest
    stream: bool
    model: str  # the model name as the client sent it
    options: Any = None  # face-specific answer options (e.g. OpenAI's stream_options)


class StreamEncoder(Protocol):
    """Turns one request's events into SSE bytes (each method returns whole events)."""

    def start(self, decision: Decision) -> bytes:
        """The opening bytes, sent with the first token (OpenAI: the role chunk; Anthropic:
        message_start). `decision` is the placement that produced the first token."""

    def delta(self, event: TextDelta) -> bytes:
        """Text and tool-call fragments."""

    def finish(self, usage: Usage) -> bytes:
        """The closing events (finish reason, usage, the end marker)."""

    def error(self, status: int, message: str) -> bytes:
        """An in-stream error event, for a failure after the stream began."""


class Collector(Protocol):
    """Gathers one request's events into a non-streaming response body."""

    def delta(self, event: TextDelta) -> None: ...

    def body(self, decision: Decision, usage: Usage) -> bytes:
        """The whole response, JSON."""


class Face(Protocol):
    """One HTTP protocol: its name (a metrics label), parsing, answers and errors."""

    name: str

    def parse(self, body: Any) -> Parsed:
        """The request in a decoded JSON body; raises InvalidArgument naming the field in the
        protocol's own terms (e.g. `messages[1].content[0].type`)."""

    def encoder(self, parsed: Parsed, request_id: str) -> StreamEncoder: ...

    def collector(self, parsed: Parsed, request_id: str) -> Collector: ...

    def error_body(self, status: int, message: str, param: str | None) -> bytes:
        """The protocol's error object for an HTTP status (`param`: the field, if one is named)."""
