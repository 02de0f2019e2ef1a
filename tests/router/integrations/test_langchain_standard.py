"""LangChain's own standard suites (langchain-tests) on ChatTokenRouter.

`TestChatTokenRouterUnit` runs ChatModelUnitTests (construction, bind_tools,
with_structured_output, tracing params, serialisation) with no server. `TestChatTokenRouterEdge`
runs ChatModelIntegrationTests against a real router on a free port whose one backend is the real
SmolLM2-135M GGUF in-process (llama.cpp). The optional features each class declares are the
ones the router and that backend really have: tools, tool_choice, structured output and JSON mode
(constrained decoding on the edge); no images, PDFs or audio (SmolLM2 reads text only).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from router.integrations.langchain import ChatTokenRouter
from tests.conftest import edge_config
from tests.router.integrations.threaded_router import ThreadedRouter

EDGE_MODEL = "smollm2"


class TestChatTokenRouterUnit(ChatModelUnitTests):
    """ChatModelUnitTests: no router needed."""

    @property
    def chat_model_class(self) -> type[ChatTokenRouter]:
        return ChatTokenRouter

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"target": "127.0.0.1:1", "model": EDGE_MODEL}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        env = {"TOKENROUTER_TARGET": "router.example:50051", "TOKENROUTER_API_KEY": "key-1"}
        return env, {}, {"target": "router.example:50051", "api_key": "key-1"}

    @property
    def supports_json_mode(self) -> bool:
        return True


class EdgeRouterSuite(ChatModelIntegrationTests):
    """The integration suite's settings for a router whose backend is the real SmolLM2."""

    target = ""

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _router(cls) -> Iterator[None]:
        """A real router on the real SmolLM2 GGUF for the whole class."""
        with ThreadedRouter(edge_config(context_window=2048)) as router:
            cls.target = router.target
            yield

    @property
    def chat_model_class(self) -> type[ChatTokenRouter]:
        return ChatTokenRouter

    @property
    def chat_model_params(self) -> dict[str, Any]:
        # Seeded sampling, not greedy: at temperature 0 SmolLM2-135M loops ("a cat is a cat, a
        # cat is a cat...") until max_tokens, truncating every structured answer; a fixed seed
        # keeps the runs reproducible.
        return {
            "target": self.target,
            "max_tokens": 64,
            "temperature": 0.7,
            "seed": 1,
            "timeout": 120,
        }

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        return EDGE_MODEL

    @property
    def supports_anthropic_inputs(self) -> bool:
        return True


class TestChatTokenRouterEdge(EdgeRouterSuite):
    """ChatModelIntegrationTests through a real router on the real SmolLM2 edge model."""

    @pytest.mark.xfail(
        reason="json_mode constrains the output to some JSON object, not to the schema: "
        'SmolLM2-135M answers {"setup": 1, "punchline": 1}, which the Joke model rejects'
    )
    def test_json_mode(self, model: Any) -> None:
        super().test_json_mode(model)

    @pytest.mark.xfail(
        reason="tool_choice is auto here: SmolLM2-135M answers the weather question in text "
        "instead of calling get_weather (with a forced choice its calls are valid)"
    )
    @pytest.mark.parametrize("model", [{}, {"output_version": "v1"}], indirect=True)
    def test_agent_loop(self, model: Any) -> None:
        super().test_agent_loop(model)

    @pytest.mark.xfail(
        reason="SmolLM2-135M writes a description longer than max_tokens=64 for the Japanese "
        "customer, so the call's arguments are cut off (finish_reason length)"
    )
    def test_unicode_tool_call_integration(self, model: Any, **kwargs: Any) -> None:
        super().test_unicode_tool_call_integration(model, **kwargs)


def _call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


JOKE = {"setup": "Why did the cat sit on the laptop?", "punchline": "To keep an eye on the mouse."}
SCRIPTED_TOOLS = {
    "backends": {
        "scripted-tools": {
            "type": "scripted",
            "model": "scripted-tools",
            "text": "It's sunny, and the answer is 3.",
            "tool_calls": [
                _call("magic_function", input=3),
                _call("magic_function_no_args"),
                _call("get_weather", location="San Francisco, CA"),
                _call("greeting_generator", answer_style="pirate"),
                _call("my_adder_tool", a=3, b=4),
                _call("unicode_customer", customer_name="你好啊集团", description="a company"),
                _call("Joke", **JOKE),
                _call("JokeDict", **JOKE),
            ],
        }
    }
}


class TestChatTokenRouterScriptedTools(ChatModelIntegrationTests):
    """ChatModelIntegrationTests through a real router whose backend is the SCRIPTED backend
    answering with scripted tool calls (not a model): the tool and function-calling paths of
    the router and ChatTokenRouter end to end, independent of what a 135M model would answer."""

    target = ""

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _router(cls) -> Iterator[None]:
        """A real router on the scripted backend for the whole class."""
        with ThreadedRouter(SCRIPTED_TOOLS) as router:
            cls.target = router.target
            yield

    @property
    def chat_model_class(self) -> type[ChatTokenRouter]:
        return ChatTokenRouter

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"target": self.target, "max_tokens": 64, "timeout": 60}

    @property
    def structured_output_kwargs(self) -> dict[str, Any]:
        return {"method": "function_calling"}  # the scripted backend has no JSON output

    @property
    def model_override_value(self) -> str:
        return "scripted-tools"

    @property
    def supports_anthropic_inputs(self) -> bool:
        return True

    @pytest.mark.xfail(reason="the scripted backend replays fixed arguments, whatever the prompt")
    def test_unicode_tool_call_integration(self, model: Any, **kwargs: Any) -> None:
        super().test_unicode_tool_call_integration(model, **kwargs)
