"""ChatTokenRouter: a LangChain chat model whose calls go through a tokenrouter over gRPC.

    from router.integrations.langchain import ChatTokenRouter

    llm = ChatTokenRouter(target="localhost:50051", max_tokens=64, privacy="confidential")
    llm.invoke("Hello").response_metadata["backend"]     # where the router placed it

invoke / ainvoke / stream / astream / batch go through `router.client` (the blocking client for
the sync calls, the asyncio one for the async calls: the event loop is never blocked). Every
request field is a model parameter, settable at construction, with `.bind(...)` or per call:
sampling (model, max_tokens, temperature, top_p, stop, seed), routing (privacy,
latency_slo_ms, max_cost_usd, profile, tenant, request_metadata, features) and the agent fields
(tools, tool_choice, parallel_tool_calls, response_format) that `bind_tools` and
`with_structured_output` set. The answer's `usage_metadata` has the token counts and its
`response_metadata` the routing decision (see router.integrations.langchain_convert). A gRPC
error surfaces as TokenRouterError (TokenRouterInvalidRequest, a ValueError, for a wrong field),
with the router's message naming the field.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from operator import itemgetter
from typing import Any, Literal

import grpc
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.language_models.chat_models import agenerate_from_stream, generate_from_stream
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import (
    JsonOutputKeyToolsParser,
    PydanticToolsParser,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils import from_env, secret_from_env
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr, field_validator

from router.client import AsyncRouterClient, GenerateResult, RouterClient
from router.integrations import langchain_convert as convert
from router.integrations.langchain_convert import TokenRouterError, TokenRouterInvalidRequest

__all__ = ["ChatTokenRouter", "TokenRouterError", "TokenRouterInvalidRequest"]

# Request fields that are also model parameters (their per-call values override the model's).
_FIELDS = (
    "model",
    "max_tokens",
    "temperature",
    "top_p",
    "seed",
    "privacy",
    "latency_slo_ms",
    "max_cost_usd",
    "profile",
    "tenant",
)
# Request fields taken per call or from .bind(...) only.
_CALL_FIELDS = frozenset(
    {"tools", "tool_choice", "parallel_tool_calls", "response_format", "features", "request_id"}
)
_RETRIED = (grpc.StatusCode.UNAVAILABLE,)


class ChatTokenRouter(BaseChatModel):
    """A chat model served by a tokenrouter: each call is placed on an edge, cloud GPU or remote
    backend by the router's policies, and the decision comes back in `response_metadata`."""

    model_config = ConfigDict(populate_by_name=True)

    # Connection
    target: str = Field(default_factory=from_env("TOKENROUTER_TARGET", default="localhost:50051"))
    """The router's address, host:port (default: $TOKENROUTER_TARGET or localhost:50051)."""
    api_key: SecretStr | None = Field(
        default_factory=secret_from_env("TOKENROUTER_API_KEY", default=None)
    )
    """A tenant API key, sent as `authorization: Bearer` (default: $TOKENROUTER_API_KEY)."""
    tls: bool = False
    """A TLS channel verified against the system CAs (implied by the file options)."""
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    timeout: float | None = None
    """Deadline of one call, in seconds (None: none)."""
    max_retries: int = Field(2, ge=0)
    """Retries of a call the router could not take (UNAVAILABLE) before any output arrived."""
    streaming: bool = False
    """invoke() streams underneath (the result is the same)."""

    # Sampling
    model: str | None = Field(None, alias="model_name")
    """A model name or alias the router must serve the call with (None: the router picks)."""
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)
    stop: list[str] | None = Field(None, alias="stop_sequences")
    seed: int | None = None

    # Routing
    privacy: str | None = None
    """The data's class: public, internal, confidential or restricted (None: the router's
    detectors decide); a class is never lowered by the router."""
    latency_slo_ms: int | None = Field(None, ge=0)
    """Time-to-first-token target, in milliseconds."""
    max_cost_usd: float | None = Field(None, ge=0)
    """The most this call may cost."""
    profile: str | None = None
    """The routing profile (policy set) to place with (None: the configured default)."""
    tenant: str | None = None
    request_metadata: dict[str, str] = Field(default_factory=dict)
    """The request's `metadata` (string pairs the router logs and policies may read). Named
    apart from BaseChatModel.metadata, which is LangChain's tracing metadata."""

    _client: RouterClient | None = PrivateAttr(default=None)
    _client_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @field_validator("privacy", mode="before")
    @classmethod
    def _privacy(cls, value: Any) -> str | None:
        return None if value is None else convert.privacy_name(value)

    # LangChain's identity of the model

    @property
    def _llm_type(self) -> str:
        return "tokenrouter"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        params = {k: getattr(self, k) for k in ("target", *_FIELDS, "stop")}
        return {k: v for k, v in params.items() if v is not None}

    # Not lc-serializable: langchain-core's loader only rebuilds classes on its own allowlist
    # (langchain_core.load.mapping), so a dumped ChatTokenRouter could not be loaded back.

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="tokenrouter",
            ls_model_name=kwargs.get("model") or self.model or "auto",
            ls_model_type="chat",
        )
        temperature = kwargs.get("temperature", self.temperature)
        if temperature is not None:
            params["ls_temperature"] = temperature
        if (max_tokens := kwargs.get("max_tokens", self.max_tokens)) is not None:
            params["ls_max_tokens"] = max_tokens
        if stop := stop or self.stop:
            params["ls_stop"] = stop
        return params

    # The request

    def _options(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The client's keyword arguments: the model's fields, overridden by the call's."""
        unknown = sorted(set(kwargs) - set(_FIELDS) - _CALL_FIELDS - {"request_metadata"})
        if unknown:
            known = ", ".join(sorted({*_FIELDS, *_CALL_FIELDS, "request_metadata", "stop"}))
            raise ValueError(f"ChatTokenRouter got unknown option(s) {unknown}; known: {known}")
        options = {k: getattr(self, k) for k in _FIELDS}
        options.update(kwargs)
        options["metadata"] = {
            **self.request_metadata,
            **(options.pop("request_metadata", None) or {}),
        }
        if options.get("privacy") is not None:
            options["privacy"] = convert.privacy_name(options["privacy"])
        else:
            options.pop("privacy", None)
        stop = self.stop if stop is None else stop
        if stop:
            options["stop"] = list(stop)
        return {k: v for k, v in options.items() if v is not None}

    def _client_kwargs(self) -> dict[str, Any]:
        return {
            "timeout": self.timeout,
            "api_key": self.api_key.get_secret_value() if self.api_key else None,
            "tls": self.tls,
            "ca_file": self.ca_file,
            "cert_file": self.cert_file,
            "key_file": self.key_file,
        }

    def _sync_client(self) -> RouterClient:
        """One blocking client (its channel is thread-safe) for the model's lifetime."""
        with self._client_lock:
            if self._client is None:
                self._client = RouterClient(self.target, **self._client_kwargs())
            return self._client

    def _items(self, messages: list[BaseMessage], options: dict[str, Any]) -> Iterator[Any]:
        """The client's stream, retried while the router is UNAVAILABLE and nothing came yet."""
        prompt = convert.client_messages(messages)
        for attempt in range(self.max_retries + 1):
            started = False
            try:
                for item in self._sync_client().generate(prompt, **options):
                    started = True
                    yield item
                return
            except grpc.RpcError as exc:
                if started or attempt == self.max_retries or exc.code() not in _RETRIED:
                    raise convert.router_error(exc) from None
            time.sleep(0.25 * 2**attempt)

    async def _aitems(
        self, messages: list[BaseMessage], options: dict[str, Any]
    ) -> AsyncIterator[Any]:
        """As _items, over an asyncio channel opened for the call (channels are per loop)."""
        prompt = convert.client_messages(messages)
        for attempt in range(self.max_retries + 1):
            started = False
            try:
                async with AsyncRouterClient(self.target, **self._client_kwargs()) as client:
                    async for item in client.generate(prompt, **options):
                        started = True
                        yield item
                return
            except grpc.RpcError as exc:
                if started or attempt == self.max_retries or exc.code() not in _RETRIED:
                    raise convert.router_error(exc) from None
            await asyncio.sleep(0.25 * 2**attempt)

    # BaseChatModel's hooks

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.streaming:
            return generate_from_stream(self._stream(messages, stop, run_manager, **kwargs))
        *_, last = self._items(messages, self._options(stop, kwargs))
        return _result(last)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.streaming:
            stream = self._astream(messages, stop, run_manager, **kwargs)
            return await agenerate_from_stream(stream)
        last = None
        async for item in self._aitems(messages, self._options(stop, kwargs)):
            last = item
        return _result(last)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for item in self._items(messages, self._options(stop, kwargs)):
            piece = convert.chunk(item)
            if run_manager and isinstance(item, str):
                run_manager.on_llm_new_token(item, chunk=piece)
            yield piece

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        async for item in self._aitems(messages, self._options(stop, kwargs)):
            piece = convert.chunk(item)
            if run_manager and isinstance(item, str):
                await run_manager.on_llm_new_token(item, chunk=piece)
            yield piece

    # Tools and structured output

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: dict[str, Any] | str | bool | None = None,
        strict: bool | None = None,
        parallel_tool_calls: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Offers `tools` (LangChain tools, functions, Pydantic models, TypedDicts or OpenAI
        tool dicts) on every call. tool_choice: "auto", "none", "any"/"required" (some tool), a
        tool's name or {"type": "function", "function": {"name": ...}}."""
        formatted = [convert_to_openai_tool(t, strict=strict) for t in tools]
        names = [t["function"]["name"] for t in formatted]
        choice = convert.tool_choice(tool_choice, names)
        if choice is not None:
            kwargs["tool_choice"] = choice
        if parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        return super().bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        method: Literal["json_schema", "function_calling", "json_mode"] = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
        """Answers parsed into `schema` (a Pydantic class, TypedDict, JSON Schema or OpenAI
        tool dict). method "json_schema" (default): a strict json_schema response_format,
        which constrained backends enforce; "function_calling": the schema as the one tool the
        model must call; "json_mode": any JSON object, parsed (the prompt must ask for it)."""
        if kwargs:
            raise ValueError(f"with_structured_output got unsupported arguments {kwargs}")
        pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
        trace = {"kwargs": {"method": method, "strict": strict}, "schema": schema}
        parser: Runnable[Any, Any]
        if method == "function_calling":
            spec = convert_to_openai_tool(schema, strict=strict)
            name = spec["function"]["name"]
            llm = self.bind_tools(
                [spec],
                tool_choice=name,
                parallel_tool_calls=False,
                ls_structured_output_format=trace,
            )
            parser = (
                PydanticToolsParser(tools=[schema], first_tool_only=True)
                if pydantic
                else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
            )
        elif method in ("json_schema", "json_mode"):
            if method == "json_schema":
                spec = convert_to_openai_tool(schema)["function"]
                fmt: dict[str, Any] = {
                    "type": "json_schema",
                    "json_schema": {
                        "name": spec["name"],
                        "schema": spec.get("parameters", {"type": "object"}),
                        "strict": strict is not False,
                    },
                }
            else:
                fmt = {"type": "json_object"}
            llm = self.bind(response_format=fmt, ls_structured_output_format=trace)
            parser = (
                PydanticOutputParser(pydantic_object=schema) if pydantic else JsonOutputParser()
            )
        else:
            raise ValueError(
                f"method: {method!r} is not json_schema, function_calling or json_mode"
            )
        if not include_raw:
            return llm | parser
        parsed = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        )
        fallback = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parsed.with_fallbacks(
            [fallback], exception_key="parsing_error"
        )


def _result(last: Any) -> ChatResult:
    if not isinstance(last, GenerateResult):
        raise TokenRouterError("INTERNAL", "the Generate stream ended without its usage")
    message = convert.ai_message(last)
    return ChatResult(
        generations=[
            ChatGeneration(message=message, generation_info={"finish_reason": last.finish_reason})
        ],
        llm_output={"model_name": last.decision.model, "backend": last.decision.backend},
    )
